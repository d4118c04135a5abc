package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketPath is the control socket of the database at dbPath: the file's
// path with ".sock" added.
func SocketPath(dbPath string) string { return dbPath + ".sock" }

// listen binds a Unix socket at path that only this process's user can
// reach. It binds in a private folder (mode 0700), sets the socket's mode
// to 0600 and checks mode and owner there, then renames the socket into
// place: there is no moment when path is reachable with a wider mode.
// (Setting the process's umask around the bind would race with every
// other goroutine creating files.) It returns the socket file's FileInfo,
// so that only this socket is ever removed.
func listen(path string) (*net.UnixListener, os.FileInfo, error) {
	if err := removeStale(path); err != nil {
		return nil, nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".usersessions-sock-")
	if err != nil {
		return nil, nil, fmt.Errorf("usersessions: control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // it moves: Close removes it by path, if still ours
	fi, err := placeSocket(tmp, path)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	return ln, fi, nil
}

// placeSocket gives the socket at tmp its mode, checks it, and moves it to
// path.
func placeSocket(tmp, path string) (os.FileInfo, error) {
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return nil, err
	}
	if err := checkSocketFile(fi); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	moved, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, moved) {
		return nil, errors.New("another file took its place")
	}
	return moved, nil
}

// checkSocketFile checks that fi is a socket of mode 0600 owned by this
// process's user.
func checkSocketFile(fi os.FileInfo) error {
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		return fmt.Errorf("the socket has mode %v, want a socket of mode 0600", fi.Mode())
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("the socket is owned by uid %d, not this process's %d", uid, os.Geteuid())
	}
	return nil
}

// removeStale removes a socket at path that nobody listens on: one left by
// a process that died. A live socket (another server), or a file that is
// not a socket, is an error and stays.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("usersessions: control socket %s: a file that is not a socket is in the way", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("usersessions: control socket %s: another process serves it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("usersessions: removing stale control socket %s: %w", path, err)
	}
	return nil
}
