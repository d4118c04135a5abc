package control_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

func TestControl(t *testing.T) {
	store, ctl := openControlled(t, &usersessions.Options{IdleTimeout: time.Hour})
	if ctl.Path() != store.Path()+".sock" || ctl.Path() != control.SocketPath(store.Path()) {
		t.Errorf("socket at %s", ctl.Path())
	}
	fi, err := os.Lstat(ctl.Path())
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v", fi.Mode(), err)
	}
	a1 := create(t, store, "alice", usersessions.Client{UserAgent: "A"})
	a2 := create(t, store, "alice", usersessions.Client{UserAgent: "B"})
	b := create(t, store, "bob", usersessions.Client{})

	c := dial(t, ctl.Path())
	if info := c.Info(); info.Path != store.Path() || info.IdleTimeout != time.Hour || info.Count != 3 ||
		info.Lifetime != store.Lifetime() || info.Stats.Creates != 3 {
		t.Errorf("info %+v", info)
	}
	var ids []string
	for s, err := range c.All(ctx, usersessions.Filter{UserID: "alice"}) {
		if err != nil {
			t.Fatal(err)
		}
		if !s.Active(time.Now()) || !s.Deadline.Equal(s.LastSeen.Add(time.Hour)) || s.UserID != "alice" {
			t.Errorf("listed %+v", s)
		}
		ids = append(ids, s.ID)
	}
	if want := []string{a1.ID, a2.ID}; !slices.Equal(sorted(ids), sorted(want)) {
		t.Errorf("alice's sessions through the socket: %v, want %v", ids, want)
	}
	if err := c.End(ctx, b.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(ctx, b.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf("bob's session loads after End through the socket: %v", err)
	}
	if err := c.End(ctx, b.ID, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf("second End: %v", err)
	}
	if n, err := c.EndUser(ctx, "alice", a2.ID, usersessions.EndOptions{}); n != 1 || err != nil {
		t.Errorf("EndUser: %d, %v", n, err)
	}
	if _, err := store.Load(ctx, a1.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf("a1 loads: %v", err)
	}
	if _, err := store.Load(ctx, a2.Token); err != nil {
		t.Errorf("the kept session: %v", err)
	}
	if n, err := c.EndUser(ctx, "", "", usersessions.EndOptions{}); n != 0 || err != nil {
		t.Errorf("EndUser of no user: %d, %v", n, err)
	}
	if s, err := c.Get(ctx, a2.ID); err != nil || s.UserID != "alice" || s.UserAgent != "B" {
		t.Errorf("Get: %+v, %v", s, err)
	}
	if _, err := c.Get(ctx, b.ID); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf("Get of an ended session: %v", err)
	}
	if n, err := c.Count(ctx); n != 1 || err != nil {
		t.Errorf("Count: %d, %v", n, err)
	}
	if st, err := c.Stats(ctx); err != nil || st.Deletes != 2 {
		t.Errorf("Stats: %+v, %v", st, err)
	}
	if n, err := c.ClearExpired(ctx); n != 0 || err != nil {
		t.Errorf("ClearExpired: %d, %v", n, err)
	}
	if err := c.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}

	// Garbage gets a 400, not a hang.
	conn, err := net.Dial("unix", ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("nonsense\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Errorf("reply to garbage: %q", line)
	}

	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := (*control.Server)(nil).Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if _, err := os.Lstat(ctl.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := control.Dial(ctx, ctl.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dial after Close: %v", err)
	}
	if _, err := c.Count(ctx); err == nil {
		t.Error("Count after Close succeeded")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Every field of a Filter applies, in the app: the user, anonymous
// sessions, the state, the IP prefix, the search and the cursor.
func TestControlFilter(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	store, ctl := openControlled(t, &usersessions.Options{IdleTimeout: time.Hour, Now: clock})
	ip := func(s string) usersessions.Client { return usersessions.Client{IP: netip.MustParseAddr(s)} }
	old := create(t, store, "carol", ip("198.51.100.9"))
	now = now.Add(2 * time.Hour) // old is expired now
	alice := create(t, store, "alice", ip("203.0.113.7"))
	anon := create(t, store, "", ip("203.0.113.8"))
	bob := create(t, store, "bob", ip("2001:db8::1"))
	c := dial(t, ctl.Path())

	for _, tc := range []struct {
		name string
		f    usersessions.Filter
		want []string
	}{
		{"all", usersessions.Filter{}, []string{old.ID, alice.ID, anon.ID, bob.ID}},
		{"user", usersessions.Filter{UserID: "alice"}, []string{alice.ID}},
		{"anonymous", usersessions.Filter{Anonymous: true}, []string{anon.ID}},
		{"active", usersessions.Filter{State: usersessions.ActiveOnly}, []string{alice.ID, anon.ID, bob.ID}},
		{"expired", usersessions.Filter{State: usersessions.ExpiredOnly}, []string{old.ID}},
		{"prefix", usersessions.Filter{IPPrefix: netip.MustParsePrefix("203.0.113.0/24")}, []string{alice.ID, anon.ID}},
		{"v6", usersessions.Filter{IPPrefix: netip.MustParsePrefix("2001:db8::/32")}, []string{bob.ID}},
		{"search", usersessions.Filter{Search: "ALI"}, []string{alice.ID}},
		{"search ip", usersessions.Filter{Search: "113.8"}, []string{anon.ID}},
	} {
		var got []string
		for s, err := range c.All(ctx, tc.f) {
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = append(got, s.ID)
		}
		if !slices.Equal(sorted(got), sorted(tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var all, rest []string // in the store's order
	for s, err := range c.All(ctx, usersessions.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s.ID)
	}
	for s, err := range c.All(ctx, usersessions.Filter{After: all[1]}) {
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, s.ID)
	}
	if !slices.Equal(rest, all[2:]) {
		t.Errorf("after %s: %v, want %v", all[1], rest, all[2:])
	}
	// A bad cursor is the store's ErrNotFound, across the socket.
	for _, err := range c.All(ctx, usersessions.Filter{After: "not an id"}) {
		if !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("a bad cursor: %v", err)
		}
	}
	// Breaking out of the loop ends the listing; the client goes on.
	n := 0
	for range c.All(ctx, usersessions.Filter{}) {
		n++
		break
	}
	if cnt, err := c.Count(ctx); n != 1 || cnt != 4 || err != nil {
		t.Errorf("after a listing cut short: %d listed, Count %d, %v", n, cnt, err)
	}
	for _, err := range c.All(ctx, usersessions.Filter{State: usersessions.State(7)}) {
		if err == nil || !strings.Contains(err.Error(), "State") {
			t.Errorf("an unknown state: %v", err)
		}
	}
}

// EndOptions cross the socket to History; ones the server cannot keep are
// refused before anything ends.
func TestControlEndOptions(t *testing.T) {
	store, ctl := openControlled(t, &usersessions.Options{History: time.Hour})
	s := create(t, store, "alice", usersessions.Client{})
	keep := create(t, store, "alice", usersessions.Client{})
	c := dial(t, ctl.Path())
	if err := c.End(ctx, s.ID, usersessions.EndOptions{Reason: "x\ny"}); err == nil {
		t.Error("a reason with a newline was taken")
	}
	if err := c.End(ctx, s.ID, usersessions.EndOptions{Reason: usersessions.EndAdmin, By: "admin:root"}); err != nil {
		t.Fatal(err)
	}
	hist, err := store.History(ctx, "alice")
	if err != nil || len(hist) != 1 || hist[0].Reason != usersessions.EndAdmin || hist[0].By != "admin:root" {
		t.Fatalf("history %+v, %v", hist, err)
	}
	if n, err := c.EndUser(ctx, "alice", "", usersessions.EndOptions{By: strings.Repeat("b", 300)}); err == nil || n != 0 {
		t.Errorf("an overlong By: %d, %v", n, err)
	}
	if _, err := store.Get(ctx, keep.ID); err != nil {
		t.Errorf("a refused EndUser ended a session: %v", err)
	}
}

// User IDs and session IDs that are not plain path segments ("/", "..",
// spaces, "?") reach the server intact.
func TestControlPathEscaping(t *testing.T) {
	store, ctl := openControlled(t, nil)
	c := dial(t, ctl.Path())
	for _, user := range []string{"a/b", "..", ".", "a b?#%", "ü"} {
		s := create(t, store, user, usersessions.Client{})
		if n, err := c.EndUser(ctx, user, "", usersessions.EndOptions{}); n != 1 || err != nil {
			t.Errorf("EndUser(%q): %d, %v", user, n, err)
		}
		if _, err := store.Get(ctx, s.ID); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("%q's session is still there: %v", user, err)
		}
	}
	for _, id := range []string{"", "..", ".", "a/b", "?"} {
		if _, err := c.Get(ctx, id); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
		if err := c.End(ctx, id, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("End(%q): %v", id, err)
		}
	}
}

// The server's errors are JSON with a status, and Client turns them back
// into the usersessions errors.
func TestControlErrors(t *testing.T) {
	store, ctl := openControlled(t, nil)
	hc := unixHTTP(ctl.Path())
	for _, tc := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", "/v1/sessions?users=alice", 400, "bad_request"},
		{"GET", "/v1/sessions?state=gone", 400, "bad_request"},
		{"GET", "/v1/sessions?limit=-1", 400, "bad_request"},
		{"GET", "/v1/sessions?ip=nope", 400, "bad_request"},
		{"GET", "/v1/sessions?user=a&user=b", 400, "bad_request"},
		{"GET", "/v1/info?x=1", 400, "bad_request"},
		{"DELETE", "/v1/sessions/abc?keep=x", 400, "bad_request"},
		{"GET", "/v1/sessions/abc", 404, "not_found"},
		{"GET", "/v2/info", 404, "no_endpoint"},
		{"GET", "/v1/sessions/", 404, "no_endpoint"},
		{"POST", "/v1/info", 405, "method_not_allowed"},
		{"DELETE", "/v1/sessions", 405, "method_not_allowed"},
	} {
		req, _ := http.NewRequest(tc.method, "http://x"+tc.target, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct{ Error, Code string }
		jerr := decodeJSON(resp, &rep)
		if resp.StatusCode != tc.status || jerr != nil || rep.Code != tc.code || rep.Error == "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %+v %v, want %d %s", tc.method, tc.target, resp.StatusCode, rep, jerr, tc.status, tc.code)
		}
	}

	c := dial(t, ctl.Path())
	store.Close()
	if _, err := c.Count(ctx); !errors.Is(err, usersessions.ErrClosed) {
		t.Errorf("Count of a closed store: %v", err)
	}
	for _, err := range c.All(ctx, usersessions.Filter{}) {
		if !errors.Is(err, usersessions.ErrClosed) {
			t.Errorf("All of a closed store: %v", err)
		}
	}
	if _, err := c.Backup(ctx, new(strings.Builder)); !errors.Is(err, usersessions.ErrClosed) {
		t.Errorf("Backup of a closed store: %v", err)
	}
}

// A damaged record is a line of the listing that wraps ErrCorrupt, and the
// listing goes on; Check reports it as the store does.
func TestControlCorruptRecord(t *testing.T) {
	path := damagedDB(t)
	store := openStore(t, path, nil)
	ctl, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	c := dial(t, ctl.Path())
	var good, bad int
	for s, err := range c.All(ctx, usersessions.Filter{}) {
		switch {
		case errors.Is(err, usersessions.ErrCorrupt):
			bad++
		case err != nil:
			t.Fatal(err)
		case s.UserID == "good":
			good++
		}
	}
	if good != 2 || bad != 1 {
		t.Errorf("listing over a damaged record: %d good, %d errors; want 2 and 1", good, bad)
	}
	direct := store.Check(ctx)
	viaSocket := c.Check(ctx)
	if !errors.Is(viaSocket, usersessions.ErrCorrupt) || direct == nil || viaSocket.Error() != direct.Error() {
		t.Errorf("Check through the socket:\n%v\nwant\n%v", viaSocket, direct)
	}
}

// A store without a file has no place for a socket beside it: the default
// path is refused, not made up from the store's name in the working
// folder. With a path, it is served; Backup is ErrNotSupported.
func TestControlStoreWithoutFile(t *testing.T) {
	t.Chdir(shortDir(t))
	store, err := usersessions.NewStore(fileless{}, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if ctl, err := control.Serve(store, ""); err == nil {
		ctl.Close()
		t.Fatalf("Serve(%s, \"\") served %s", store.Path(), ctl.Path())
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("Serve left %v in the working folder", entries)
	}
	ctl, err := control.Serve(store, "app.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	c := dial(t, "app.sock")
	if info := c.Info(); info.File != nil || info.Backend == "bbolt" || info.Backend == "" {
		t.Errorf("info of a store without a file: %+v", info)
	}
	if _, err := c.Backup(ctx, new(strings.Builder)); !errors.Is(err, usersessions.ErrNotSupported) {
		t.Errorf("Backup: %v", err)
	}
}

func TestControlSocketInTheWay(t *testing.T) {
	store, ctl := openControlled(t, nil)
	// A live server: a second one is refused, the first keeps its socket.
	if _, err := control.Serve(store, ""); err == nil || !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("second server: %v", err)
	}
	dial(t, ctl.Path())
	ctl.Close()

	// A stale socket (a server that died) is replaced.
	path := control.SocketPath(store.Path())
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := control.Dial(ctx, path); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial of a stale socket: %v", err)
	}
	ctl2, err := control.Serve(store, "")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	dial(t, ctl2.Path())
	ctl2.Close()

	// A regular file is never removed.
	os.WriteFile(path, []byte("mine"), 0o600)
	if _, err := control.Serve(store, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "mine" {
		t.Error("the regular file was changed")
	}
	// Close removes only its own socket: not one another server put
	// in its place.
	os.Remove(path)
	ctl3, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	os.WriteFile(path, []byte("other"), 0o600)
	ctl3.Close()
	if data, _ := os.ReadFile(path); string(data) != "other" {
		t.Error("Close removed a file that was not its socket")
	}
}

// Shutdown lets a request in progress finish, and refuses new ones at
// once: the socket file is gone.
func TestControlShutdown(t *testing.T) {
	store, ctl := openControlled(t, nil)
	padSessions(t, store, 50) // more than the socket's buffers hold
	c := dial(t, ctl.Path())
	b := startSlowBackup(t, c)
	done := make(chan error, 1)
	go func() { done <- ctl.Shutdown(ctx) }()
	for {
		if _, err := os.Lstat(ctl.Path()); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := control.Dial(ctx, ctl.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dial during Shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before the backup finished: %v", err)
	default:
	}
	checkCopy(t, b.Finish(t), 50)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := ctl.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}
