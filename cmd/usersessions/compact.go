package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
	"github.com/usersessions/usersessions/internal/spool"
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
	db, err := openBoltAt(d.path, bolt.Options{
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

// maxReopens bounds how often openBoltAt opens a path again: each time
// needs another compact to replace the file meanwhile.
const maxReopens = 100

// openBoltAt opens the bbolt file at path with opts and makes sure the file
// it locked is still the one at path. A compact renames its copy over the
// file while it holds the lock: an open that waited for that lock gets the
// old, unlinked file, and a compact of it would rename stale data over
// what an app wrote to the new one meanwhile. Such an open is done again,
// on the new file (as the store's Open does). A missing file is an error:
// operator commands never create one.
func openBoltAt(path string, opts bolt.Options) (*bolt.DB, error) {
	for range maxReopens {
		var file *os.File
		opts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
			// Never create: a file removed meanwhile is an error, not
			// a new empty database.
			f, err := os.OpenFile(name, flag&^os.O_CREATE, mode)
			file = f
			return f, err
		}
		db, err := bolt.Open(path, 0o600, &opts)
		if err != nil {
			return nil, err
		}
		same, err := isFileAt(file, path)
		if err == nil && same {
			return db, nil
		}
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil, bolt.ErrTimeout // replaced over and over: in use
}

// isFileAt reports whether the open file f is the file at path now.
func isFileAt(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
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
given the original's owner, group and mode, and renamed over the original
in one step: an interruption leaves the original as it was. The app must be
stopped: a file in use is refused.`, stderr)
	db := addDBFlags(fs)
	hideFlags(fs, "idle-timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.idle.set {
		return usagef(fs, "-idle-timeout does not apply to compact")
	}
	if isDatabaseURL(db.path) {
		return fmt.Errorf("compact rewrites a session database file; -db %s is a %s server, %s",
			redactDB(db.path), serverKind(db.path), serverSpace[serverKind(db.path)])
	}
	start := time.Now()
	src, err := openRaw(db, false, "compact")
	if errors.Is(err, usersessions.ErrLocked) {
		return compactInUse(db.path, err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := src.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	before, want, err := compactReplace(src, db.path)
	if err != nil {
		return err
	}
	after := int64(0)
	if fi, err := os.Stat(db.path); err == nil {
		after = fi.Size()
	}
	fmt.Fprintf(stdout, "compacted %s: %s -> %s, %d %s, in %v\n", db.path, humanBytes(before), humanBytes(after),
		want, plural(want, "session"), time.Since(start).Round(time.Millisecond))
	return nil
}

// compactReplace compacts the file src holds (under its exclusive lock)
// into a temporary copy beside it and renames the copy over the file at
// path; it returns the file's size before and the number of sessions.
// Until the rename, the copy is removed on any error and the file is left
// as it was.
func compactReplace(src *bolt.DB, path string) (before int64, n int, err error) {
	// Through a symbolic link, the file it points to is replaced: a
	// rename over the link would replace the link and leave the file.
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return 0, 0, err
	}
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, filepath.Base(file)+".compact-*.tmp")
	if err != nil {
		return 0, 0, fmt.Errorf("compacting %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmpPath)
		}
	}()
	want, err := compactInto(tmpPath, src, path)
	if err != nil {
		return 0, 0, err
	}
	if err := replaceFile(tmpPath, file, fi, path); err != nil {
		return 0, 0, err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	return fi.Size(), want, nil
}

// compactInto copies src into a new bbolt file at tmpPath with bbolt's
// compaction, syncs it, and checks that it holds as many sessions as src;
// it returns that count. name is the database's, for errors.
func compactInto(tmpPath string, src *bolt.DB, name string) (int, error) {
	dst, err := bolt.Open(tmpPath, 0o600, &bolt.Options{
		NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return 0, fmt.Errorf("compacting %s: %w", name, err)
	}
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		dst.Close()
		return 0, fmt.Errorf("compacting %s: %w", name, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return 0, fmt.Errorf("compacting %s: %w", name, err)
	}
	want, err := sessionCount(src)
	if err != nil {
		dst.Close()
		return 0, err
	}
	got, err := sessionCount(dst)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("compacting %s: %w", name, err)
	}
	if got != want {
		return 0, fmt.Errorf("compacting %s: the copy holds %d sessions, the file %d; the file is left as it was", name, got, want)
	}
	return want, nil
}

// replaceFile puts the copy at tmpPath in the place of file (whose
// FileInfo is fi) in one rename, once the copy has the file's owner, group
// and mode and is synced. name is the database's, for errors.
func replaceFile(tmpPath, file string, fi os.FileInfo, name string) error {
	// The app may run as another user (compact as root): the copy gets
	// the file's owner, group and mode, or the file is left as it was.
	if err := keepOwnerAndMode(tmpPath, fi); err != nil {
		return fmt.Errorf("compacting %s: %w; the file is left as it was", name, err)
	}
	if err := fsyncFile(tmpPath); err != nil {
		return err
	}
	// The exclusive lock on the original is still held: no app opens it
	// between the copy and the rename. An app that waits for the lock
	// meanwhile gets it on the unlinked original, sees that the file at
	// the path is another, and opens that one (usersessions.Open, like
	// openBoltAt here).
	if err := os.Rename(tmpPath, file); err != nil {
		return fmt.Errorf("compacting %s: %w", name, err)
	}
	return nil
}

// compactInUse is compact's answer for a file the app holds: with a
// control socket it names the app's free space and why the socket cannot
// help.
func compactInUse(path string, err error) error {
	c, cerr := dialApp(path)
	if cerr != nil {
		return err // in use by another process; stop it to compact the file
	}
	free := ""
	if f := c.Info().File; f != nil {
		free = fmt.Sprintf(" (%s of its %s are free)", humanBytes(f.FreeBytes), humanBytes(f.Size))
	}
	return &openError{err, fmt.Sprintf("%s is in use by the running app%s; compact cannot go through its control socket "+
		"(%s): a compacted copy cannot replace a file the app has open, so stop the app to compact it "+
		"(backup works meanwhile)", path, free, control.SocketPath(path))}
}

// keptMode is the part of was's mode a replacing copy keeps: permissions
// and the set-ID and sticky bits.
func keptMode(was os.FileInfo) os.FileMode {
	return was.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
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
Writes a consistent copy of the database to FILE, from one read transaction
(bbolt's Tx.WriteTo), while the app keeps running: when the app holds the
file, the copy comes through its control socket (control.Serve,
Store.Backup), otherwise from the file itself. Either way the read
transaction copies into a private temporary file beside the database (or
in the temporary folder) and ends before FILE is written: a slow FILE holds
up neither the app's writes nor its start. The copy goes to a temporary
file beside FILE, is synced, checked (bbolt's page check, then the store's
check that records and indexes agree) and only then renamed to FILE. An
existing FILE is kept unless -force (the new one then keeps its owner,
group and mode). To restore, stop the app and copy the backup over the
database.`, stderr)
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
	case isDatabaseURL(db.path):
		return fmt.Errorf("backup copies a session database file; -db %s is a %s server: %s",
			redactDB(db.path), serverKind(db.path), serverBackup[serverKind(db.path)])
	case isDatabaseURL(*out):
		return usagef(fs, "-o wants a file, not a URL")
	}
	if same, _ := samePath(*out, db.path); same {
		return usagef(fs, "-o %s is the database itself", *out)
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists; nothing written (-force replaces it)", *out)
	}
	ctx, stop := signalContext()
	defer stop()

	from, err := openBackupSource(ctx, db)
	if err != nil {
		return err
	}
	defer from.close()
	n, size, err := writeBackup(*out, *force, from.total, from.copyTo, stderr)
	if err != nil {
		return err
	}
	how := ""
	if from.via != "" {
		how = " (from the running app, through " + from.via + ")"
	}
	fmt.Fprintf(stdout, "backed up %s to %s%s: %d %s, %s\n", db.path, *out, how, n, plural(n, "session"), humanBytes(size))
	return nil
}

// backupSource is where backup reads its copy from.
type backupSource struct {
	copyTo func(w io.Writer) (int64, error) // writes the copy
	via    string                           // the control socket, when the app holds the file
	total  int64                            // the expected size, for progress; 0 if unknown
	close  func()                           // releases the file, if backup opened it
}

// openBackupSource opens the database for backup: the file itself when no
// app holds it, otherwise the app's control socket.
func openBackupSource(ctx context.Context, db *dbFlags) (backupSource, error) {
	src, err := openRaw(db, true, "back up")
	switch {
	case err == nil:
		from := backupSource{copyTo: copyFromFile(src), close: func() { src.Close() }}
		if fi, err := os.Stat(db.path); err == nil {
			from.total = fi.Size()
		}
		return from, nil
	case errors.Is(err, usersessions.ErrLocked):
		c, cerr := dialApp(db.path)
		if cerr != nil {
			if errors.Is(cerr, os.ErrNotExist) {
				return backupSource{}, fmt.Errorf("%s is in use by another process, which serves no control socket "+
					"(control.Serve); stop it to back up the file, or let the app serve one", db.path)
			}
			return backupSource{}, fmt.Errorf("%s is in use by another process; its control socket: %v", db.path, cerr)
		}
		from := backupSource{
			copyTo: func(w io.Writer) (int64, error) { return c.Backup(ctx, w) },
			via:    control.SocketPath(db.path),
			close:  func() {},
		}
		if f := c.Info().File; f != nil {
			from.total = f.Size
		}
		return from, nil
	default:
		return backupSource{}, err
	}
}

// copyFromFile is backup's copy of a file no app holds, opened as src:
// bbolt's Tx.WriteTo into a private temporary file (package spool), then
// src is closed, releasing the file, and w gets the copy from there.
// Writing w from the file itself would keep it locked for as long as w is
// slow (-o on a slow disk), and an app starting meanwhile could not open
// its database.
func copyFromFile(src *bolt.DB) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		path := src.Path()
		dirs := []string{filepath.Dir(path), ""}
		return spool.Copy(w, filepath.Base(path)+".backup-*.tmp", dirs, func(f io.Writer) (n int64, err error) {
			err = src.View(func(tx *bolt.Tx) error {
				n, err = tx.WriteTo(f)
				return err
			})
			if cerr := src.Close(); err == nil {
				err = cerr // releases the file before w is written
			}
			return n, err
		})
	}
}

// writeBackup writes a backup with copyTo into a temporary file beside
// out, syncs and verifies it, and moves it to out: over an existing file
// only with force. It returns the sessions and bytes in the copy. On any
// failure nothing is left behind and out is as it was.
func writeBackup(out string, force bool, total int64, copyTo func(io.Writer) (int64, error), stderr io.Writer) (sessions int, size int64, err error) {
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, filepath.Base(out)+".tmp-*")
	if err != nil {
		return 0, 0, fmt.Errorf("backup: %w", err)
	}
	tmpPath := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	bar := newProgress(stderr, "copying", total, true)
	size, err = copyTo(&progressWriter{w: tmp, bar: bar})
	bar.Done()
	if err != nil {
		return 0, 0, fmt.Errorf("backup: %w; nothing written to %s", err, out)
	}
	if err := tmp.Sync(); err != nil {
		return 0, 0, fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, fmt.Errorf("backup: %w", err)
	}
	sessions, err = verifyBackup(tmpPath)
	if err != nil {
		return 0, 0, fmt.Errorf("backup: the copy does not check out, nothing written to %s: %w", out, err)
	}
	if force {
		// A replaced backup keeps its owner, group and mode, as a cp
		// onto it would.
		if was, lerr := os.Lstat(out); lerr == nil && was.Mode().IsRegular() {
			if err := keepOwnerAndMode(tmpPath, was); err != nil {
				return 0, 0, fmt.Errorf("backup: %w; nothing written to %s", err, out)
			}
		}
		err = os.Rename(tmpPath, out)
	} else {
		// A link fails if out appeared meanwhile: never overwritten.
		if err = os.Link(tmpPath, out); err == nil {
			os.Remove(tmpPath)
		} else if errors.Is(err, os.ErrExist) {
			return 0, 0, fmt.Errorf("%s exists; nothing written (-force replaces it)", out)
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("backup: %w", err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	return sessions, size, nil
}

// verifyBackup checks a fresh copy as "check" would: bbolt's page check in
// a child process, then the store's own check, and counts its sessions.
// It opens the copy with the operator commands' options: no setting is
// stored, nothing cleaned up.
func verifyBackup(path string) (int, error) {
	if _, err := probeFile(path); err != nil {
		return 0, err
	}
	store, err := openStore(path, &usersessions.Options{
		IdleTimeout:     usersessions.UseStoredIdleTimeout,
		OpenTimeout:     operatorOpenTimeout,
		CleanupInterval: -1,
		NoCache:         true,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	n, err := store.Count(ctx)
	if err == nil {
		err = store.Check(ctx)
	}
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// progressWriter advances a progress bar by what is written through it.
type progressWriter struct {
	w   io.Writer
	bar *progressBar
	n   int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.bar.Set(p.n)
	return n, err
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
