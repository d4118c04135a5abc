package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("127.0.0.1/32"),
}

func TestClientIP(t *testing.T) {
	cases := []struct {
		name    string
		remote  string
		xff     []string
		fwd     []string
		trusted []netip.Prefix
		want    string // "" = invalid Addr
	}{
		// The connection address.
		{name: "ipv4 peer", remote: "203.0.113.1:5000", want: "203.0.113.1"},
		{name: "ipv6 peer", remote: "[2001:db8::1]:5000", want: "2001:db8::1"},
		{name: "ipv6 zone dropped", remote: "[fe80::1%eth0]:5000", want: "fe80::1"},
		{name: "4in6 unmapped", remote: "[::ffff:203.0.113.9]:5000", want: "203.0.113.9"},
		{name: "no port", remote: "203.0.113.1", want: "203.0.113.1"},
		{name: "bracketed no port", remote: "[2001:db8::2]", want: "2001:db8::2"},
		{name: "unix socket", remote: "@", want: ""},
		{name: "empty", remote: "", want: ""},

		// Untrusted peers: headers ignored.
		{name: "spoofed xff, no trusted", remote: "203.0.113.1:1", xff: []string{"1.2.3.4"}, want: "203.0.113.1"},
		{name: "spoofed xff, untrusted peer", remote: "203.0.113.1:1", xff: []string{"1.2.3.4"}, trusted: testTrusted, want: "203.0.113.1"},
		{name: "spoofed forwarded, untrusted peer", remote: "203.0.113.1:1", fwd: []string{"for=1.2.3.4"}, trusted: testTrusted, want: "203.0.113.1"},

		// X-Forwarded-For from a trusted proxy.
		{name: "xff one hop", remote: "10.0.0.1:1", xff: []string{"198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff right to left", remote: "10.0.0.1:1", xff: []string{"1.1.1.1, 198.51.100.7, 10.0.0.5"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff client spoof prefix", remote: "10.0.0.1:1", xff: []string{"6.6.6.6, 198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff junk left of client", remote: "10.0.0.1:1", xff: []string{"garbage, 198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff multiple headers", remote: "10.0.0.1:1", xff: []string{"198.51.100.7", "10.0.0.7, 10.0.0.8"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff multiple headers last wins", remote: "10.0.0.1:1", xff: []string{"6.6.6.6", "198.51.100.8"}, trusted: testTrusted, want: "198.51.100.8"},
		{name: "xff all trusted", remote: "10.0.0.1:1", xff: []string{"10.9.9.9, 10.0.0.5"}, trusted: testTrusted, want: "10.9.9.9"},
		{name: "xff ipv6", remote: "[fd00::1]:1", xff: []string{"2001:db8::77"}, trusted: testTrusted, want: "2001:db8::77"},
		{name: "xff ipv4 with port", remote: "10.0.0.1:1", xff: []string{"198.51.100.7:4711"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff bracketed ipv6 with port", remote: "10.0.0.1:1", xff: []string{"[2001:db8::5]:443"}, trusted: testTrusted, want: "2001:db8::5"},
		{name: "xff mapped", remote: "10.0.0.1:1", xff: []string{"::ffff:198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff no spaces", remote: "10.0.0.1:1", xff: []string{"198.51.100.7,10.0.0.2"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "xff malformed", remote: "10.0.0.1:1", xff: []string{"not-an-ip"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "xff empty", remote: "10.0.0.1:1", xff: []string{""}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "xff trailing comma", remote: "10.0.0.1:1", xff: []string{"198.51.100.7,"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "xff unknown", remote: "10.0.0.1:1", xff: []string{"unknown"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "xff bad port", remote: "10.0.0.1:1", xff: []string{"198.51.100.7:port"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "xff wins over forwarded", remote: "10.0.0.1:1", xff: []string{"198.51.100.7"}, fwd: []string{"for=6.6.6.6"}, trusted: testTrusted, want: "198.51.100.7"},

		// RFC 7239 Forwarded from a trusted proxy.
		{name: "fwd simple", remote: "10.0.0.1:1", fwd: []string{"for=198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd quoted ipv6 port", remote: "10.0.0.1:1", fwd: []string{`for="[2001:db8::1]:4711"`}, trusted: testTrusted, want: "2001:db8::1"},
		{name: "fwd quoted ipv4 port", remote: "10.0.0.1:1", fwd: []string{`for="198.51.100.7:80"`}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd case and params", remote: "10.0.0.1:1", fwd: []string{`proto=https;FOR=198.51.100.7;by=10.0.0.1;host="example.com"`}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd chain", remote: "10.0.0.1:1", fwd: []string{"for=6.6.6.6, for=198.51.100.7, for=10.0.0.3"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd multiple headers", remote: "10.0.0.1:1", fwd: []string{"for=198.51.100.7", "for=10.0.0.3"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd quoted comma", remote: "10.0.0.1:1", fwd: []string{`for=198.51.100.7;host="a,b", for=10.0.0.3`}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd escaped quote", remote: "10.0.0.1:1", fwd: []string{`for="198.51.100.7";ext="x\"y"`}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd obfuscated", remote: "10.0.0.1:1", fwd: []string{"for=_hidden"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd obfuscated port", remote: "10.0.0.1:1", fwd: []string{`for="198.51.100.7:_p1"`}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd unknown", remote: "10.0.0.1:1", fwd: []string{"for=unknown"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd unknown left of client", remote: "10.0.0.1:1", fwd: []string{"for=unknown, for=198.51.100.7"}, trusted: testTrusted, want: "198.51.100.7"},
		{name: "fwd no for", remote: "10.0.0.1:1", fwd: []string{"proto=https"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd unbracketed v6 quoted", remote: "10.0.0.1:1", fwd: []string{`for="2001:db8::9"`}, trusted: testTrusted, want: "2001:db8::9"},
		{name: "fwd unterminated quote", remote: "10.0.0.1:1", fwd: []string{`for="198.51.100.7`}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd duplicate for", remote: "10.0.0.1:1", fwd: []string{"for=198.51.100.7;for=198.51.100.8"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd garbage", remote: "10.0.0.1:1", fwd: []string{";;;==,,"}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "fwd bad bracket", remote: "10.0.0.1:1", fwd: []string{`for="[198.51.100.7]"`}, trusted: testTrusted, want: "10.0.0.1"},
		{name: "trusted peer, no headers", remote: "10.0.0.1:1", trusted: testTrusted, want: "10.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != nil {
				r.Header["X-Forwarded-For"] = tc.xff
			}
			if tc.fwd != nil {
				r.Header["Forwarded"] = tc.fwd
			}
			got := ClientIP(r, tc.trusted)
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPOption(t *testing.T) {
	fixed := netip.MustParseAddr("192.0.2.99")
	m := New(nil, &Options{ClientIP: func(*http.Request) netip.Addr { return fixed }})
	if got := m.clientIP(httptest.NewRequest("GET", "/", nil)); got != fixed {
		t.Fatalf("got %v", got)
	}
}

// FuzzClientIP checks that no header makes ClientIP panic, and that the
// answer is the connection address unless the peer is trusted, in which case
// it is a clean (unzoned, unmapped) address.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.7, 10.0.0.2", "")
	f.Add("10.0.0.1:80", "", `for="[2001:db8::1]:4711";proto=https, for=10.0.0.3`)
	f.Add("[fd00::1]:80", "garbage,,", `for=_x;by=unknown`)
	f.Add("203.0.113.1:80", "1.2.3.4", "for=1.2.3.4")
	f.Add("[fe80::1%eth0]:1", "[::ffff:1.2.3.4]:9", `for="\"`)
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			r.Header.Set("Forwarded", fwd)
		}
		got := ClientIP(r, testTrusted)
		peer := parseRemoteAddr(remote)
		if !peer.IsValid() || !isTrusted(peer, testTrusted) {
			if got != peer {
				t.Fatalf("untrusted peer %v: got %v", peer, got)
			}
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("trusted peer %v: got %v", peer, got)
		}
		if got != peer && xff == "" && fwd == "" {
			t.Fatalf("no headers but %v != peer %v", got, peer)
		}
		_ = forwardedProto([]string{fwd})
	})
}
