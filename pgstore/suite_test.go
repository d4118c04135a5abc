package pgstore

import (
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/storetest"
)

// TestBackendSuite runs the Backend suite (storetest) on PostgreSQL.
func TestBackendSuite(t *testing.T) {
	c := sharedEnv(t).c
	storetest.RunBackend(t, storetest.BackendSuite{
		Open: func(t *testing.T) func(time.Duration) usersessions.SharedBackend {
			e := env{c: c, dsn: c.DSN(""), table: c.Table("suite")}
			return func(idle time.Duration) usersessions.SharedBackend { return e.open(t, idle, nil) }
		},
		Damage: func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record) {
			c.Exec(t, "UPDATE "+b.(*Backend).table+" SET hash = '\\x0102' WHERE id = $1", r.ID[:])
		},
		Deadline: func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record) int64 {
			e := env{c: c, dsn: c.DSN("")}
			return e.queryInt64(t, "SELECT deadline FROM "+b.(*Backend).table+" WHERE id = $1", r.ID[:])
		},
	})
}
