package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/filetest"
	bolt "go.etcd.io/bbolt"
)

// churnedDB is a file where 10,000 sessions came and most went: the
// sessions of u25 are left. It returns the path and the IDs left.
func churnedDB(t *testing.T) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "churned.db")
	store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := createMany(store, 10000, 0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for u := range 25 {
		if _, err := store.EndUser(ctx, fmt.Sprintf("u%d", u), "", usersessions.EndOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := store.ListByUser(ctx, "u25")
	if err != nil || len(list) == 0 {
		t.Fatalf("u25: %d sessions, %v", len(list), err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return path, ids
}

// liveIDs opens path as the app would and returns its sessions' IDs after
// Store.Check.
func liveIDs(t *testing.T, path string) []string {
	t.Helper()
	store, err := usersessions.Open(path, &usersessions.Options{IdleTimeout: usersessions.UseStoredIdleTimeout, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Check(context.Background()); err != nil {
		t.Errorf("Check of %s: %v", filepath.Base(path), err)
	}
	var ids []string
	for s, err := range store.All(context.Background(), usersessions.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCompact(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 sessions")
	}
	path, ids := churnedDB(t)
	before := fileSize(t, path)

	stdout, _, _ := runCmd(t, "stats", "-db", path)
	if !strings.Contains(stdout, "usersessions compact gives it back") {
		t.Errorf("stats on a churned file does not point at compact:\n%s", stdout)
	}

	// Refused while the app runs.
	func() {
		store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		_, stderr, code := runCmd(t, "compact", "-db", path)
		if code != exitError || !strings.Contains(stderr, path+" is in use by another process") {
			t.Errorf("compact of a file in use: status %d, stderr %q", code, stderr)
		}
	}()
	if got := fileSize(t, path); got != before {
		t.Errorf("a refused compact changed the size: %d -> %d", before, got)
	}

	stdout, stderr, code := runCmd(t, "compact", "-db", path)
	after := fileSize(t, path)
	if code != exitOK || !strings.HasPrefix(stdout, "compacted "+path) || !strings.Contains(stdout, fmt.Sprintf("%d sessions", len(ids))) {
		t.Errorf("compact: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if after > before/2 {
		t.Errorf("compact: %d -> %d bytes, want at most half", before, after)
	}
	if got := liveIDs(t, path); !slices.Equal(got, ids) {
		t.Errorf("after compact: %d sessions, want the %d of u25", len(got), len(ids))
	}
	if left, _ := filepath.Glob(path + ".compact-*"); len(left) > 0 {
		t.Errorf("compact left %q behind", left)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("compacted file mode %v", fi.Mode())
	}
}

func TestCompactRefuses(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCmd(t, "compact", "-db", filepath.Join(dir, "none.db"))
	if code != exitError || !strings.Contains(stderr, "no session database") {
		t.Errorf("compact of a missing file: status %d, stderr %q", code, stderr)
	}
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("x", 10000)), 0o600)
	_, stderr, code = runCmd(t, "compact", "-db", garbage)
	if code != exitError || !strings.Contains(stderr, "not a usersessions database") {
		t.Errorf("compact of a non-database: status %d, stderr %q", code, stderr)
	}
	if data, _ := os.ReadFile(garbage); string(data) != strings.Repeat("x", 10000) {
		t.Error("compact changed a file that is not a database")
	}
}

func TestBackup(t *testing.T) {
	sd := seedDB(t)
	want := liveIDs(t, sd.path)
	out := filepath.Join(t.TempDir(), "backup.db")
	stdout, stderr, code := runCmd(t, "backup", "-db", sd.path, "-o", out)
	if code != exitOK || stdout != fmt.Sprintf("backed up %s to %s: 8 sessions, %s\n", sd.path, out, humanBytes(fileSize(t, out))) {
		t.Errorf("backup: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// The backup restores to an equal store.
	if got := liveIDs(t, out); !slices.Equal(got, want) {
		t.Errorf("backup holds %v, the database %v", got, want)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", out, "-all", "-json")
	orig, _, _ := runCmd(t, "ls", "-db", sd.path, "-all", "-json")
	if stdout != orig || stdout == "" {
		t.Errorf("ls of the backup differs:\n%s\nfrom\n%s", stdout, orig)
	}

	// An existing file is kept, unless -force.
	os.WriteFile(out, []byte("keep me"), 0o600)
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", out)
	if data, _ := os.ReadFile(out); code != exitError || !strings.Contains(stderr, out+" exists") || string(data) != "keep me" {
		t.Errorf("backup over an existing file: status %d, stderr %q, file %q", code, stderr, data)
	}
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", out, "-force")
	if code != exitOK || !slices.Equal(liveIDs(t, out), want) {
		t.Errorf("backup -force: status %d, stderr %q", code, stderr)
	}
	if left, _ := filepath.Glob(out + ".tmp-*"); len(left) > 0 {
		t.Errorf("backup left %q behind", left)
	}
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", sd.path, "-force")
	if code != exitUsage || !strings.Contains(stderr, "is the database itself") {
		t.Errorf("backup onto itself: status %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "backup", "-db", sd.path)
	if code != exitUsage || !strings.Contains(stderr, "-o FILE is needed") {
		t.Errorf("backup without -o: status %d, stderr %q", code, stderr)
	}
	holdDB(t, sd.path)
	out2 := filepath.Join(t.TempDir(), "b2.db")
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", out2)
	if _, err := os.Stat(out2); code != exitError || !strings.Contains(stderr, "in use by another process") || err == nil {
		t.Errorf("backup of a file in use: status %d, stderr %q, output exists: %v", code, stderr, err == nil)
	}
}

// A copy that fails, or does not check out, is never placed at -o, and
// leaves no temporary file behind.
func TestWriteBackupRefusesBadCopies(t *testing.T) {
	sd := seedDB(t)
	good, err := os.ReadFile(sd.path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "b.db")
	for name, copyTo := range map[string]func(io.Writer) (int64, error){
		"garbage": func(w io.Writer) (int64, error) {
			n, err := w.Write(bytes.Repeat([]byte("x"), 64<<10))
			return int64(n), err
		},
		"truncated": func(w io.Writer) (int64, error) {
			n, err := w.Write(good[:len(good)/2])
			return int64(n), err
		},
		"failed midway": func(w io.Writer) (int64, error) {
			n, _ := w.Write(good[:4096])
			return int64(n), errors.New("connection reset")
		},
		"empty": func(w io.Writer) (int64, error) { return 0, nil },
	} {
		_, _, err := writeBackup(out, false, 0, copyTo, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "nothing written to "+out) {
			t.Errorf("%s: %v", name, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s: left %v", name, entries)
		}
	}
	n, size, err := writeBackup(out, false, 0, func(w io.Writer) (int64, error) {
		n, err := w.Write(good)
		return int64(n), err
	}, io.Discard)
	if err != nil || n != 8 || size != int64(len(good)) {
		t.Errorf("a good copy: %d sessions, %d bytes, %v", n, size, err)
	}
}

// compact and backup never create a database: a file removed between their
// checks and their open is an error, and stays removed.
func TestOpenBoltAtCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.db")
	db, err := openBoltAt(path, bolt.Options{Timeout: operatorOpenTimeout})
	if err == nil {
		db.Close()
		t.Fatal("openBoltAt of a missing file succeeded")
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("openBoltAt of a missing file (%v) left a file: %v", err, serr)
	}
}

// A backup of a file no app holds, into a slow destination, lets the app
// start meanwhile: the file's lock is not held while the copy is written.
func TestBackupOfFileLetsTheAppStart(t *testing.T) {
	sd := seedDB(t)
	want := liveIDs(t, sd.path)
	src, err := openRaw(&dbFlags{path: sd.path}, true, "back up")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := filetest.NewGatedWriter()
	copied := make(chan error, 1)
	go func() {
		_, err := copyFromFile(src)(w)
		copied <- err
	}()
	select {
	case <-w.Started:
	case err := <-copied:
		t.Fatalf("the copy ended before writing: %v", err)
	}
	app, err := usersessions.Open(sd.path, &usersessions.Options{CleanupInterval: -1, OpenTimeout: 2 * time.Second, Logger: quietLogger()})
	close(w.Release)
	if err != nil {
		t.Fatalf("the app cannot open its file while a backup is written: %v", err)
	}
	// What the app writes now is not in the copy, which is the file as
	// it was when the backup began.
	if _, err := app.Create(context.Background(), "carol", usersessions.Client{}); err != nil {
		t.Fatal(err)
	}
	app.Close()
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.db")
	if err := os.WriteFile(out, w.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := liveIDs(t, out); !slices.Equal(got, want) {
		t.Errorf("the copy holds %v, want %v", got, want)
	}
}

// compact of a database reached through a symbolic link compacts the file
// the link points to and keeps the link: renaming the copy over the link
// would leave the link's target behind, at its old size, and the link gone.
func TestCompactThroughSymlink(t *testing.T) {
	sd := seedDB(t)
	want := liveIDs(t, sd.path)
	link := filepath.Join(t.TempDir(), "current.db")
	if err := os.Symlink(sd.path, link); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(sd.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCmd(t, "compact", "-db", link); code != exitOK {
		t.Fatalf("compact: status %d, stderr %q", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the link is no longer a link: %v, %v", fi.Mode(), err)
	}
	if after, err := os.Stat(sd.path); err != nil || os.SameFile(before, after) {
		t.Errorf("the link's target was not replaced by a compacted copy (%v)", err)
	}
	if got := liveIDs(t, sd.path); !slices.Equal(got, want) {
		t.Errorf("the link's target holds %v, want %v", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(link), "*.compact-*")); len(left) > 0 {
		t.Errorf("compact left %q behind", left)
	}
}
