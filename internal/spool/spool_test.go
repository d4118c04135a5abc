package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Copy makes its file in the first folder that works, private, hands it
// to fill, writes w from it only after fill returned, and leaves nothing.
func TestCopy(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	dir := t.TempDir()
	var w bytes.Buffer
	n, err := Copy(&w, "db.backup-*.tmp", []string{gone, dir}, func(f io.Writer) (int64, error) {
		sf := f.(*file)
		if filepath.Dir(sf.Name()) != dir {
			t.Errorf("spool file %s, want one in %s", sf.Name(), dir)
		}
		if fi, err := sf.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("spool file mode %v (%v), want 0600", fi.Mode(), err)
		}
		k, err := io.WriteString(f, "a copy")
		if w.Len() != 0 {
			t.Error("w was written before fill returned")
		}
		return int64(k), err
	})
	if err != nil || n != 6 || w.String() != "a copy" {
		t.Errorf("Copy = %d, %v; w holds %q", n, err, w.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}

func TestCopyFails(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(dir, "gone")
	fill := func(f io.Writer) (int64, error) { return 0, nil }
	if _, err := Copy(io.Discard, "x-*", []string{gone}, fill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Copy with only a missing folder: %v", err)
	}
	if _, err := Copy(io.Discard, "x-*", nil, fill); err == nil {
		t.Error("Copy with no folder succeeded")
	}
	boom := errors.New("boom")
	var w bytes.Buffer
	if _, err := Copy(&w, "x-*", []string{dir}, func(f io.Writer) (int64, error) {
		io.WriteString(f, "half")
		return 4, boom
	}); !errors.Is(err, boom) || w.Len() != 0 {
		t.Errorf("a failing fill: %v, w got %q", err, w.String())
	}
	// A fill that miscounts is caught, not passed on as a whole copy.
	if _, err := Copy(io.Discard, "x-*", []string{dir}, func(f io.Writer) (int64, error) {
		io.WriteString(f, "abc")
		return 5, nil
	}); err == nil || !strings.Contains(err.Error(), "5 bytes, 3 were read back") {
		t.Errorf("a short copy: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}
