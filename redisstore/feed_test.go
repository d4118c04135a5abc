package redisstore

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/redistest"
	"github.com/usersessions/usersessions/storetest"
)

// subscribe subscribes a recorder to b.
func subscribe(t testing.TB, b *Backend) *storetest.FeedRecorder { return storetest.Subscribe(t, b) }

// killFeed ends b's feed connections from the server's side (CLIENT KILL),
// as an administrator or a proxy restart would.
func (e env) killFeed(t testing.TB, b *Backend) {
	t.Helper()
	killed := 0
	for _, line := range strings.Split(e.do(t, "CLIENT", "LIST"), "\n") {
		if id, ok := strings.CutPrefix(line, "id="); ok && strings.Contains(line, " name="+b.FeedName()+" ") {
			id, _, _ = strings.Cut(id, " ")
			e.do(t, "CLIENT", "KILL", "ID", id)
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named %s", b.FeedName())
	}
}

// clientNamed reports whether a connection named name is open.
func clientNamed(e env, t testing.TB, name string) bool {
	return strings.Contains(e.do(t, "CLIENT", "LIST"), " name="+name+" ")
}

func TestNoticesParse(t *testing.T) {
	id := backend.ID{1, 2, 3}
	tag, ids, ok := parseNotice("v1 0123456789abcdef " + id.String() + " " + id.String())
	if !ok || tag != "0123456789abcdef" || len(ids) != 2 || ids[0] != id {
		t.Fatalf("parseNotice = %q %v %v", tag, ids, ok)
	}
	for _, bad := range []string{"", "v1", "v2 tag " + id.String(), "v1 tag xyz", "v1 tag " + id.String() + "x"} {
		if _, _, ok := parseNotice(bad); ok {
			t.Errorf("parseNotice(%q) accepted", bad)
		}
	}
}

func TestFeedLostAndRestoredAfterClientKill(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, &Options{PingInterval: 200 * time.Millisecond})
	fb := subscribe(t, b)
	if !clientNamed(e, t, b.FeedName()) {
		t.Fatalf("no connection named %s", b.FeedName())
	}
	start := time.Now()
	e.killFeed(t, b)
	lost := fb.Wait(t, "lost", 5*time.Second)
	restored := fb.Wait(t, "restored", 10*time.Second)
	t.Logf("CLIENT KILL → Lost %v → Restored %v", lost.At.Sub(start), restored.At.Sub(start))
	if d := lost.At.Sub(start); d > time.Second {
		t.Fatalf("Lost took %v after the connection was killed", d)
	}
	// Live again: A's change reaches B.
	r := rec("alice", 0, time.Hour)
	mustCreate(t, a, r)
	if err := del(a, ctxT(t), r.ID, nil); err != nil {
		t.Fatal(err)
	}
	if ev := fb.Wait(t, "changed", 5*time.Second); len(ev.IDs) != 1 || ev.IDs[0] != r.ID {
		t.Fatalf("after Restored: %v", ev.IDs)
	}
}

// hanger wraps the feed's connections so that a test can make them hang:
// what the server sends is held back, as on a silent network, while the
// connection stays open.
type hanger struct {
	hung atomic.Bool
}

func (h *hanger) wrap(c net.Conn) net.Conn { return &hangConn{Conn: c, h: h} }

type hangConn struct {
	net.Conn
	h      *hanger
	closed atomic.Bool
}

func (c *hangConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for c.h.hung.Load() && !c.closed.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *hangConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func TestFeedLostWhenItsConnectionHangs(t *testing.T) {
	e := sharedEnv(t)
	const ping = 300 * time.Millisecond
	b := e.backend(t, &Options{PingInterval: ping})
	h := &hanger{}
	b.wrapFeedConn = h.wrap
	if _, err := b.Open(ctxT(t), 0, discard()); err != nil {
		t.Fatal(err)
	}
	fb := subscribe(t, b)
	start := time.Now()
	h.hung.Store(true)
	lost := fb.Wait(t, "lost", 5*ping)
	d := lost.At.Sub(start)
	t.Logf("hung feed connection → Lost after %v (PingInterval %v)", d, ping)
	if d > 2*ping {
		t.Fatalf("Lost %v after the hang, want within 2 ping intervals (%v)", d, 2*ping)
	}
	if ev, ok := fb.Next(2 * ping); ok {
		t.Fatalf("%s while the network is still silent", ev.Kind)
	}
	h.hung.Store(false)
	fb.Wait(t, "restored", 15*time.Second)
}

func TestFeedLostWhenTheServerFreezes(t *testing.T) {
	e := ownEnv(t, redistest.Config{})
	const ping = 300 * time.Millisecond
	b := e.open(t, 0, &Options{PingInterval: ping})
	fb := subscribe(t, b)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	thaw := e.srv.Freeze(t)
	lost := fb.Wait(t, "lost", 5*ping)
	d := lost.At.Sub(start)
	t.Logf("frozen server → Lost after %v (PingInterval %v)", d, ping)
	if d > 2*ping {
		t.Fatalf("Lost %v after the freeze, want within 2 ping intervals (%v)", d, 2*ping)
	}
	thaw()
	fb.Wait(t, "restored", 15*time.Second)
}

func TestCallsWhileServerDown(t *testing.T) {
	e := ownEnv(t, redistest.Config{Persist: true})
	a := e.open(t, 0, nil)
	b := e.open(t, 0, &Options{PingInterval: 200 * time.Millisecond})
	fb := subscribe(t, b)
	r := rec("alice", 0, time.Hour)
	mustCreate(t, a, r)

	e.srv.Kill()
	fb.Wait(t, "lost", 2*time.Second)
	var got backend.Record
	calls := map[string]func() error{
		"Get":    func() error { return a.Get(ctxT(t), r.ID, &got, true) },
		"Create": func() error { _, err := a.Create(ctxT(t), rec("x", 0, time.Hour), nil); return err },
		"Delete": func() error { return del(a, ctxT(t), r.ID, nil) },
		"Touch":  func() error { return a.Touch(ctxT(t), []backend.Activity{{ID: r.ID, LastSeen: 1}}) },
		"Count":  func() error { _, err := a.Count(ctxT(t)); return err },
		"List": func() error {
			return a.ListByUser(ctxT(t), "alice", func(*backend.Record, error) {})
		},
		"Update": func() error {
			return update(a, ctxT(t), r.ID, func(*backend.Record) error { return nil })
		},
		"DeleteExpired": func() error {
			_, _, err := a.DeleteExpired(ctxT(t), backend.ExpiredQuery{Now: base})
			return err
		},
	}
	storetest.AllUnavailable(t, calls)

	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	fb.Wait(t, "restored", 15*time.Second)
	if err := a.Get(ctxT(t), r.ID, &got, true); err != nil || got.UserID != "alice" {
		t.Fatalf("Get after restart (append-only file, fsync always): %+v, %v", got, err)
	}
	if err := del(a, ctxT(t), r.ID, nil); err != nil {
		t.Fatalf("Delete after restart: %v", err)
	}
	if ev := fb.Wait(t, "changed", 5*time.Second); len(ev.IDs) != 1 || ev.IDs[0] != r.ID {
		t.Fatalf("feed after restart: %v", ev.IDs)
	}
}

func TestCloseNeverHangsOnAFrozenServer(t *testing.T) {
	e := ownEnv(t, redistest.Config{})
	b := e.open(t, 0, &Options{PingInterval: 5 * time.Second})
	subscribe(t, b)
	thaw := e.srv.Freeze(t)
	defer thaw()
	start := time.Now()
	_ = b.Close()
	if d := time.Since(start); d > 7*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func TestDeadlineOnAHungServerIsUnavailable(t *testing.T) {
	e := ownEnv(t, redistest.Config{})
	b := e.open(t, 0, nil)
	storetest.GetOnHungServer(t, b, func() func() { return e.srv.Freeze(t) })
}

// Many moves race many revocations of the same sessions: a session is never
// both revoked (Delete returned nil, or DeleteByUser reported it) and alive
// afterwards, and never lives in two groups.
func TestMovesRaceRevocations(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		r := rec("", 0, time.Hour)
		mustCreate(t, a, r)
		var revoked atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, user := range []string{"alice", "bob", ""} {
				err := update(a, ctx, r.ID, func(x *backend.Record) error { x.UserID = user; return nil })
				if err != nil && !errors.Is(err, usersessions.ErrNotFound) {
					t.Errorf("round %d: move to %q: %v", round, user, err)
				}
			}
		})
		wg.Go(func() {
			var err error
			switch round % 3 {
			case 0:
				err = del(b, ctx, r.ID, nil)
			case 1:
				var removed []backend.Record
				removed, err = b.DeleteByUser(ctx, "alice", backend.ID{}, backend.Ending{})
				if err == nil && len(removed) == 0 {
					err = usersessions.ErrNotFound
				}
			case 2:
				owner := "bob"
				err = del(b, ctx, r.ID, &owner)
			}
			if err == nil {
				revoked.Store(true)
			} else if !errors.Is(err, usersessions.ErrNotFound) {
				t.Errorf("round %d: revoke: %v", round, err)
			}
		})
		wg.Wait()
		var got backend.Record
		err := a.Get(ctx, r.ID, &got, false)
		if revoked.Load() && err == nil {
			t.Fatalf("round %d: revoked, yet the session lives on as %q", round, got.UserID)
		}
		copies := 0
		for _, user := range []string{"", "alice", "bob"} {
			if e.do(t, "EXISTS", a.groupOf(user, r.ID).rec(r.ID)) == "1" {
				copies++
			}
		}
		if copies > 1 || (err == nil) != (copies == 1) {
			t.Fatalf("round %d: %d copies of the record, Get %v", round, copies, err)
		}
	}
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
