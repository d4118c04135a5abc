package pgstore

import (
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

// TestSharedBackendSuite runs the shared-backend suite (storetest) on PostgreSQL.
func TestSharedBackendSuite(t *testing.T) {
	c := sharedEnv(t).c
	storetest.RunSharedBackend(t, storetest.SharedBackendSuite{
		Open: func(t *testing.T) func(time.Duration) backend.SharedBackend {
			e := env{c: c, dsn: c.DSN(""), table: c.Table("suite")}
			return func(idle time.Duration) backend.SharedBackend { return e.open(t, idle, nil) }
		},
		Damage: func(t *testing.T, b backend.SharedBackend, r *backend.Record) {
			c.Exec(t, "UPDATE "+b.(*Backend).table+" SET hash = '\\x0102' WHERE id = $1", r.ID[:])
		},
		Deadline: func(t *testing.T, b backend.SharedBackend, r *backend.Record) int64 {
			e := env{c: c, dsn: c.DSN("")}
			return e.queryInt64(t, "SELECT deadline FROM "+b.(*Backend).table+" WHERE id = $1", r.ID[:])
		},
		Retries: func(b backend.SharedBackend) int64 { return b.(*Backend).retries.Load() },
	})
}
