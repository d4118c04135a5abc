package usersessions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestFailedWriteReadsNoWholeFile guards that a write that fails (ending a
// session that does not exist, a stale Save) costs no walk of the whole
// file. With NoFreelistSync, a physical rollback rebuilds the freelist by
// walking every page (in a read transaction of its own, which Stats
// counts) under the writer lock; a failed write must take bbolt's cheap
// path, or anyone could make a request cost a scan of the database by
// ending random IDs.
func TestFailedWriteReadsNoWholeFile(t *testing.T) {
	s := openTest(t, false, nil)
	for i := range 50 {
		mustCreate(t, s, fmt.Sprintf("u%d", i), clientA)
	}
	db := s.b.(*boltBackend).db
	missing := mustCreate(t, s, "gone", clientA).ID
	if err := s.End(ctx, missing, EndOptions{}); err != nil {
		t.Fatal(err)
	}
	before := db.Stats().TxN
	for range 5 {
		if err := s.End(ctx, missing, EndOptions{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("End of an ended session = %v, want ErrNotFound", err)
		}
	}
	if n := db.Stats().TxN - before; n != 0 {
		t.Errorf("5 failed writes started %d read transactions (a walk of the whole file each), want 0", n)
	}
}

// TestWriteAfterPanicNeverHangs makes a write transaction panic (as
// reading a page damaged under a running store does) on a file with a
// damaged page. bbolt's Update answers a panic with a rollback that walks
// every page to rebuild the freelist; on the damaged page that walk panics
// too, before bbolt releases its writer lock, and every later write and
// Close then waited forever.
func TestWriteAfterPanicNeverHangs(t *testing.T) {
	path := t.TempDir() + "/sessions.db"
	s, err := Open(path, &Options{NoCache: true, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		mustCreate(t, s, fmt.Sprintf("user%d", i), clientA)
	}
	b := s.b.(*boltBackend)
	var root uint64
	if err := b.db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketByUser).Root())
		return nil
	}); err != nil || root == 0 {
		t.Fatalf("the user index has no page of its own (root %d, %v)", root, err)
	}
	// A page type bbolt does not know, on the user index's root page.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var flags [2]byte
	binary.LittleEndian.PutUint16(flags[:], 0x40)
	if _, err := f.WriteAt(flags[:], int64(root)*int64(b.db.Info().PageSize)+8); err != nil {
		t.Fatal(err)
	}
	f.Close()

	done := make(chan error, 1)
	go func() {
		errs := []error{b.update(func(*bolt.Tx) error { panic("a damaged page") })}
		for range 3 {
			errs = append(errs, b.update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put([]byte("probe"), []byte{1})
			}))
		}
		errs = append(errs, s.Close())
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("the panicking write = %v, want ErrCorrupt", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write or Close after a panic in a write transaction hangs")
	}
}

// After bbolt panicked in its own commit or rollback (the backend is
// broken), Close must still release the file when bbolt's writer lock is
// free: closing only the descriptor kept the lock, since bbolt's mapping
// holds the file open, and a restored copy could not be opened again in
// the same process.
func TestCloseBrokenReleasesTheFile(t *testing.T) {
	path := t.TempDir() + "/sessions.db"
	s, err := Open(path, &Options{NoCache: true, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "alice", clientA)
	s.b.(*boltBackend).broken.Store(true)
	if _, err := s.Create(ctx, "bob", clientA); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Create on a broken backend = %v, want ErrCorrupt", err)
	}
	if err := s.Close(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Close of a broken backend = %v, want ErrCorrupt", err)
	}
	again, err := Open(path, &Options{NoCache: true, CleanupInterval: -1, OpenTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopening after a broken backend closed: %v", err)
	}
	again.Close()
}
