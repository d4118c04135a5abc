package redisstore

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/redistest"
	"github.com/usersessions/usersessions/storetest"
)

var client = usersessions.Client{IP: netip.MustParseAddr("203.0.113.9"), UserAgent: "test"}

// store opens a Store on a new Backend on e's prefix, closed when t ends.
func (e env) store(t testing.TB, opts *usersessions.Options) *usersessions.Store {
	t.Helper()
	s, _ := e.storeBackend(t, opts, nil)
	return s
}

// storeBackend is store, also returning the Store's Backend; prepare, when
// set, runs on the Backend before the Store opens it.
func (e env) storeBackend(t testing.TB, opts *usersessions.Options, prepare func(*Backend)) (*usersessions.Store, *Backend) {
	t.Helper()
	b, err := Open(ctxT(t), e.srv.URL(), &Options{Prefix: e.prefix, PingInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(b)
	}
	return storetest.NewStore(t, b, opts), b
}

// checked registers a Check of s when t ends.
func checked(t *testing.T, s *usersessions.Store) {
	t.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil && !errors.Is(err, usersessions.ErrClosed) {
			t.Errorf("Check after the test: %v", err)
		}
	})
}

// TestContract runs the Store contract suite (storetest) on Redis.
func TestContract(t *testing.T) {
	srv := sharedEnv(t).srv
	storetest.Run(t, func(t *testing.T, opts *usersessions.Options) *usersessions.Store {
		s := env{srv: srv, prefix: srv.Prefix("contract")}.store(t, opts)
		checked(t, s)
		return s
	})
}

// TestContractCluster runs the contract suite on a Redis Cluster (one node
// owning every slot): the cluster refuses any script or command that
// touches keys of two slots, so this proves every step is one slot's.
func TestContractCluster(t *testing.T) {
	srv := ownEnv(t, redistest.Config{Cluster: true}).srv
	storetest.Run(t, func(t *testing.T, opts *usersessions.Options) *usersessions.Store {
		s := env{srv: srv, prefix: srv.Prefix("contract")}.store(t, opts)
		checked(t, s)
		return s
	})
}

// warm loads token on s until s serves it from its cache (storetest.Warm).
func warm(t testing.TB, s *usersessions.Store, token string) bool { return storetest.Warm(t, s, token) }

// loadQuick is a Load with a short deadline, for a server that may hang.
func loadQuick(s *usersessions.Store, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Load(ctx, token)
	return err
}

// A killed server: while it is down, B (which had the session cached)
// never serves it from its cache: its Loads fail with ErrUnavailable, not
// ErrNotFound; after the restart (append-only file, fsync always) it
// serves it again, and a revocation on A reaches it.
func TestStoreKilledServer(t *testing.T) {
	e := ownEnv(t, redistest.Config{Persist: true})
	a, b := e.store(t, nil), e.store(t, nil)
	ctx := context.Background()
	sess, err := a.Create(ctx, "alice", client)
	if err != nil {
		t.Fatal(err)
	}
	if !warm(t, b, sess.Token) {
		t.Fatal("B never served the session from its cache")
	}
	e.srv.Kill()
	down := time.Now()
	for {
		err := loadQuick(b, sess.Token)
		if errors.Is(err, usersessions.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("B's Load while down: %v, want ErrUnavailable (not a sign-out)", err)
		}
		if time.Since(down) > time.Second {
			t.Fatal("B still serves from its cache 1 s after the server died")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("B stopped serving from its cache %v after the server died", time.Since(down))
	for range 20 {
		if err := loadQuick(b, sess.Token); !errors.Is(err, usersessions.ErrUnavailable) {
			t.Fatalf("B's Load while down: %v, want ErrUnavailable", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !warm(t, b, sess.Token) {
		if time.Now().After(deadline) {
			t.Fatal("B never caches again after the restart")
		}
	}
	if err := a.End(ctx, sess.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	storetest.Refused(t, b, sess.Token, 2*time.Second, "B after the restart, after A's End")
}

// A server restarted without persistence has lost every session: B, which
// had them cached, must never serve one as if it were live, however fast
// the restart, and whether or not it was revoked before.
func TestStoreRestartedEmpty(t *testing.T) {
	e := ownEnv(t, redistest.Config{})
	a, b := e.store(t, nil), e.store(t, nil)
	ctx := context.Background()
	for round := range 10 {
		live, err := a.Create(ctx, "alice", client)
		if err != nil {
			t.Fatal(err)
		}
		revoked, err := a.Create(ctx, "", client)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*usersessions.Session{live, revoked} {
			if !warm(t, b, s.Token) {
				t.Fatalf("round %d: B never served a session from its cache", round)
			}
		}
		if err := a.End(ctx, revoked.ID, usersessions.EndOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.srv.Restart(); err != nil { // SIGKILL, then a new, empty server
			t.Fatal(err)
		}
		for _, s := range []*usersessions.Session{live, revoked, live} {
			if _, err := b.Load(ctx, s.Token); err == nil {
				t.Fatalf("round %d: B served a session the restarted server does not have", round)
			} else if !errors.Is(err, usersessions.ErrNotFound) && !errors.Is(err, usersessions.ErrUnavailable) {
				t.Fatalf("round %d: B's Load after the restart: %v", round, err)
			}
		}
	}
	// Both work on the new server.
	sess, err := b.Create(ctx, "bob", client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx, sess.Token); err != nil {
		t.Fatalf("A's Load of B's new session: %v", err)
	}
}

// A frozen server (SIGSTOP): within two ping intervals B stops serving its
// cache (its Loads fail with ErrUnavailable at their deadline), and after
// the thaw it serves again.
func TestStoreFrozenServer(t *testing.T) {
	e := ownEnv(t, redistest.Config{})
	a, b := e.store(t, nil), e.store(t, nil) // PingInterval 200 ms
	sess, err := a.Create(context.Background(), "alice", client)
	if err != nil {
		t.Fatal(err)
	}
	if !warm(t, b, sess.Token) {
		t.Fatal("B never served the session from its cache")
	}
	thaw := e.srv.Freeze(t)
	frozen := time.Now()
	for {
		err := loadQuick(b, sess.Token)
		if errors.Is(err, usersessions.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("B's Load while frozen: %v", err)
		}
		if time.Since(frozen) > 2*time.Second {
			t.Fatal("B still serves from its cache 2 s after the server froze")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("B stopped serving from its cache %v after the server froze (PingInterval 200ms)", time.Since(frozen))
	if err := loadQuick(b, sess.Token); !errors.Is(err, usersessions.ErrUnavailable) {
		t.Fatalf("B's next Load while frozen: %v", err)
	}
	thaw()
	deadline := time.Now().Add(15 * time.Second)
	for !warm(t, b, sess.Token) {
		if time.Now().After(deadline) {
			t.Fatal("B never caches again after the thaw")
		}
	}
}

// With the append-only file fsynced on every write, what returned survives
// a crash: sessions created load after the restart, revoked ones stay
// revoked, and their history is kept.
func TestDurableAcrossACrash(t *testing.T) {
	e := ownEnv(t, redistest.Config{Persist: true})
	opts := &usersessions.Options{History: time.Hour}
	s := e.store(t, opts)
	ctx := context.Background()
	var kept, ended []*usersessions.Session
	for i := range 40 {
		sess, err := s.Create(ctx, []string{"alice", "bob", ""}[i%3], client)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			kept = append(kept, sess)
		} else {
			ended = append(ended, sess)
		}
	}
	for _, sess := range ended {
		if err := s.End(ctx, sess.ID, usersessions.EndOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.Kill()
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	after := e.store(t, opts)
	for _, sess := range kept {
		if _, err := after.Load(ctx, sess.Token); err != nil {
			t.Fatalf("a session created before the crash: %v", err)
		}
	}
	for _, sess := range ended {
		if _, err := after.Load(ctx, sess.Token); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("a session revoked before the crash: %v", err)
		}
	}
	if n, err := after.Count(ctx); err != nil || n != len(kept) {
		t.Fatalf("Count after the crash = %d, %v; want %d", n, err, len(kept))
	}
	if past, err := after.History(ctx, "alice"); err != nil || len(past) == 0 {
		t.Fatalf("alice's history after the crash: %v, %v", past, err)
	}
	if err := after.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
