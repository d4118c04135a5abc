package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/storetest"
)

// TestBackendSuite runs the Backend suite (storetest) on Redis.
func TestBackendSuite(t *testing.T) {
	srv := sharedEnv(t).srv
	storetest.RunBackend(t, storetest.BackendSuite{
		Open: func(t *testing.T) func(time.Duration) usersessions.SharedBackend {
			e := env{srv: srv, prefix: srv.Prefix("suite")}
			return func(idle time.Duration) usersessions.SharedBackend { return e.open(t, idle, nil) }
		},
		Damage: func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record) {
			srv.Do(t, "HSET", recKey(b.(*Backend), r), "h", "\x01\x02")
		},
		Deadline: func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record) int64 {
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
func recKey(b *Backend, r *usersessions.Record) string { return b.groupOf(r.UserID, r.ID).rec(r.ID) }
