package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
)

// TestDemoDBSC: with -dbsc (the default) sign-in offers Chrome to bind the
// session and the DBSC endpoints answer; without it neither happens.
func TestDemoDBSC(t *testing.T) {
	for _, on := range []bool{true, false} {
		store, err := usersessions.Open(filepath.Join(t.TempDir(), "demo.db"), &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		srv := httptest.NewServer(newDemoHandler(store, demoConfig{dbsc: on}))
		t.Cleanup(srv.Close)
		b := newBrowser(t, srv.URL, uaChrome)
		resp, _ := b.do("POST", "/login", map[string][]string{"username": {"alice"}}, "Sec-Fetch-Site", "same-origin")
		reg := resp.Header.Get("Secure-Session-Registration")
		if on != strings.Contains(reg, `path="/dbsc/start";challenge=`) {
			t.Errorf("dbsc=%v: registration header %q", on, reg)
		}
		resp, body := b.do("POST", "/dbsc/refresh", nil, "Sec-Fetch-Site", "same-origin", "Sec-Secure-Session-Id", "x")
		if on && (resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"continue":false`)) ||
			!on && resp.StatusCode != http.StatusNotFound {
			t.Errorf("dbsc=%v: refresh endpoint %s %q", on, resp.Status, body)
		}
	}
}

// TestDemoDBSCFlag: the flag exists and is on by default.
func TestDemoDBSCFlag(t *testing.T) {
	_, stderr, code := runCmd(t, "demo", "-h")
	if code != 0 || !strings.Contains(stderr, "-dbsc") || !strings.Contains(stderr, "device-bound sessions (DBSC)") || !strings.Contains(stderr, "(default true)") {
		t.Errorf("demo -h: code %d\n%s", code, stderr)
	}
	if _, stderr, code := runCmd(t, "demo", "-dbsc=maybe"); code == 0 || !strings.Contains(stderr, "-dbsc") {
		t.Errorf("demo -dbsc=maybe: code %d %q", code, stderr)
	}
}
