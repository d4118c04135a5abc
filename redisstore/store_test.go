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
	var o usersessions.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = discard()
	}
	if o.CleanupInterval == 0 {
		o.CleanupInterval = -1
	}
	s, err := usersessions.NewStore(b, &o)
	if err != nil {
		_ = b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, b
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
