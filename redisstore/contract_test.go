package redisstore

import (
	"testing"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

// TestBackendContract runs the backend-level contract suite (storetest)
// on Redis, each case under a key prefix of its own.
func TestBackendContract(t *testing.T) {
	srv := sharedEnv(t).srv
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) backend.Backend {
			return env{srv: srv, prefix: srv.Prefix("bc")}.backend(t, nil)
		},
		Reopen: func(t *testing.T, b backend.Backend) backend.Backend {
			prefix := b.(*Backend).prefix
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			return env{srv: srv, prefix: prefix}.backend(t, nil)
		},
		Corrupt: func(t *testing.T, b backend.Backend, id backend.ID) {
			rb := b.(*Backend)
			l, err := rb.locate(ctxT(t), id, false)
			if err != nil || l.kind == 'm' {
				t.Fatalf("locating %s: %v (%q)", id, err, l.String())
			}
			srv.Do(t, "HSET", rb.groupOf(l.user, id).rec(id), "h", "\x01\x02")
		},
		ExactScan: false,
	})
}
