package usersessions

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openControlled(t *testing.T, opts *Options) (*Store, *Control) {
	t.Helper()
	// A short folder: Unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "usctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	store, err := Open(filepath.Join(dir, "s.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctl, err := ServeControl(store, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return store, ctl
}

func TestControl(t *testing.T) {
	ctx := context.Background()
	store, ctl := openControlled(t, &Options{IdleTimeout: time.Hour, CleanupInterval: -1})
	if ctl.Path() != store.Path()+".sock" {
		t.Errorf("socket at %s", ctl.Path())
	}
	fi, err := os.Lstat(ctl.Path())
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v", fi.Mode(), err)
	}
	a1, _ := store.Create(ctx, "alice", Client{UserAgent: "A"})
	a2, _ := store.Create(ctx, "alice", Client{UserAgent: "B"})
	b, _ := store.Create(ctx, "bob", Client{})

	c, err := DialControl(ctx, ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.Path != store.Path() || info.IdleTimeout != time.Hour || info.Count != 3 {
		t.Errorf("info %+v", info)
	}
	var ids []string
	for s, err := range c.All(ctx, Filter{UserID: "alice"}) {
		if err != nil {
			t.Fatal(err)
		}
		if s.Token != "" || !s.Active(time.Now()) || s.Deadline() != s.LastSeen.Add(time.Hour) {
			t.Errorf("listed %+v, deadline %v", s, s.Deadline())
		}
		ids = append(ids, s.ID)
	}
	if len(ids) != 2 {
		t.Errorf("alice's sessions through the socket: %v", ids)
	}
	if err := c.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(ctx, b.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob's session loads after a delete through the socket: %v", err)
	}
	if err := c.Delete(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if n, err := c.DeleteByUser(ctx, "alice", a2.ID); n != 1 || err != nil {
		t.Errorf("DeleteByUser: %d, %v", n, err)
	}
	if _, err := store.Load(ctx, a1.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("a1 loads: %v", err)
	}
	if _, err := store.Load(ctx, a2.Token); err != nil {
		t.Errorf("the kept session: %v", err)
	}
	if s, err := c.Get(ctx, a2.ID); err != nil || s.UserID != "alice" {
		t.Errorf("Get: %+v, %v", s, err)
	}
	if n, err := c.Count(ctx); n != 1 || err != nil {
		t.Errorf("Count: %d, %v", n, err)
	}
	if n, err := c.ClearExpired(ctx); n != 0 || err != nil {
		t.Errorf("ClearExpired: %d, %v", n, err)
	}
	if err := c.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}

	// Garbage gets an error line, not a hang.
	conn, err := net.Dial("unix", ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("nonsense\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	conn.Close()
	if !strings.Contains(string(buf[:n]), "bad request") {
		t.Errorf("reply to garbage: %q", buf[:n])
	}

	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := (*Control)(nil).Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if _, err := os.Lstat(ctl.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := DialControl(ctx, ctl.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dial after Close: %v", err)
	}
}

func TestControlSocketInTheWay(t *testing.T) {
	store, ctl := openControlled(t, &Options{CleanupInterval: -1})
	// A live server: a second one is refused, the first keeps its socket.
	if _, err := ServeControl(store, ""); err == nil || !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("second server: %v", err)
	}
	ctl.Close()

	// A stale socket (a server that died) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: ControlSocketPath(store.Path()), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ctl2, err := ServeControl(store, "")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if _, err := DialControl(context.Background(), ctl2.Path()); err != nil {
		t.Errorf("dial: %v", err)
	}
	ctl2.Close()

	// A regular file is never removed.
	path := ControlSocketPath(store.Path())
	os.WriteFile(path, []byte("mine"), 0o600)
	if _, err := ServeControl(store, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "mine" {
		t.Error("the regular file was changed")
	}
}

func TestControlBackup(t *testing.T) {
	ctx := context.Background()
	store, ctl := openControlled(t, &Options{IdleTimeout: time.Hour, CleanupInterval: -1})
	want := map[string]string{}
	for i := range 300 {
		s, err := store.Create(ctx, fmt.Sprintf("user%d", i%7), Client{UserAgent: strings.Repeat("x", 200)})
		if err != nil {
			t.Fatal(err)
		}
		want[s.ID] = s.UserID
	}
	c, err := DialControl(ctx, ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	info := c.Info()
	if info.Backend != "bbolt" || info.File == nil || info.File.Size <= 0 || info.File.PageSize <= 0 ||
		info.File.FreeBytes < 0 || info.File.FreeBytes > info.File.Size {
		t.Fatalf("info: %+v, file %+v", info, info.File)
	}
	var buf bytes.Buffer
	n, err := c.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n < 300*200 {
		t.Fatalf("backup: %d bytes reported, %d received", n, buf.Len())
	}
	// Writes go on while and after the copy is taken; the copy is the
	// state at its start.
	if _, err := store.Create(ctx, "later", Client{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(path, &Options{IdleTimeout: UseStoredIdleTimeout, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Check(ctx); err != nil {
		t.Errorf("the copy: %v", err)
	}
	if cp.IdleTimeout() != time.Hour {
		t.Errorf("copy's idle timeout %v", cp.IdleTimeout())
	}
	got := map[string]string{}
	for s, err := range cp.All(ctx, Filter{State: AnyState}) {
		if err != nil {
			t.Fatal(err)
		}
		got[s.ID] = s.UserID
	}
	if !maps.Equal(got, want) {
		t.Errorf("the copy holds %d sessions, want %d", len(got), len(want))
	}
}

// A writer that fails ends the backup with its error, and the app goes on.
func TestControlBackupWriterFails(t *testing.T) {
	ctx := context.Background()
	store, ctl := openControlled(t, &Options{CleanupInterval: -1})
	for range 50 {
		store.Create(ctx, "u", Client{UserAgent: strings.Repeat("y", 4000)})
	}
	c, err := DialControl(ctx, ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	if _, err := c.Backup(ctx, failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("backup into a failing writer: %v", err)
	}
	if _, err := store.Create(ctx, "u", Client{}); err != nil {
		t.Errorf("the store after a failed backup: %v", err)
	}
	var buf bytes.Buffer
	if _, err := c.Backup(ctx, &buf); err != nil || buf.Len() == 0 {
		t.Errorf("a second backup: %d bytes, %v", buf.Len(), err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// A stream cut short (the app died midway) is an error, not a short copy.
func TestControlBackupCutShort(t *testing.T) {
	dir, err := os.MkdirTemp("", "usctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(conn).ReadString('\n')
			conn.Write([]byte(`{"stream":true}` + "\n"))
			conn.Write([]byte{0, 0, 0, 10, 1, 2, 3}) // 3 of 10 bytes, then gone
			conn.Close()
		}
	}()
	c := &ControlClient{socket: path}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if _, err := c.Backup(ctx, &buf); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a stream cut short: %v", err)
	}
}

// A client that reads a backup slowly (a slow disk, or it stopped reading
// for a while) holds up none of the app's writes: they go on, growing the
// file, while the stream waits, and the copy is still whole.
func TestControlBackupSlowClient(t *testing.T) {
	ctx := context.Background()
	store, ctl := openControlled(t, &Options{CleanupInterval: -1})
	// More than the socket's buffers hold, so the app's side of the
	// stream waits for the client.
	var want []string
	pad := strings.Repeat("0123456789abcdef", 2<<10)
	for i := range 100 {
		sess := mustCreate(t, store, fmt.Sprintf("u%d", i%5), clientA)
		sess.Set("pad", pad)
		if err := store.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
		want = append(want, sess.ID)
	}
	fi, err := os.Stat(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialControl(ctx, ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	b := startSlowBackup(t, func(w io.Writer) (int64, error) { return c.Backup(ctx, w) })
	growFile(t, store, store.Path(), 2*fi.Size())
	checkBackupHolds(t, b.finish(t), want)
}
