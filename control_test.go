package usersessions

import (
	"context"
	"errors"
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
