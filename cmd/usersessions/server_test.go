package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// What every database server -db takes must do, whatever the server:
// PostgreSQL (postgres_test.go) and Redis (redis_test.go).

// operatorCommandsOnServer runs ls, stats, check, revoke and clear-expired
// on the server at db while app (opened with IdleTimeout 1h) runs on it:
// they see the app's sessions and stored idle timeout, revoking reaches
// the app's cache, and nothing prints hidden, a word the URL holds (its
// password).
func operatorCommandsOnServer(t *testing.T, db, hidden string, app *usersessions.Store) {
	t.Helper()
	ctx := context.Background()
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

	out, errOut, code := runCmd(t, "ls", "-db", db)
	t.Logf("ls:\n%s%s", out, errOut)
	if code != 0 || !strings.Contains(out, "3 sessions") || !strings.Contains(out, bob.ID) {
		t.Fatalf("ls: code %d\n%s\n%s", code, out, errOut)
	}
	if hidden != "" && strings.Contains(out+errOut, hidden) {
		t.Fatalf("the password was printed:\n%s\n%s", out, errOut)
	}
	if out, errOut, code = runCmd(t, "stats", "-db", db); code != 0 || !strings.Contains(out, "1h") {
		t.Fatalf("stats (the app's stored idle timeout, 1h): code %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, "check", "-db", db); code != 0 || !strings.Contains(out, "ok: 3 sessions") {
		t.Fatalf("check: code %d\n%s\n%s", code, out, errOut)
	}
	// Revoking from the command line reaches the running app's cache.
	if out, errOut, code = runCmd(t, "revoke", "-db", db, "-user", "alice"); code != 0 {
		t.Fatalf("revoke: code %d\n%s\n%s", code, out, errOut)
	}
	deadline := time.Now().Add(time.Second)
	for {
		if _, err := app.Load(ctx, a1.Token); err != nil {
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
	if out, errOut, code = runCmd(t, "clear-expired", "-db", db); code != 0 {
		t.Fatalf("clear-expired: code %d\n%s\n%s", code, out, errOut)
	}
	if n, err := app.Count(ctx); err != nil || n != 1 {
		t.Fatalf("clear-expired removed a live session: Count = %d, %v", n, err)
	}
}

// twoDemosShareSessions runs two demos, each on a Store open makes on one
// server: two instances of one app. A user signed in on both sees both
// sessions on either, and ending one from the other signs that browser out
// at its next request.
func twoDemosShareSessions(t *testing.T, open func() *usersessions.Store) {
	t.Helper()
	demo := func() string {
		srv := httptest.NewServer(newDemoHandler(open(), demoConfig{}))
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
