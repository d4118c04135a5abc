package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

// TestSharedBackendSuite runs the shared-backend suite (storetest) on Redis.
func TestSharedBackendSuite(t *testing.T) {
	srv := sharedEnv(t).srv
	storetest.RunSharedBackend(t, storetest.SharedBackendSuite{
		Open: func(t *testing.T) func(time.Duration) backend.SharedBackend {
			e := env{srv: srv, prefix: srv.Prefix("suite")}
			return func(idle time.Duration) backend.SharedBackend { return e.open(t, idle, nil) }
		},
		Damage: func(t *testing.T, b backend.SharedBackend, r *backend.Record) {
			srv.Do(t, "HSET", recKey(b.(*Backend), r), "h", "\x01\x02")
		},
		Deadline: func(t *testing.T, b backend.SharedBackend, r *backend.Record) int64 {
			d, ok := parseTime(srv.Do(t, "HGET", recKey(b.(*Backend), r), "d"))
			if !ok {
				t.Fatalf("no deadline stored for %s", r.ID)
			}
			// The index agrees, to the microsecond.
			if r.UserID != "" {
				if s := srv.Do(t, "ZSCORE", b.(*Backend).userGroup(r.UserID).idx(), r.ID.String()); s != score(d) {
					t.Fatalf("index score %s, deadline %s", s, strconv.Quote(score(d)))
				}
			}
			return d
		},
	})
}

// recKey is the key of r's record in b.
func recKey(b *Backend, r *backend.Record) string { return b.groupOf(r.UserID, r.ID).rec(r.ID) }
