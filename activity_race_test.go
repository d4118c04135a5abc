package usersessions

import (
	"testing"

	"github.com/usersessions/usersessions/backend"
)

// A removal that comes while an add holds its shard's lock, after the add
// checked the removals count and before it published its entry, finds no
// entry (remove looks without the lock) and leaves. The add must notice
// it and take its entry back: else a session ended at that moment keeps
// an activity entry, and Touch answers nil for it (seen on redisstore, in
// storetest's RevokedNeverServed, about one run in twenty under load).
func TestActivityAddRacingRemove(t *testing.T) {
	tbl := newActivityTable()
	id := backend.ID{0, 0, 0, 0, 0, 0, 7, 9}
	since := tbl.removals(id)
	testHookActivityBeforePublish = func() {
		testHookActivityBeforePublish = nil
		done := make(chan struct{})
		go func() { // another goroutine, as an End's forget would be
			tbl.remove(id)
			close(done)
		}()
		<-done
	}
	defer func() { testHookActivityBeforePublish = nil }()
	added := tbl.add(id, 1, clientA, activity{client: &clientInfo{}}, 1<<62, since)
	if _, ok := tbl.lookup(id); ok {
		t.Fatalf("an entry outlived the removal that raced its add (add = %v)", added)
	}
	if added {
		t.Error("add reported success although a removal came first")
	}
}
