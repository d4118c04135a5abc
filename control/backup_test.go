package control_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
	"github.com/usersessions/usersessions/internal/filetest"
)

func TestControlBackup(t *testing.T) {
	store, ctl := openControlled(t, &usersessions.Options{IdleTimeout: 3600e9})
	want := map[string]string{}
	for i := range 300 {
		s := create(t, store, fmt.Sprintf("user%d", i%7), usersessions.Client{UserAgent: strings.Repeat("x", 200)})
		want[s.ID] = s.UserID
	}
	c := dial(t, ctl.Path())
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
	create(t, store, "later", usersessions.Client{})
	cp := openCopy(t, buf.Bytes())
	if cp.IdleTimeout() != 3600e9 {
		t.Errorf("copy's idle timeout %v", cp.IdleTimeout())
	}
	got := map[string]string{}
	for s, err := range cp.All(ctx, usersessions.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got[s.ID] = s.UserID
	}
	if !maps.Equal(got, want) {
		t.Errorf("the copy holds %d sessions, want %d", len(got), len(want))
	}
}

// openCopy opens a backup as a store, after checking that its records and
// indexes agree.
func openCopy(t *testing.T, backup []byte) *usersessions.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	cp := openStore(t, path, &usersessions.Options{IdleTimeout: usersessions.UseStoredIdleTimeout})
	if err := cp.Check(ctx); err != nil {
		t.Errorf("the copy: %v", err)
	}
	return cp
}

// checkCopy checks that a backup opens and holds n sessions.
func checkCopy(t *testing.T, backup []byte, n int) {
	t.Helper()
	if got, err := openCopy(t, backup).Count(ctx); got != n || err != nil {
		t.Errorf("the copy holds %d sessions (%v), want %d", got, err, n)
	}
}

// startSlowBackup runs c.Backup into a writer that blocks until Finish.
func startSlowBackup(t *testing.T, c *control.Client) *filetest.SlowBackup {
	return filetest.StartSlowBackup(t, func(w io.Writer) (int64, error) { return c.Backup(ctx, w) })
}

// A writer that fails ends the backup with its error, and the app goes on.
func TestControlBackupWriterFails(t *testing.T) {
	store, ctl := openControlled(t, nil)
	for range 50 {
		create(t, store, "u", usersessions.Client{UserAgent: strings.Repeat("y", 4000)})
	}
	c := dial(t, ctl.Path())
	boom := errors.New("disk full")
	if _, err := c.Backup(ctx, failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("backup into a failing writer: %v", err)
	}
	create(t, store, "u", usersessions.Client{})
	var buf bytes.Buffer
	if _, err := c.Backup(ctx, &buf); err != nil || buf.Len() == 0 {
		t.Errorf("a second backup: %d bytes, %v", buf.Len(), err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// A copy cut short is an error, not a short copy: the app died midway,
// did not confirm the size, reported a different size, or an error.
func TestControlBackupCutShort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve http.HandlerFunc
		want  string
	}{
		{"died", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte{1, 2, 3})
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // the connection breaks
		}, "cut short after 3 bytes"},
		{"no size", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte{1, 2, 3})
		}, "did not confirm its size"},
		{"wrong size", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Usersessions-Size")
			w.Write([]byte{1, 2, 3})
			w.Header().Set("X-Usersessions-Size", "10")
		}, "sent 3 bytes but reports 10"},
		{"error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Usersessions-Error, X-Usersessions-Error-Code")
			w.Write([]byte{1, 2, 3})
			w.Header().Set("X-Usersessions-Error", "usersessions: corrupt data: page 7")
			w.Header().Set("X-Usersessions-Error-Code", "corrupt")
		}, "corrupt data: page 7"},
	} {
		c := dial(t, fakeApp(t, tc.serve))
		var buf bytes.Buffer
		n, err := c.Backup(ctx, &buf)
		if err == nil || !strings.Contains(err.Error(), tc.want) || n != 3 {
			t.Errorf("%s: %d bytes, %v; want an error with %q", tc.name, n, err, tc.want)
		}
		if tc.name == "error" && !errors.Is(err, usersessions.ErrCorrupt) {
			t.Errorf("%s: %v does not wrap ErrCorrupt", tc.name, err)
		}
	}
}

// A client that reads a backup slowly (a slow disk, or it stopped reading
// for a while) holds up none of the app's writes: they go on, growing the
// file, while the stream waits, and the copy is still whole.
func TestControlBackupSlowClient(t *testing.T) {
	store, ctl := openControlled(t, nil)
	// More than the socket's buffers hold, so the app's side of the
	// stream waits for the client.
	padSessions(t, store, 100)
	fi, err := os.Stat(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	b := startSlowBackup(t, dial(t, ctl.Path()))
	filetest.GrowFile(t, store.Path(), 2*fi.Size(), func(w, i int) error {
		_, err := store.Create(ctx, fmt.Sprintf("grow%d-%d", w, i%10), usersessions.Client{UserAgent: strings.Repeat("g", 400)})
		return err
	})
	checkCopy(t, b.Finish(t), 100)
}

// padSessions creates n sessions of 32 KiB each.
func padSessions(t *testing.T, store *usersessions.Store, n int) {
	t.Helper()
	pad := strings.Repeat("0123456789abcdef", 2<<10)
	for i := range n {
		sess := create(t, store, fmt.Sprintf("u%d", i%5), usersessions.Client{})
		sess.Set("pad", pad)
		if err := store.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
}

// damagedDB returns a database file of two good sessions and one whose
// record does not decode.
func damagedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "s.db")
	store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	create(t, store, "good", usersessions.Client{})
	create(t, store, "good", usersessions.Client{})
	bad := create(t, store, "bad", usersessions.Client{})
	store.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, _ := base64.RawURLEncoding.DecodeString(bad.ID)
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("sessions")).Put(key, []byte{0xff, 0xfe}) }); err != nil {
		t.Fatal(err)
	}
	return path
}
