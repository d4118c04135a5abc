package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/filetest"
	bolt "go.etcd.io/bbolt"
)

// withOneMore writes a copy of the database at path beside it, with one
// session more, and returns the copy's path and its number of sessions.
func withOneMore(t *testing.T, path string) (string, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	repl := path + ".compact-test.tmp"
	if err := os.WriteFile(repl, data, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := usersessions.Open(repl, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Create(context.Background(), "carol", usersessions.Client{}); err != nil {
		t.Fatal(err)
	}
	n, err := store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return repl, n
}

// compact and backup open the file with bbolt itself. One that waited for
// the lock while another compact renamed its copy over the file must end up
// on the new file: a compact of the old, unlinked one would rename stale
// data over whatever an app wrote to the new one meanwhile.
func TestOpenBoltAtFollowsAReplace(t *testing.T) {
	sd := seedDB(t)
	for _, readOnly := range []bool{false, true} {
		repl, want := withOneMore(t, sd.path)
		old, err := os.OpenFile(sd.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(old.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		type opened struct {
			db  *bolt.DB
			err error
		}
		done := make(chan opened, 1)
		go func() {
			db, err := openBoltAt(sd.path, bolt.Options{ReadOnly: readOnly, Timeout: time.Minute})
			done <- opened{db, err}
		}()
		filetest.WaitOpen(t, sd.path, 2) // ours and openBoltAt's
		if err := os.Rename(repl, sd.path); err != nil {
			t.Fatal(err)
		}
		old.Close()
		r := <-done
		if r.err != nil {
			t.Fatalf("read-only %v: %v", readOnly, r.err)
		}
		n, err := sessionCount(r.db)
		r.db.Close()
		if err != nil || n != want {
			t.Errorf("read-only %v: the file opened holds %d sessions (%v), the file at the path %d", readOnly, n, err, want)
		}
	}
}
