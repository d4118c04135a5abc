package redisstore

import (
	"sync"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/storetest"
)

// TestShared runs the shared-backend suite (storetest) on Redis: the feed
// hangs when its connection stops delivering (hanger), and is cut by CLIENT
// KILL.
func TestShared(t *testing.T) {
	srv := sharedEnv(t).srv
	var mu sync.Mutex
	hangers := map[*Backend]*hanger{}
	storetest.RunShared(t, storetest.Shared{
		Open: func(t *testing.T) func(*usersessions.Options) *usersessions.Store {
			e := env{srv: srv, prefix: srv.Prefix("shared")}
			return func(o *usersessions.Options) *usersessions.Store {
				s, _ := e.storeBackend(t, o, func(b *Backend) {
					h := &hanger{}
					b.wrapFeedConn = h.wrap
					mu.Lock()
					hangers[b] = h
					mu.Unlock()
				})
				checked(t, s)
				return s
			}
		},
		HangFeed: func(t *testing.T, s *usersessions.Store) func() {
			mu.Lock()
			h := hangers[s.Backend().(*Backend)]
			mu.Unlock()
			h.hung.Store(true)
			restore := func() { h.hung.Store(false) }
			t.Cleanup(restore)
			return restore
		},
		CutFeed: func(t *testing.T, s *usersessions.Store) {
			env{srv: srv}.killFeed(t, s.Backend().(*Backend))
		},
	})
}
