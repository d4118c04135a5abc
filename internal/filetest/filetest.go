// Package filetest has the test helpers of the package usersessions, its
// control socket and its command for what happens around the database
// file: another process's open waiting for the file's lock, a slow backup
// destination, and writes that grow the file while a backup streams.
package filetest

import (
	"bytes"
	"io"
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

// SlowBackup is a backup running into a GatedWriter: a destination that
// stops reading until the test lets it go. Start one with StartSlowBackup.
type SlowBackup struct {
	w    *GatedWriter
	done chan error
	n    int64
}

// StartSlowBackup runs backup into a GatedWriter and returns once it has
// written its first bytes.
func StartSlowBackup(t testing.TB, backup func(io.Writer) (int64, error)) *SlowBackup {
	t.Helper()
	b := &SlowBackup{w: NewGatedWriter(), done: make(chan error, 1)}
	go func() {
		var err error
		b.n, err = backup(b.w)
		b.done <- err
	}()
	select {
	case <-b.w.Started:
	case err := <-b.done:
		t.Fatalf("the backup ended before writing: %d bytes, %v", b.n, err)
	}
	return b
}

// Finish lets the writer go and returns the copy. It fails t unless the
// backup was still running (its writer blocked it) and then succeeded,
// reporting all it wrote.
func (b *SlowBackup) Finish(t testing.TB) []byte {
	t.Helper()
	select {
	case err := <-b.done:
		t.Fatalf("the backup ended while its writer was blocked: %d bytes, %v", b.n, err)
	default:
	}
	close(b.w.Release)
	if err := <-b.done; err != nil || b.n != int64(len(b.w.Bytes())) {
		t.Fatalf("backup = %d, %v; the writer got %d bytes", b.n, err, len(b.w.Bytes()))
	}
	return b.w.Bytes()
}

// StallLimit is how long GrowFile waits for writes before calling them
// stalled: far longer than they take, so it only ever ends a hang.
const StallLimit = 30 * time.Second

// GrowFile calls create from 8 writers (worker 0 to 7, i counting each
// one's calls) until the file at path is at least size bytes, so bbolt must
// grow (and remap) it. It fails t if create fails, or if growing takes
// longer than StallLimit: the writes stalled.
func GrowFile(t testing.TB, path string, size int64, create func(worker, i int) error) {
	t.Helper()
	done := make(chan error, 8)
	var stop sync.WaitGroup
	quit := make(chan struct{})
	for w := range 8 {
		stop.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-quit:
					return
				default:
				}
				if err := create(w, i); err != nil {
					done <- err
					return
				}
				if fi, err := os.Stat(path); err == nil && fi.Size() >= size {
					done <- nil
					return
				}
			}
		})
	}
	select {
	case err := <-done:
		close(quit)
		stop.Wait()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(StallLimit):
		close(quit)
		t.Errorf("writes that grow the file stalled for %v while a backup streams", StallLimit)
	}
}
