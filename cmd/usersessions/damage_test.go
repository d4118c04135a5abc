package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
	bolt "go.etcd.io/bbolt"
)

// manyDB writes a database of n sessions of a few users.
func manyDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "many.db")
	store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := createMany(store, n, 0); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// createMany creates n sessions, concurrently (group commit), for users
// u0..u25, starting at index from.
func createMany(store *usersessions.Store, n, from int) error {
	errs := make(chan error, 32)
	for w := range 32 {
		go func() {
			var err error
			for i := from + w; i < from+n && err == nil; i += 32 {
				_, err = store.Create(context.Background(), fmt.Sprintf("u%d", i%26), usersessions.Client{UserAgent: uaChrome})
			}
			errs <- err
		}()
	}
	var err error
	for range 32 {
		err = errors.Join(err, <-errs)
	}
	return err
}

// damagedCopy copies src to a new file and lets damage change it.
func damagedCopy(t *testing.T, src, name string, damage func(*os.File) error) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := damage(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func flipAt(off int64) func(*os.File) error {
	return func(f *os.File) error {
		b := make([]byte, 16)
		if _, err := f.ReadAt(b, off); err != nil {
			return err
		}
		for i := range b {
			b[i] ^= 0xff
		}
		_, err := f.WriteAt(b, off)
		return err
	}
}

// rootPage returns the page of the sessions bucket's root in path.
func rootPage(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	db.View(func(tx *bolt.Tx) error {
		root = int64(tx.Bucket([]byte("sessions")).Root())
		return nil
	})
	if root < 3 {
		t.Fatalf("sessions root at page %d", root)
	}
	return root
}

// Issue 11, item 2: a damaged or truncated file made ls crash with status
// 2, the status of bad usage. Every command must name the file, say it is
// damaged, exit 1, and leave the file as it was.
func TestDamagedFile(t *testing.T) {
	base := manyDB(t, 2000)
	const page = 4096
	type tc struct {
		name   string
		damage func(*os.File) error
		want   string // in stderr; "" for any clear report
	}
	cases := []tc{
		{"empty", func(f *os.File) error { return f.Truncate(0) }, "is an empty file"},
		{"cut-100", func(f *os.File) error { return f.Truncate(100) }, "is damaged"},
		{"cut-1page", func(f *os.File) error { return f.Truncate(page) }, ""},
		{"root-page", flipAt(rootPage(t, base) * page), "is damaged"},
	}
	for _, n := range []int64{2 * page, 3 * page, 50000, 300000} {
		cases = append(cases, tc{fmt.Sprintf("cut-%d", n), func(f *os.File) error { return f.Truncate(n) }, "is damaged"})
	}
	for _, off := range []int64{3*page + 10, 3*page + 100, 5*page + 16, 8 * page, 20*page + 40, 40*page + 8, 60*page + 300} {
		cases = append(cases, tc{fmt.Sprintf("flip-%d", off), flipAt(off), ""})
	}
	for _, c := range cases {
		path := damagedCopy(t, base, c.name+".db", c.damage)
		before, _ := os.ReadFile(path)
		detected := true
		for _, args := range [][]string{
			{"ls"}, {"ls", "-json"}, {"stats"}, {"clear-expired"}, {"revoke", "-user", "u1"}, {"check"},
		} {
			stdout, stderr, code := runCmd(t, append(args, "-db", path)...)
			if code == exitUsage || strings.Contains(stderr, "goroutine ") {
				t.Errorf("%s: %q: status %d, stderr %q", c.name, args, code, stderr)
				continue
			}
			if c.want == "" && code == exitOK {
				detected = false // damage in a free page: nothing to see
				continue
			}
			if code != exitError || !strings.Contains(stderr, path) || (c.want != "" && !strings.Contains(stderr, c.want)) {
				t.Errorf("%s: %q: status %d, stdout %q, stderr %q; want status 1 naming the file and %q", c.name, args, code, stdout, stderr, c.want)
			}
		}
		if after, _ := os.ReadFile(path); detected && !bytes.Equal(before, after) {
			t.Errorf("%s: the commands changed the damaged file", c.name)
		}
	}
}

func TestCheck(t *testing.T) {
	sd := seedDB(t)
	stdout, stderr, code := runCmd(t, "check", "-db", sd.path)
	if code != exitOK || !strings.Contains(stdout, sd.path+": ok") || !strings.Contains(stdout, "8 sessions") {
		t.Errorf("check on a sound file: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// An index entry without its record: bbolt is content, Store.Check
	// is not.
	db, err := bolt.Open(sd.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("by_expiry")).Put(bytes.Repeat([]byte{1}, 24), nil)
	})
	db.Close()
	stdout, stderr, code = runCmd(t, "check", "-db", sd.path)
	if code != exitError || !strings.Contains(stdout, "expiry index") || !strings.Contains(stderr, sd.path+" is damaged") {
		t.Errorf("check with a stray index entry: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	holdDB(t, seedDB(t).path)
	_, stderr, code = runCmd(t, "check", "-db", filepath.Join(t.TempDir(), "none.db"))
	if code != exitError || !strings.Contains(stderr, "no session database") {
		t.Errorf("check of a missing file: status %d, stderr %q", code, stderr)
	}
}
