package httpx

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r.
//
// It starts from the connection's peer (r.RemoteAddr, "ip:port", "[ipv6]:port"
// or a bare address; an IPv6 zone is dropped and an IPv4-mapped IPv6 address
// is unmapped). When that peer is not inside one of the trusted prefixes, the
// peer is the answer and every forwarding header is ignored: a header from an
// untrusted peer is whatever the client chose to write.
//
// When the peer is a trusted proxy, the forwarding headers are read:
//
//   - X-Forwarded-For, when present, wins. Its elements (from all its header
//     lines, in order) are read right to left: each trusted hop is skipped,
//     and the first untrusted address is the client. Elements may carry a
//     port ("203.0.113.7:5000", "[2001:db8::1]:443").
//   - Otherwise RFC 7239 Forwarded is read the same way, using the for=
//     parameter of each element; quoted values such as
//     for="[2001:db8::1]:4711" are understood.
//
// X-Forwarded-For comes first because it is what nearly every proxy
// (nginx, HAProxy, Caddy, cloud load balancers) appends to; a client-written
// Forwarded header passed through such a proxy is then never consulted. Behind
// a proxy that only writes Forwarded, make it drop any incoming
// X-Forwarded-For, or set Options.ClientIP.
//
// If every hop is trusted, the leftmost address (the one farthest away) is the
// client. The connection address is returned instead whenever the chain
// cannot be trusted to the next hop: a malformed element, an element with no
// for= parameter, "unknown", or an obfuscated identifier ("_hidden"), when it
// is reached while walking from the right. Garbage to the left of the first
// untrusted address is never looked at, so a client cannot make a proxy's
// answer fail by prepending junk.
//
// The result is the zero netip.Addr only when RemoteAddr itself holds no
// address (for example a Unix socket peer).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseRemoteAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		if ip, ok := walkXFF(xff, trusted); ok {
			return ip
		}
		return peer
	}
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		if ip, ok := walkForwarded(fwd, trusted); ok {
			return ip
		}
	}
	return peer
}

// isTrusted reports whether ip is inside one of the prefixes.
func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// normalize drops an IPv6 zone and unmaps IPv4-mapped IPv6 addresses, so
// that "::ffff:192.0.2.1" matches 192.0.2.0/24 and displays as IPv4.
func normalize(ip netip.Addr) netip.Addr {
	return ip.WithZone("").Unmap()
}

// parseRemoteAddr reads http.Request.RemoteAddr.
func parseRemoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr())
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if ip, err := netip.ParseAddr(s); err == nil {
		return normalize(ip)
	}
	return netip.Addr{}
}

// parseNode reads one address as found in X-Forwarded-For or in the for=
// parameter of Forwarded: "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:443".
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		rest := s[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() {
			return netip.Addr{}, false
		}
		return normalize(ip), true
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return normalize(ip), true
	}
	// IPv4 with a port. (An unbracketed IPv6 address never has one.)
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.IndexByte(s[:i], ':') < 0 && validPort(s[i+1:]) {
		if ip, err := netip.ParseAddr(s[:i]); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// validPort accepts a decimal port, or an RFC 7239 obfuscated port ("_abc").
func validPort(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	if s[0] == '_' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// walkXFF reads X-Forwarded-For lines right to left. ok is false when a
// malformed element is reached before an untrusted address.
func walkXFF(lines []string, trusted []netip.Prefix) (netip.Addr, bool) {
	var last netip.Addr
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			elem := strings.TrimSpace(line[j+1:])
			ip, ok := parseNode(elem)
			if !ok {
				return netip.Addr{}, false
			}
			if !isTrusted(ip, trusted) {
				return ip, true
			}
			last = ip
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return last, last.IsValid()
}

// walkForwarded reads RFC 7239 Forwarded lines right to left, like walkXFF.
func walkForwarded(lines []string, trusted []netip.Prefix) (netip.Addr, bool) {
	// Elements are split on commas outside quoted strings, so a line is
	// split left to right first; lines are few and short.
	var last netip.Addr
	for i := len(lines) - 1; i >= 0; i-- {
		elems, ok := splitQuoted(lines[i], ',')
		if !ok {
			return netip.Addr{}, false
		}
		for k := len(elems) - 1; k >= 0; k-- {
			node, ok := forwardedFor(elems[k])
			if !ok {
				return netip.Addr{}, false
			}
			ip, ok := parseNode(node)
			if !ok { // "unknown", "_hidden" or garbage
				return netip.Addr{}, false
			}
			if !isTrusted(ip, trusted) {
				return ip, true
			}
			last = ip
		}
	}
	return last, last.IsValid()
}

// forwardedFor returns the (unquoted) value of the for= parameter of one
// Forwarded element.
func forwardedFor(elem string) (string, bool) {
	pairs, ok := splitQuoted(elem, ';')
	if !ok {
		return "", false
	}
	found, value := false, ""
	for _, pair := range pairs {
		pair = strings.TrimSpace(pair)
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return "", false
		}
		name := strings.TrimSpace(pair[:eq])
		if !strings.EqualFold(name, "for") {
			continue
		}
		if found { // a repeated parameter makes the element invalid
			return "", false
		}
		v, ok := unquote(strings.TrimSpace(pair[eq+1:]))
		if !ok {
			return "", false
		}
		found, value = true, v
	}
	return value, found
}

// forwardedProto returns the proto= parameter of the last (nearest) element
// of the Forwarded header, lower-cased.
func forwardedProto(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	elems, ok := splitQuoted(lines[len(lines)-1], ',')
	if !ok || len(elems) == 0 {
		return ""
	}
	pairs, ok := splitQuoted(elems[len(elems)-1], ';')
	if !ok {
		return ""
	}
	for _, pair := range pairs {
		name, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(name), "proto") {
			v, _ = unquote(strings.TrimSpace(v))
			return strings.ToLower(v)
		}
	}
	return ""
}

// splitQuoted splits s on sep outside double-quoted strings (which may hold
// backslash escapes). ok is false for an unterminated quote.
func splitQuoted(s string, sep byte) ([]string, bool) {
	var parts []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if inQuote {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// unquote reads an RFC 7230 token or quoted-string.
func unquote(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if s[0] != '"' {
		if strings.ContainsAny(s, "\" \t\\") {
			return "", false
		}
		return s, true
	}
	if len(s) < 2 || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		if strings.IndexByte(s, '"') >= 0 {
			return "", false
		}
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i == len(s) {
				return "", false
			}
			c = s[i]
		} else if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
