//go:build unix

package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// otherOwner is a user and a group that are not the test's, for files an
// app running as another user owns. It skips the test unless it runs as
// root (only root may give files away).
func otherOwner(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by another user are made with chown")
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		return uid, uid + 1000 // a group nobody is in: chown takes any number
	}
	t.Skip("no postgres or nobody user to own files")
	return 0, 0
}

// owned gives path to uid:gid with mode.
func owned(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// checkOwned fails t unless path has uid, gid and mode.
func checkOwned(t *testing.T, what, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode() != mode {
		t.Errorf("%s: %s is %d:%d %v, want %d:%d %v (as it was)", what, filepath.Base(path), st.Uid, st.Gid, fi.Mode(), uid, gid, mode)
	}
}

// compact run as root on the file of an app running as another user keeps
// the file's owner, group and mode: the app can still open it.
func TestCompactKeepsOwnerAndMode(t *testing.T) {
	uid, gid := otherOwner(t)
	sd := seedDB(t)
	owned(t, sd.path, uid, gid, 0o640)
	if _, stderr, code := runCmd(t, "compact", "-db", sd.path); code != exitOK {
		t.Fatalf("compact: status %d, stderr %q", code, stderr)
	}
	checkOwned(t, "after compact", sd.path, uid, gid, 0o640)
}

// backup -force over an existing file keeps that file's owner, group and
// mode, as cp onto an existing file does.
func TestBackupForceKeepsOwnerAndMode(t *testing.T) {
	uid, gid := otherOwner(t)
	sd := seedDB(t)
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(out, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	owned(t, out, uid, gid, 0o640)
	if _, stderr, code := runCmd(t, "backup", "-db", sd.path, "-o", out, "-force"); code != exitOK {
		t.Fatalf("backup -force: status %d, stderr %q", code, stderr)
	}
	checkOwned(t, "after backup -force", out, uid, gid, 0o640)
}
