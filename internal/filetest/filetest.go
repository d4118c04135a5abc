// Package filetest has the test helpers of the package usersessions and its
// command for what happens around the database file: another process's
// open waiting for the file's lock, and a slow backup destination.
package filetest

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// WaitOpen waits until this process has n descriptors open on path (read
// from /proc/self/fd), so a test knows that an open running in another
// goroutine has the file and waits for its lock. It skips the test where
// there is no /proc/self/fd, and fails it after a minute.
func WaitOpen(t testing.TB, path string, n int) {
	t.Helper()
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(time.Millisecond) {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd to see open files: %v", err)
		}
		open := 0
		for _, e := range entries {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
				open++
			}
		}
		if open >= n {
			return
		}
	}
	t.Fatalf("%d descriptors on %s never appeared", n, path)
}

// GatedWriter is a slow backup destination (a slow disk, a client that
// stops reading): the first Write closes Started, and every Write waits
// until Release is closed. Make it with NewGatedWriter.
type GatedWriter struct {
	Started chan struct{}
	Release chan struct{}
	once    sync.Once
	buf     bytes.Buffer
}

// NewGatedWriter returns a GatedWriter that has not started.
func NewGatedWriter() *GatedWriter {
	return &GatedWriter{Started: make(chan struct{}), Release: make(chan struct{})}
}

// Write keeps p once Release is closed.
func (w *GatedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.Started) })
	<-w.Release
	return w.buf.Write(p)
}

// Bytes returns what was written; call it after the last Write returned.
func (w *GatedWriter) Bytes() []byte { return w.buf.Bytes() }
