package pgstore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

func TestNoticesSplitAndParse(t *testing.T) {
	var ids []backend.ID
	for i := range 450 {
		ids = append(ids, backend.ID{byte(i), byte(i >> 8), 0xff, 15: 7})
	}
	ps := notices("0123456789abcdef", ids)
	if len(ps) != 3 {
		t.Fatalf("%d notices for 450 IDs, want 3", len(ps))
	}
	var back []backend.ID
	for _, p := range ps {
		if len(p) >= 8000 {
			t.Fatalf("payload of %d bytes exceeds PostgreSQL's limit", len(p))
		}
		tag, got, ok := parseNotice(p)
		if !ok || tag != "0123456789abcdef" {
			t.Fatalf("parse %q: %q %v", p[:40], tag, ok)
		}
		back = append(back, got...)
	}
	if !slices.Equal(back, ids) {
		t.Fatal("IDs changed through notices")
	}
	if ps := notices("x", nil); len(ps) != 0 {
		t.Fatalf("notices for no IDs: %q", ps)
	}
	for _, bad := range []string{"", "v1", "v2 tag 00", "v1 tag 0011", "v1 tag " + strings.Repeat("zz", 16)} {
		if _, _, ok := parseNotice(bad); ok {
			t.Errorf("parseNotice(%q) accepted", bad)
		}
	}
}

func TestFeedLostAndRestoredAfterTerminate(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, &Options{PingInterval: 200 * time.Millisecond})
	fb := storetest.Subscribe(t, b)
	pid := e.c.WaitBackendPID(t, b.ListenerName(), 5*time.Second)
	start := time.Now()
	e.c.Terminate(t, pid)
	lost := fb.Wait(t, "lost", 5*time.Second)
	restored := fb.Wait(t, "restored", 10*time.Second)
	t.Logf("terminate → Lost %v → Restored %v", lost.At.Sub(start), restored.At.Sub(start))
	if d := lost.At.Sub(start); d > time.Second {
		t.Fatalf("Lost took %v after the listener's process ended", d)
	}
	if newPID := e.c.WaitBackendPID(t, b.ListenerName(), 5*time.Second); newPID == pid {
		t.Fatal("listener still on the terminated process")
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

func TestFeedLostWhenListenerFreezes(t *testing.T) {
	e := sharedEnv(t)
	const ping = 500 * time.Millisecond
	b := e.open(t, 0, &Options{PingInterval: ping})
	fb := storetest.Subscribe(t, b)
	pid := e.c.WaitBackendPID(t, b.ListenerName(), 5*time.Second)
	// Let the listener settle into its wait, then freeze its server process.
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_ = freeze(t, pid)
	lost := fb.Wait(t, "lost", 5*ping)
	d := lost.At.Sub(start)
	t.Logf("frozen listener → Lost after %v (PingInterval %v)", d, ping)
	if d > 2*ping {
		t.Fatalf("Lost %v after the freeze, want within 2 ping intervals (%v)", d, 2*ping)
	}
	// It reconnects on a new connection while the old process stays frozen.
	fb.Wait(t, "restored", 10*time.Second)
}

func TestCallsWhileServerDown(t *testing.T) {
	c := startCluster(t)
	e := env{c: c, dsn: c.DSN(""), table: "sessions"}
	a := e.open(t, 0, nil)
	b := e.open(t, 0, &Options{PingInterval: 200 * time.Millisecond})
	fb := storetest.Subscribe(t, b)
	r := rec("alice", 0, time.Hour)
	mustCreate(t, a, r)

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	fb.Wait(t, "lost", 2*time.Second)
	var got backend.Record
	calls := map[string]func() error{
		"Get":    func() error { return a.Get(ctxT(t), r.ID, &got, true) },
		"Create": func() error { return create(a, ctxT(t), rec("x", 0, time.Hour)) },
		"Delete": func() error { return del(a, ctxT(t), r.ID, nil) },
		"Touch":  func() error { return a.Touch(ctxT(t), []backend.Activity{{ID: r.ID, LastSeen: 1}}) },
		"Count":  func() error { _, err := a.Count(ctxT(t)); return err },
		"Update": func() error {
			return update(a, ctxT(t), r.ID, func(*backend.Record) error { return nil })
		},
	}
	storetest.AllUnavailable(t, calls)

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fb.Wait(t, "restored", 15*time.Second)
	// Calls work again (the pool drops its dead connections).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := a.Get(ctxT(t), r.ID, &got, true)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.UserID != "alice" {
		t.Fatalf("record after restart: %+v", got)
	}
	if err := del(a, ctxT(t), r.ID, nil); err != nil {
		t.Fatalf("Delete after restart: %v", err)
	}
	if ev := fb.Wait(t, "changed", 5*time.Second); len(ev.IDs) != 1 || ev.IDs[0] != r.ID {
		t.Fatalf("feed after restart: %v", ev.IDs)
	}
}

func TestCloseNeverHangsOnAFrozenServer(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, &Options{PingInterval: 5 * time.Second})
	storetest.Subscribe(t, b)
	pid := e.c.WaitBackendPID(t, b.ListenerName(), 5*time.Second)
	thaw := freeze(t, pid)
	defer thaw()
	start := time.Now()
	_ = b.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func TestDeadlineOnAHungServerIsUnavailable(t *testing.T) {
	e := sharedEnv(t)
	e.dsn += " pool_max_conns=1 application_name=hung_pool"
	b := e.open(t, 0, nil)
	storetest.GetOnHungServer(t, b, func() func() { return freeze(t, e.c.WaitBackendPID(t, "hung_pool", 5*time.Second)) })
}
