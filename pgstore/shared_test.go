package pgstore

import (
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/storetest"
)

// TestShared runs the shared-backend suite (storetest) on PostgreSQL: the
// feed hangs when its server process is frozen, and is cut when that
// process is terminated.
func TestShared(t *testing.T) {
	c := sharedEnv(t).c
	listener := func(t *testing.T, s *usersessions.Store) int {
		return c.WaitBackendPID(t, s.Backend().(*Backend).ListenerName(), 5*time.Second)
	}
	storetest.RunShared(t, storetest.Shared{
		Open: func(t *testing.T) func(*usersessions.Options) *usersessions.Store {
			e := env{c: c, dsn: c.DSN(""), table: c.Table("shared")}
			return func(o *usersessions.Options) *usersessions.Store { return e.store(t, o) }
		},
		HangFeed: func(t *testing.T, s *usersessions.Store) func() { return freeze(t, listener(t, s)) },
		CutFeed:  func(t *testing.T, s *usersessions.Store) { c.Terminate(t, listener(t, s)) },
	})
}
