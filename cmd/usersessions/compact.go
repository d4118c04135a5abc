package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/usersessions/usersessions"
	bolt "go.etcd.io/bbolt"
)

// Buckets and keys of a usersessions file that these commands look at (see
// bolt_store.go and index_user.go; they only read them).
var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	metaSchemaKey  = []byte("schema")
)

// compactTxSize is how much data bolt.Compact copies per transaction.
const compactTxSize = 64 << 20

// openRaw opens a usersessions file with bbolt itself, for compact and
// backup: after the checks of probeFile, with the usersessions meta bucket
// required. readOnly takes bbolt's shared lock (other readers may hold the
// file too), otherwise its exclusive one, so no app opens the file
// meanwhile. The free list is not written on open (the store's own
// setting), so opening changes nothing.
func openRaw(d *dbFlags, readOnly bool, what string) (*bolt.DB, error) {
	if isPostgres(d.path) {
		return nil, fmt.Errorf("%s: cannot %s a PostgreSQL database: %s works on the bbolt file only (PostgreSQL has VACUUM and pg_dump)",
			displayURL(d.path), what, what)
	}
	if _, err := os.Stat(d.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no session database at %s (check -db)", d.path)
		}
		return nil, err
	}
	res, err := probeFile(d.path)
	if err != nil {
		return nil, err
	}
	inUse := &openError{fmt.Errorf("%s: %w", d.path, usersessions.ErrLocked),
		fmt.Sprintf("%s is in use by another process (is the app running?); stop it to %s the file", d.path, what)}
	if res.Status == probeLocked {
		return nil, inUse
	}
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{
		ReadOnly:       readOnly,
		Timeout:        operatorOpenTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, inUse
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(metaSchemaKey) == nil || tx.Bucket(bucketSessions) == nil {
			return &openError{fmt.Errorf("%s: %w", d.path, usersessions.ErrSchema),
				fmt.Sprintf("%s is not a usersessions database", d.path)}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// sessionCount is the number of records in the sessions bucket.
func sessionCount(db *bolt.DB) (n int, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSessions); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// ---- compact ----

func cmdCompact(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("compact", "compact [-db PATH]", `
Rewrites the database without its free pages, which bbolt keeps for reuse
but never returns to the file system: after many sessions came and went the
file is mostly free space ("stats" shows how much). The copy is made with
bbolt's own compaction into a new file beside the database, synced, checked,
and renamed over the original in one step: an interruption leaves the
original as it was. The app must be stopped: a file in use is refused.`, stderr)
	db := addDBFlags(fs)
	hideFlags(fs, "idle-timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.idle.set {
		return usagef(fs, "-idle-timeout does not apply to compact")
	}
	start := time.Now()
	src, err := openRaw(db, false, "compact")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := src.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fi, err := os.Stat(db.path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(db.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(db.path)+".compact-*.tmp")
	if err != nil {
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmpPath)
		}
	}()
	if err := os.Chmod(tmpPath, fi.Mode().Perm()); err != nil {
		return err
	}
	dst, err := bolt.Open(tmpPath, fi.Mode().Perm(), &bolt.Options{
		NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		dst.Close()
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	want, err := sessionCount(src)
	if err != nil {
		dst.Close()
		return err
	}
	got, err := sessionCount(dst)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	if got != want {
		return fmt.Errorf("compacting %s: the copy holds %d sessions, the file %d; the file is left as it was", db.path, got, want)
	}
	if err := fsyncFile(tmpPath); err != nil {
		return err
	}
	// The exclusive lock on the original is still held: no app opens it
	// between the copy and the rename.
	if err := os.Rename(tmpPath, db.path); err != nil {
		return fmt.Errorf("compacting %s: %w", db.path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return err
	}
	after := int64(0)
	if fi, err := os.Stat(db.path); err == nil {
		after = fi.Size()
	}
	fmt.Fprintf(stdout, "compacted %s: %s -> %s, %d %s, in %v\n", db.path, humanBytes(fi.Size()), humanBytes(after),
		want, plural(want, "session"), time.Since(start).Round(time.Millisecond))
	return nil
}

func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ---- backup ----

func cmdBackup(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("backup", "backup [-db PATH] -o FILE [-force]", `
Writes a consistent copy of the database to FILE (bbolt's Tx.WriteTo, one
read transaction): first to a temporary file beside FILE, synced, then
renamed to FILE. An existing FILE is kept unless -force. The app must be
stopped; restore by copying the backup over the database while it is
stopped.`, stderr)
	db := addDBFlags(fs)
	hideFlags(fs, "idle-timeout")
	out := fs.String("o", "", "backup `file` to write")
	force := fs.Bool("force", false, "replace an existing backup file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case db.idle.set:
		return usagef(fs, "-idle-timeout does not apply to backup")
	case *out == "":
		return usagef(fs, "-o FILE is needed: where to write the backup")
	}
	if same, _ := samePath(*out, db.path); same {
		return usagef(fs, "-o %s is the database itself", *out)
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists; nothing written (-force replaces it)", *out)
	}
	src, err := openRaw(db, true, "back up")
	if err != nil {
		return err
	}
	defer src.Close()

	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, filepath.Base(*out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpPath := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	var n int
	var size int64
	err = src.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketSessions).Stats().KeyN
		var werr error
		size, werr = tx.WriteTo(tmp)
		return werr
	})
	if err != nil {
		return fmt.Errorf("backup of %s: %w", db.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if *force {
		err = os.Rename(tmpPath, *out)
	} else {
		// A link fails if FILE appeared meanwhile: never overwritten.
		if err = os.Link(tmpPath, *out); err == nil {
			os.Remove(tmpPath)
		} else if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; nothing written (-force replaces it)", *out)
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d %s, %s\n", db.path, *out, n, plural(n, "session"), humanBytes(size))
	return nil
}

// samePath reports whether a and b name the same file.
func samePath(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
