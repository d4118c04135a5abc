package usersessions

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions/internal/filetest"
)

// A backup into a slow writer does not stall the app's writes: they go on,
// growing the file, while the copy is still being streamed, and the copy
// is still the whole database as it was when the backup began.
func TestBackupToSlowWriterDoesNotStallWrites(t *testing.T) {
	s := openTest(t, false, nil)
	var want []string
	for i := range 200 {
		want = append(want, mustCreate(t, s, fmt.Sprintf("u%d", i%7), clientA).ID)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	b := filetest.StartSlowBackup(t, s.Backup)
	checkBackupTempFiles(t, filepath.Dir(s.Path()))
	filetest.GrowFile(t, s.Path(), 4*fi.Size()+1<<20, func(w, i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("grow%d-%d", w, i%10), Client{UserAgent: strings.Repeat("g", 400)})
		return err
	})
	backup := b.Finish(t)
	if entries, _ := os.ReadDir(filepath.Dir(s.Path())); len(entries) != 1 {
		t.Errorf("the backup left files beside the database: %v", entries)
	}
	checkBackupHolds(t, backup, want)
}

// checkBackupTempFiles checks, where /proc/self/fd shows them, that the
// temporary files this process has open beside the database are private
// (mode 0600) and already unlinked, so a crash leaves no copy behind.
func checkBackupTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // no /proc: nothing to look at
	}
	found := false
	for _, e := range entries {
		fd := filepath.Join("/proc/self/fd", e.Name())
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, dir+"/") || strings.HasSuffix(target, "/sessions.db") {
			continue
		}
		found = true
		fi, err := os.Stat(fd)
		if err != nil {
			continue
		}
		if fi.Mode().Perm() != 0o600 || !strings.HasSuffix(target, " (deleted)") {
			t.Errorf("backup temporary file %s: mode %v, want 0600 and unlinked", target, fi.Mode())
		}
	}
	if !found {
		t.Errorf("no temporary backup file open in %s: the backup streams from the live file", dir)
	}
}

// checkBackupHolds opens a backup and checks that it holds exactly the
// sessions want and that its indexes agree with its records.
func checkBackupHolds(t *testing.T, backup []byte, want []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(path, &Options{IdleTimeout: UseStoredIdleTimeout, CleanupInterval: -1})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer b.Close()
	if err := b.Check(ctx); err != nil {
		t.Errorf("Check of the backup: %v", err)
	}
	if n, err := b.Count(ctx); err != nil || n != len(want) {
		t.Errorf("the backup holds %d sessions (%v), want %d", n, err, len(want))
	}
	for _, id := range want {
		if _, err := b.Get(ctx, id); err != nil {
			t.Errorf("session %s in the backup: %v", id, err)
		}
	}
}

// When no temporary file can be made beside the database (here: its folder
// is gone), the backup spools in os.TempDir instead, and removes it.
func TestBackupSpoolsInTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s := openTest(t, true, nil)
	want := []string{mustCreate(t, s, "alice", clientA).ID, mustCreate(t, s, "bob", clientB).ID}
	if err := os.RemoveAll(filepath.Dir(s.Path())); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := s.Backup(&buf); err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup = %d, %v; %d bytes written", n, err, buf.Len())
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the backup left %v in os.TempDir", entries)
	}
	checkBackupHolds(t, buf.Bytes(), want)
}
