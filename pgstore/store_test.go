package pgstore

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/storetest"
)

var client = usersessions.Client{IP: netip.MustParseAddr("203.0.113.9"), UserAgent: "test"}

// store opens a Store on a new Backend on e's table, closed when t ends.
func (e env) store(t testing.TB, opts *usersessions.Options) *usersessions.Store {
	t.Helper()
	b, err := Open(ctxT(t), e.dsn, &Options{Table: e.table, PingInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return storetest.NewStore(t, b, opts)
}

// TestContract runs the Store contract suite (storetest) on PostgreSQL.
func TestContract(t *testing.T) {
	c := sharedEnv(t).c
	storetest.Run(t, func(t *testing.T, opts *usersessions.Options) *usersessions.Store {
		e := env{c: c, dsn: c.DSN(""), table: c.Table("contract")}
		s := e.store(t, opts)
		t.Cleanup(func() {
			if err := s.Check(context.Background()); err != nil && !errors.Is(err, usersessions.ErrClosed) {
				t.Errorf("Check after the test: %v", err)
			}
		})
		return s
	})
}

// A killed postmaster: while the server is down, B (which had the session
// cached) never serves it from its cache, its Loads fail with
// ErrUnavailable, not ErrNotFound; after the restart it serves it again,
// and a revocation on A reaches it (issue 12's fault test, at Store level).
func TestStoreKilledPostmaster(t *testing.T) {
	c := startCluster(t)
	e := env{c: c, dsn: c.DSN(""), table: "sessions"}
	a := e.store(t, nil)
	b := e.store(t, nil)
	ctx := context.Background()
	sess, err := a.Create(ctx, "alice", client)
	if err != nil {
		t.Fatal(err)
	}
	if !storetest.Warm(t, b, sess.Token) {
		t.Fatal("B never served the session from its cache")
	}
	if err := c.Stop(); err != nil { // pg_ctl stop -m immediate
		t.Fatal(err)
	}
	down := time.Now()
	// The feed's connection breaks at once: B stops trusting its cache.
	for {
		_, err := b.Load(ctx, sess.Token)
		if errors.Is(err, usersessions.ErrUnavailable) {
			break
		}
		if err != nil && !errors.Is(err, usersessions.ErrUnavailable) {
			t.Fatalf("B's Load while down: %v, want ErrUnavailable (not a sign-out)", err)
		}
		if time.Since(down) > 2*time.Second {
			t.Fatal("B still serves from its cache 2 s after the server died")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("B stopped serving from its cache %v after the server died", time.Since(down))
	for range 20 { // and never serves it again while down
		if _, err := b.Load(ctx, sess.Token); !errors.Is(err, usersessions.ErrUnavailable) {
			t.Fatalf("B's Load while down: %v, want ErrUnavailable", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := b.Load(ctx, sess.Token); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("B after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Once B's feed listens again, a revocation on A reaches its cache.
	deadline = time.Now().Add(15 * time.Second)
	for !storetest.Warm(t, b, sess.Token) {
		if time.Now().After(deadline) {
			t.Fatal("B never caches again after the restart")
		}
	}
	if err := a.End(ctx, sess.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	storetest.Refused(t, b, sess.Token, 2*time.Second, "B after the restart, after A's End")
}
