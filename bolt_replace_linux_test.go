package usersessions

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/usersessions/usersessions/internal/filetest"
)

// lockToReplace starts what "usersessions compact" does to the file at
// path: it takes the file's lock and writes a copy beside it. The function
// it returns finishes the job once waitFor descriptors (this one included)
// have the file open: it renames the copy over the file and only then
// releases the lock.
func lockToReplace(t *testing.T, path string) (replace func(waitFor int)) {
	t.Helper()
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lockFile(old, 0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".compact.tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return func(waitFor int) {
		defer old.Close()
		filetest.WaitOpen(t, path, waitFor)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// An app that starts while compact holds the lock must end up on the file
// compact renamed into place, not on the unlinked one it waited for: there,
// a session it creates would be gone after a reopen, and one it revokes
// would load again.
func TestOpenWhileFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	kept := mustCreate(t, s, "alice", clientA)
	revoked := mustCreate(t, s, "bob", clientB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	type opened struct {
		s   *Store
		err error
	}
	done := make(chan opened, 1)
	replace := lockToReplace(t, path)
	go func() {
		s, err := Open(path, &Options{CleanupInterval: -1, OpenTimeout: time.Minute})
		done <- opened{s, err}
	}()
	replace(2) // this test's descriptor and the app's
	app := <-done
	if app.err != nil {
		t.Fatalf("Open after the file was replaced: %v", app.err)
	}
	created := mustCreate(t, app.s, "carol", clientA)
	if err := app.s.End(ctx, revoked.ID, EndOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, created.ID); err != nil {
		t.Errorf("the session created after the replace is gone after a reopen: %v", err)
	}
	if _, err := s.Get(ctx, revoked.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the session revoked after the replace loads again: %v", err)
	}
	if _, err := s.Get(ctx, kept.ID); err != nil {
		t.Errorf("a session from before the replace: %v", err)
	}
}

// A file replaced again and again while Open waits does not keep Open
// looping past its timeout: it ends with ErrLocked.
func TestOpenGivesUpOnAFileReplacedOverAndOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "alice", clientA)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	replacer := make(chan error, 1)
	go func() {
		// Keep a lock on whatever file is at path, replacing it with a
		// copy each round, until told to stop.
		for i := 0; ; i++ {
			select {
			case <-stop:
				replacer <- nil
				return
			default:
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err == nil {
				err = lockFile(f, time.Minute)
			}
			var data []byte
			if err == nil {
				data, err = os.ReadFile(path)
			}
			tmp := path + ".tmp" + strconv.Itoa(i)
			if err == nil {
				err = os.WriteFile(tmp, data, 0o600)
			}
			if err == nil {
				err = os.Rename(tmp, path)
			}
			if f != nil {
				f.Close()
			}
			if err != nil {
				replacer <- err
				return
			}
		}
	}()
	app, err := Open(path, &Options{CleanupInterval: -1, OpenTimeout: 100 * time.Millisecond})
	var created *Session
	if err == nil {
		// Open won a round between two replaces: it must be on the file
		// at path, so what it writes is there after a reopen.
		created = mustCreate(t, app, "carol", clientA)
		app.Close()
	}
	close(stop)
	if rerr := <-replacer; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Open of a file replaced over and over: %v, want ErrLocked or success", err)
		}
		return
	}
	s, err = Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, created.ID); err != nil {
		t.Errorf("the session created by the store that won a round is gone: %v", err)
	}
}
