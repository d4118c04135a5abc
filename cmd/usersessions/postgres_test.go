package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/pgtest"
	"github.com/usersessions/usersessions/pgstore"
)

// TestPostgresDatabase runs the operator commands on a PostgreSQL database
// given as -db URL, with an app's Store open on it meanwhile.
func TestPostgresDatabase(t *testing.T) {
	c := pgtest.Start(t)
	dsn := fmt.Sprintf("postgres://postgres:secret-pw@/postgres?host=%s&port=%d&sslmode=disable",
		url.QueryEscape(c.SocketDir()), pgtest.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := pgstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := usersessions.NewStore(b, &usersessions.Options{IdleTimeout: time.Hour, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cl := usersessions.Client{IP: netip.MustParseAddr("192.0.2.10"), UserAgent: uaFirefox}
	a1, err := app.Create(ctx, "alice", cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Create(ctx, "alice", cl); err != nil {
		t.Fatal(err)
	}
	bob, err := app.Create(ctx, "bob", cl)
	if err != nil {
		t.Fatal(err)
	}
	if !warmLoad(app, a1.Token) {
		t.Fatal("the app never cached alice's session")
	}

	out, errOut, code := runCmd(t, "ls", "-db", dsn)
	t.Logf("ls:\n%s%s", out, errOut)
	if code != 0 || !strings.Contains(out, "3 sessions") || !strings.Contains(out, bob.ID) {
		t.Fatalf("ls: code %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "secret-pw") {
		t.Fatalf("the password was printed:\n%s\n%s", out, errOut)
	}
	if out, errOut, code = runCmd(t, "stats", "-db", dsn); code != 0 || !strings.Contains(out, "1h") {
		t.Fatalf("stats (the app's stored idle timeout, 1h): code %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, "check", "-db", dsn); code != 0 || !strings.Contains(out, "ok: 3 sessions") {
		t.Fatalf("check: code %d\n%s\n%s", code, out, errOut)
	}
	// Revoking from the command line reaches the running app's cache.
	if out, errOut, code = runCmd(t, "revoke", "-db", dsn, "-user", "alice"); code != 0 {
		t.Fatalf("revoke: code %d\n%s\n%s", code, out, errOut)
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, err := app.Load(ctx, a1.Token)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app still accepts alice's token 1 s after revoke")
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := app.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count after revoke = %d, %v", n, err)
	}
	if app.IdleTimeout() != time.Hour {
		t.Fatalf("the commands changed the stored idle timeout")
	}
	if out, errOut, code = runCmd(t, "clear-expired", "-db", dsn); code != 0 {
		t.Fatalf("clear-expired: code %d\n%s\n%s", code, out, errOut)
	}
	if n, err := app.Count(ctx); err != nil || n != 1 {
		t.Fatalf("clear-expired removed a live session: Count = %d, %v", n, err)
	}
	if _, errOut, code = runCmd(t, "compact", "-db", dsn); code != 1 || !strings.Contains(errOut, "is a PostgreSQL server") || strings.Contains(errOut, "secret-pw") {
		t.Fatalf("compact: code %d\n%s", code, errOut)
	}
	down := fmt.Sprintf("postgres://postgres:secret-pw@/postgres?host=%s&port=1&connect_timeout=2", url.QueryEscape(t.TempDir()))
	_, errOut, code = runCmd(t, "ls", "-db", down)
	t.Logf("ls on no server: %s", errOut)
	if code != 1 || !strings.Contains(errOut, "cannot reach") || strings.Contains(errOut, "secret-pw") {
		t.Fatalf("ls on no server: code %d\n%s", code, errOut)
	}
}

// warmLoad loads token until s serves it from its cache.
func warmLoad(s *usersessions.Store, token string) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		before := s.Stats().Hits
		if _, err := s.Load(context.Background(), token); err != nil {
			return false
		}
		if s.Stats().Hits > before {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// Two demos on one PostgreSQL database are two instances of one app: a
// user signed in on both sees both sessions on either, and ending one from
// the other signs that browser out at its next request (issue 12).
func TestTwoDemosOnePostgres(t *testing.T) {
	c := pgtest.Start(t)
	dsn := fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(c.SocketDir()), pgtest.Port)
	demo := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := pgstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		store, err := usersessions.NewStore(b, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		srv := httptest.NewServer(newDemoHandler(store, demoConfig{}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	baseA, baseB := demo(), demo()
	laptop := newBrowser(t, baseA, uaChrome)
	phone := newBrowser(t, baseB, uaIPhone)
	laptop.login("alice")
	phone.login("alice")
	ids, current := laptop.sessions()
	if len(ids) != 2 {
		t.Fatalf("instance A lists %d of alice's sessions, want both", len(ids))
	}
	other := ids[0]
	if other == current {
		other = ids[1]
	}
	if got, _ := phone.sessions(); len(got) != 2 {
		t.Fatalf("instance B lists %d of alice's sessions, want both", len(got))
	}
	resp, _ := laptop.do("POST", "/account/sessions/"+other+"/end", nil, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("A ends B's session: %s", resp.Status)
	}
	if resp, body := phone.do("GET", "/account/sessions/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session has ended") {
		t.Fatalf("B's browser after its session was ended on A: %s", resp.Status)
	}
}
