package usersessions

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/groupcommit"
	"github.com/usersessions/usersessions/internal/spool"
	bolt "go.etcd.io/bbolt"
)

// The embedded backend: one bbolt file.
//
// Records live in the "sessions" bucket under their 16-byte ID, encoded as
// codec.go describes; the user and expiry indexes (index_user.go) change in
// the same transaction, so they can never disagree after a crash. Writes go
// through a group committer that shares one transaction, and its one
// fsync, among the writers that arrive while the previous commit runs.

// schemaVersion is the layout of buckets, keys and records, stored in the
// meta bucket. Open refuses files with a newer version instead of
// misreading them, and upgrades older ones it can read: version 1 files
// differ only in their records' format (codec.go reads both), so Open just
// marks them version 2, which makes older builds refuse the file cleanly
// instead of failing on the first new record.
const (
	schemaVersion   = 2
	schemaVersionV1 = 1
)

var (
	metaSchema = []byte("schema")
	metaIdle   = []byte("idle_timeout")
	metaCount  = []byte("count")
)

// boltBackend is the Backend of Open. Its unexported type keeps its API
// the Store's; tools reach the file's own operations through Store methods.
type boltBackend struct {
	db   *bolt.DB
	file *os.File // the file bbolt reads; its descriptor holds the lock
	path string
	idle time.Duration
	log  *slog.Logger

	group   *groupcommit.Group[func(indexes) error] // the writes' committer, started by Open
	quit    chan struct{}                           // closed by Close: refuse new writes
	closed  atomic.Bool
	once    sync.Once
	commits atomic.Uint64
	broken  atomic.Bool // bbolt panicked in its commit or rollback: see update
}

// openBoltBackend opens (or creates) the file at path; the Store's Open
// finishes the job with Backend.Open.
func openBoltBackend(path string, timeout time.Duration) (*boltBackend, error) {
	db, file, err := openBolt(path, timeout)
	if err != nil {
		return nil, err
	}
	b := &boltBackend{db: db, file: file, path: path, log: slog.Default(), quit: make(chan struct{})}
	// Any failing write fails alone: the others of its batch run again
	// without it, so no partial batch is ever committed.
	b.group = groupcommit.New(b.quit, maxBatch, b.commitBatch, func(error) bool { return true })
	return b, nil
}

// errLockTimeout is lockFile's "still held by another process".
var errLockTimeout = errors.New("lock wait timed out")

// maxReplacedRetries bounds how often openLocked opens a path again after
// finding the file it locked replaced: each retry needs another replace
// (another compact finishing), so this many means something replaces the
// file in a loop.
const maxReplacedRetries = 100

// openLocked opens the file at path and takes its lock, waiting up to
// timeout in all (a retry after the wait is used up still tries the lock
// once), and makes sure the file it locked is still the one at
// path. "usersessions compact" renames its copy over the file while it
// holds the lock: a process that opened the file before the rename gets the
// lock on the old, unlinked file once compact ends, and would serve (and
// write to) a file nobody opens again. So after the lock is taken, the
// locked file and the path must name the same device and inode; if not,
// the new file at path is opened and locked in turn.
func openLocked(path string, flag int, mode os.FileMode, timeout time.Duration) (*os.File, error) {
	start := time.Now()
	for range maxReplacedRetries {
		f, err := os.OpenFile(path, flag, mode)
		if err != nil {
			return nil, err
		}
		// The rest of the wait; zero still tries the lock once.
		if err := lockFile(f, max(timeout-time.Since(start), 0)); err != nil {
			f.Close()
			return nil, err
		}
		same, err := isFileAt(f, path)
		if err != nil || same {
			if err != nil {
				f.Close()
				f = nil
			}
			return f, err
		}
		f.Close() // replaced while we waited: lock the new file
	}
	return nil, errLockTimeout
}

// isFileAt reports whether the open file f is the file at path (same device
// and inode). A path that no longer exists is not f: opening it again
// creates a new file, as an Open of a missing file does.
func isFileAt(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// openBolt opens the bbolt file at path safely: it waits for the lock
// (exactly timeout) on the file that is still at path (see openLocked),
// verifies the file's structure before bbolt reads it
// (see bolt_verify.go), and releases the file on every failure, so a
// restored copy can be opened by the same process. It returns the file
// bbolt reads too, which holds the lock.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, file *os.File, err error) {
	var opened *os.File // what bbolt got; closed here on any failure
	var verifyErr error
	openFile := func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := openLocked(name, flag, mode, timeout)
		if err != nil {
			if errors.Is(err, errLockTimeout) {
				return nil, bolt.ErrTimeout
			}
			return nil, err
		}
		if verifyErr = verifyBoltFile(name); verifyErr != nil {
			f.Close()
			return nil, verifyErr
		}
		opened = f
		return f, nil
	}
	defer func() {
		// bbolt panics on some kinds of damage instead of returning an
		// error. Whatever happened, a failed open must not keep the file
		// (its descriptor holds the lock).
		if p := recover(); p != nil {
			db, file, err = nil, nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, p)
		}
		if err != nil && opened != nil {
			opened.Close()
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		// Our lock wait comes first and is exact; bbolt's is a backstop
		// where lockFile cannot lock (it stops a retry step early).
		Timeout: timeout + 50*time.Millisecond,
		// The freelist is rebuilt on open instead of written on every
		// commit: cheaper commits, and nothing to lose in a crash.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		OpenFile:       openFile,
	})
	switch {
	case err == nil:
		return db, opened, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, nil, fmt.Errorf("open %s: %w (gave up after %v)", path, ErrLocked, timeout)
	case errors.Is(verifyErr, errNotBolt):
		return nil, nil, fmt.Errorf("open %s: %w: %v", path, ErrSchema, verifyErr)
	case verifyErr != nil:
		return nil, nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, verifyErr)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, nil, fmt.Errorf("open %s: %w: not a bbolt database (%v)", path, ErrSchema, err)
	case errors.Is(err, bolt.ErrChecksum):
		return nil, nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, err)
	default:
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// Open creates the buckets of a new file or checks an existing one, and
// settles the idle timeout (see Backend.Open and bolt_settle.go). It writes
// only when something changes, so opening an unchanged file with the stored
// idle timeout leaves it as it was.
func (b *boltBackend) Open(ctx context.Context, idle time.Duration, log *slog.Logger) (time.Duration, error) {
	if log != nil {
		b.log = log
	}
	var inForce time.Duration
	var changes bool
	err := b.viewTx(func(tx *bolt.Tx) (err error) {
		inForce, changes, err = b.settle(tx, idle)
		return err
	})
	if err == nil && changes {
		err = b.update(func(tx *bolt.Tx) (err error) {
			inForce, _, err = b.settle(tx, idle)
			return err
		})
	}
	if err != nil {
		return 0, err
	}
	b.group.Start(1)
	return inForce, nil
}

// rebuildExpiryIndex recomputes every expiry key for the idle timeout in
// force. A record whose header cannot be decoded keeps no entry (it is
// logged, Check names it, and deletes still remove it): one damaged record
// must not make the store unopenable.
func (b *boltBackend) rebuildExpiryIndex(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketByExpiry); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return err
	}
	byExpiry, err := tx.CreateBucket(bucketByExpiry)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v, false)
		if err != nil || len(k) != idBytes {
			b.log.Error("usersessions: expiry index rebuild skips a damaged record", "key", fmt.Sprintf("%x", k), "err", err)
			return nil
		}
		return byExpiry.Put(expiryKey(r.Deadline(b.idle), backend.ID(k)), nil)
	})
}

// ---- transactions ----

// view runs fn in a read transaction with the buckets open.
func (b *boltBackend) view(fn func(indexes) error) error {
	return b.viewTx(func(tx *bolt.Tx) error { return fn(openIndexes(tx, b.idle)) })
}

// viewTx runs fn in a read transaction, turning a closed database into
// ErrClosed and a bbolt panic on damaged pages into ErrCorrupt. Open
// verified the file, but it can still change under a running store (an
// operator truncating or overwriting it): reading a mapped page past the
// end of a truncated file faults, which would kill the process. With
// SetPanicOnFault such a fault is a panic of this goroutine, recovered here
// like bbolt's own.
func (b *boltBackend) viewTx(fn func(*bolt.Tx) error) (err error) {
	if b.closed.Load() {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return b.mapErr(b.db.View(fn))
}

func (b *boltBackend) mapErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// update runs fn in its own durable write transaction, mapping errors and
// panics like viewTx.
//
// A panic of fn (a damaged page under a running store) becomes an error
// inside the transaction, so bbolt rolls back as for any failed write. Let
// through, it would take bbolt's panic path: a rollback that rebuilds the
// freelist by walking every page (NoFreelistSync) in a goroutine of its
// own, where the damaged page panics again and kills the process, or, when
// the walk fails in ours, leaves bbolt's writer lock held, so every later
// write and Close wait forever. A panic that still reaches us comes from
// bbolt's own commit or rollback: the lock may be held, so the backend
// stops writing (errBroken) rather than wait on it.
func (b *boltBackend) update(fn func(*bolt.Tx) error) (err error) {
	if b.broken.Load() {
		return errBroken
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // see viewTx
	defer func() {
		if p := recover(); p != nil {
			b.broken.Store(true)
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	err = b.db.Update(func(tx *bolt.Tx) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", ErrCorrupt, p)
			}
		}()
		return fn(tx)
	})
	if err == nil {
		b.commits.Add(1)
	}
	return b.mapErr(err)
}

// brokenCloseWait bounds how long Close waits for bbolt's Close after a
// panic in bbolt's commit or rollback code.
const brokenCloseWait = 2 * time.Second

// closeBroken closes the database after bbolt panicked in its own commit or
// rollback (see update). Usually the panic still released bbolt's writer
// lock, and bbolt's Close unmaps the file and releases it. If the lock was
// left held, that Close would wait forever: it runs in a goroutine, and
// after brokenCloseWait the descriptor is closed instead. The file lock
// then stays until the process ends (the mapping keeps the file open), so
// a reopen in this process reports ErrLocked rather than hang.
func (b *boltBackend) closeBroken() error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("%w: %v", ErrCorrupt, p)
			}
		}()
		done <- b.db.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(brokenCloseWait):
		return errors.Join(errors.New("bbolt's writer lock is held: the file stays locked until the process ends"), b.file.Close())
	}
}

// errBroken answers writes after bbolt panicked in its own commit or
// rollback code (see update).
var errBroken = fmt.Errorf("%w: an earlier write failed inside bbolt; close and reopen the store", ErrCorrupt)

// Commits counts bbolt commits (backend.Committer): with the group commit,
// fewer than writes under load.
func (b *boltBackend) Commits() uint64 { return b.commits.Load() }

// ---- reading ----

// Get reads and decodes the record of id in its own read transaction. It
// is the uncached load path, so it opens the transaction by hand rather than
// through a closure (which would move the record to the heap) and opens
// only the records bucket.
func (b *boltBackend) getRecord(ctx context.Context, id backend.ID, r *record, values bool) (err error) {
	if b.closed.Load() {
		return ErrClosed
	}
	tx, err := b.db.Begin(false)
	if err != nil {
		return b.mapErr(err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // see viewTx
	defer func() {
		if p := recover(); p != nil { // bbolt panics on some damaged pages
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
		tx.Rollback()
	}()
	data := tx.Bucket(bucketSessions).Get(id[:])
	if data == nil {
		return ErrNotFound
	}
	*r, err = decodeRecordOf(&id, data, values)
	return err
}

// Get is getRecord for the Backend interface: the raw values are all a
// backend.Record holds, so it decodes none.
func (b *boltBackend) Get(ctx context.Context, id backend.ID, r *backend.Record, values bool) error {
	var full record
	err := b.getRecord(ctx, id, &full, false)
	*r = full.Record
	return err
}

// ListByUser reads userID's records through the user index.
func (b *boltBackend) ListByUser(ctx context.Context, userID string, fn func(*backend.Record, error)) error {
	return b.view(func(ix indexes) error {
		for _, id := range ix.userIDs(userID) {
			r, err := ix.get(id, false) // the Store decodes the values
			switch {
			case err != nil:
				fn(&backend.Record{ID: id}, fmt.Errorf("session %s: %w", id, err))
			case r == nil:
				fn(&backend.Record{ID: id}, fmt.Errorf("%w: user index names a missing session %s", ErrCorrupt, id))
			default:
				fn(r, nil)
			}
		}
		return nil
	})
}

// Scan reads up to limit records after the ID after, through the user
// index when f names a user (so paging through one user is linear).
func (b *boltBackend) Scan(ctx context.Context, f backend.ScanFilter, after backend.ID, limit int, fn func(*backend.Record, error)) (last backend.ID, done bool, err error) {
	err = b.view(func(ix indexes) error {
		start := after[:]
		if after == (backend.ID{}) {
			start = nil
		}
		var next func() (backend.ID, bool)
		if f.UserID != "" {
			next = userIDsAfter(ix, f.UserID, start)
		} else {
			next = sessionIDsAfter(ix, start)
		}
		for read := 0; read < limit; read++ {
			id, ok := next()
			if !ok {
				done = true
				return nil
			}
			last = id
			r, err := ix.get(id, false) // the Store decodes the values
			switch {
			case err != nil:
				fn(&backend.Record{ID: id}, fmt.Errorf("session %s: %w", id, err))
			case r != nil:
				fn(r, nil)
			}
		}
		return nil
	})
	return last, done, err
}

// userIDsAfter returns an iterator over the IDs of userID's sessions after
// start (from the first when start is nil), in the user index's order. It
// skips malformed index keys.
func userIDsAfter(ix indexes, userID string, start []byte) func() (backend.ID, bool) {
	prefix := userPrefix(userID)
	c := ix.byUser.Cursor()
	k, _ := c.Seek(append(prefix, start...))
	if start != nil && bytes.HasPrefix(k, prefix) && bytes.Equal(k[len(prefix):], start) {
		k, _ = c.Next()
	}
	return func() (backend.ID, bool) {
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) == len(prefix)+idBytes {
				id := backend.ID(k[len(prefix):])
				k, _ = c.Next()
				return id, true
			}
		}
		return backend.ID{}, false
	}
}

// sessionIDsAfter returns an iterator over the IDs of all sessions after
// start (from the first when start is nil), in ID order. It skips keys of
// the wrong length.
func sessionIDsAfter(ix indexes, start []byte) func() (backend.ID, bool) {
	c := ix.sessions.Cursor()
	var k []byte
	if start == nil {
		k, _ = c.First()
	} else if k, _ = c.Seek(start); k != nil && bytes.Equal(k, start) {
		k, _ = c.Next()
	}
	return func() (backend.ID, bool) {
		for k != nil && len(k) != idBytes {
			k, _ = c.Next()
		}
		if k == nil {
			return backend.ID{}, false
		}
		id := backend.ID(k)
		k, _ = c.Next()
		return id, true
	}
}

// Count reads the count kept in the meta bucket.
func (b *boltBackend) Count(ctx context.Context) (int, error) {
	n := 0
	err := b.view(func(ix indexes) error {
		n = int(ix.count())
		return nil
	})
	return n, err
}

// ---- writing ----

// Create writes a new record through the group committer.
func (b *boltBackend) Create(ctx context.Context, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	var evicted []backend.Record
	err := b.write(ctx, func(ix indexes) error {
		evicted = evicted[:0] // the op may run twice (see write)
		if ix.sessions.Get(r.ID[:]) != nil {
			return errors.New("usersessions: session ID collision") // 2^-128: a broken RNG
		}
		if err := ix.put(r.ID, nil, r); err != nil {
			return err
		}
		return b.applyLimit(ix, r, limit, &evicted)
	})
	return evicted, err
}

// Update changes a record through the group committer.
func (b *boltBackend) Update(ctx context.Context, id backend.ID, change func(*backend.Record) error, limit *backend.UserLimit) ([]backend.Record, error) {
	var evicted []backend.Record
	err := b.write(ctx, func(ix indexes) error {
		evicted = evicted[:0]
		old, err := ix.get(id, false)
		if err != nil || old == nil {
			return cmp.Or(err, ErrNotFound)
		}
		r := *old
		r.ID = id
		if err := change(&r); err != nil {
			return err
		}
		if err := ix.put(id, old, &r); err != nil {
			return err
		}
		if r.UserID == old.UserID {
			return nil // the user gained no session
		}
		return b.applyLimit(ix, &r, limit, &evicted)
	})
	return evicted, err
}

// applyLimit removes the least recent of r's user's live sessions beyond
// limit.Max, never r itself. The committer runs one transaction at a time,
// so the count cannot race another sign-in.
func (b *boltBackend) applyLimit(ix indexes, r *backend.Record, limit *backend.UserLimit, evicted *[]backend.Record) error {
	if limit == nil || limit.Max <= 0 || r.UserID == "" {
		return nil
	}
	var live []*backend.Record
	for _, id := range ix.userIDs(r.UserID) {
		if id == r.ID {
			continue
		}
		other, err := ix.get(id, false)
		if err != nil || other == nil {
			continue // damaged or dangling: not a live session
		}
		other.ID = id
		if limit.Live(other) {
			live = append(live, other)
		}
	}
	excess := len(live) + 1 - limit.Max
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(live, func(a, c *backend.Record) int {
		return cmp.Compare(limit.Recency(a), limit.Recency(c))
	})
	for _, victim := range live[:excess] {
		if err := ix.remove(victim.ID, victim); err != nil {
			return err
		}
		if err := ix.ended(victim, limit.Ending); err != nil {
			return err
		}
		*evicted = append(*evicted, *victim)
	}
	return nil
}

// Touch writes activity in one transaction of its own.
func (b *boltBackend) Touch(ctx context.Context, acts []backend.Activity) error {
	return b.update(func(tx *bolt.Tx) error {
		ix := openIndexes(tx, b.idle)
		for _, a := range acts {
			old, err := ix.get(a.ID, false)
			if err != nil {
				b.log.Error("usersessions: flush skips unreadable record", "id", a.ID.String(), "err", err)
				continue
			}
			if old == nil {
				continue // deleted meanwhile: never resurrect
			}
			r := *old
			if a.LastSeen >= r.LastSeen { // older activity moves nothing back, its client included
				r.IP, r.UserAgent = a.IP, a.UserAgent
			}
			r.LastSeen = max(r.LastSeen, a.LastSeen)
			if err := ix.put(a.ID, old, &r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes one record, damaged ones included.
func (b *boltBackend) Delete(ctx context.Context, id backend.ID, owner *string, end backend.Ending) (backend.Record, error) {
	var removed backend.Record
	err := b.write(ctx, func(ix indexes) error {
		removed = backend.Record{ID: id}
		r, err := ix.get(id, true)
		if err != nil {
			// A damaged record still ends: the user index decides whose
			// it is (see removeDamaged).
			if owner != nil && ix.byUser.Get(userKey(*owner, id)) == nil {
				return ErrNotFound
			}
			b.log.Error("usersessions: removing a damaged session record", "id", id.String(), "err", err)
			return ix.removeDamaged(id)
		}
		if r == nil || owner != nil && r.UserID != *owner {
			return ErrNotFound
		}
		r.ID = id
		removed = *r
		if err := ix.remove(id, r); err != nil {
			return err
		}
		return ix.ended(r, end)
	})
	return removed, err
}

// DeleteByUser removes one user's records, reading only that user's index
// entries.
func (b *boltBackend) DeleteByUser(ctx context.Context, userID string, keep backend.ID, end backend.Ending) ([]backend.Record, error) {
	var removed []backend.Record
	err := b.write(ctx, func(ix indexes) error {
		removed = removed[:0] // the op may run twice (see write)
		for _, id := range ix.userIDs(userID) {
			if id == keep {
				continue
			}
			r, err := ix.get(id, true)
			if err != nil { // damaged: revocation must still happen
				b.log.Error("usersessions: removing a damaged session record", "user", userID, "id", id.String(), "err", err)
				if err := ix.removeDamaged(id); err != nil {
					return err
				}
				removed = append(removed, backend.Record{ID: id, UserID: userID})
				continue
			}
			if r == nil {
				// A dangling index entry: drop it rather than fail.
				if err := ix.byUser.Delete(userKey(userID, id)); err != nil {
					return err
				}
				continue
			}
			r.ID = id
			if err := ix.remove(id, r); err != nil {
				return err
			}
			if err := ix.ended(r, end); err != nil {
				return err
			}
			removed = append(removed, *r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// History reads userID's history entries, most recent first.
func (b *boltBackend) History(ctx context.Context, userID string) ([]backend.EndedRecord, error) {
	var out []backend.EndedRecord
	err := b.view(func(ix indexes) error {
		var damaged []error
		out, damaged = ix.historyOf(userID)
		for _, err := range damaged {
			b.log.Error("usersessions: history skips a damaged entry", "err", err)
		}
		slices.Reverse(out)
		return nil
	})
	return out, err
}

// DeleteExpired walks the expiry index from the front and stops at the
// first deadline in the future, so it touches only what has expired. With
// nothing due it costs a read, not a durable write.
func (b *boltBackend) DeleteExpired(ctx context.Context, q backend.ExpiredQuery) (removed []backend.Record, more bool, err error) {
	if due, err := b.expiryDue(q.Now); err != nil || !due {
		return nil, false, err
	}
	if q.Limit <= 0 {
		q.Limit = defaultExpiredLimit
	}
	err = b.update(func(tx *bolt.Tx) error {
		removed, more = removed[:0], false
		ix := openIndexes(tx, b.idle)
		var err error
		if more, err = ix.purgeHistory(q.Now, q.Limit); err != nil || more {
			return err
		}
		var victims []victim
		var stale [][]byte
		victims, stale, more = b.collectExpired(ix, q)
		if removed, err = b.removeExpired(ix, q, victims, stale); err != nil {
			return err
		}
		return ix.saveCount()
	})
	return removed, more, err
}

// defaultExpiredLimit is DeleteExpired's limit for ExpiredQuery.Limit 0.
const defaultExpiredLimit = 1000

// A victim is a record cleanup acts on.
type victim struct {
	id      backend.ID
	r       *backend.Record // nil: re-index it (its expiry entry was wrong)
	damaged bool            // unreadable: remove it by its index entries
}

// collectExpired reads what q makes due from the front of the expiry
// index: the records to act on, and the index keys to drop (malformed, or
// disagreeing with their record). more is true when it stopped at
// q.Limit.
func (b *boltBackend) collectExpired(ix indexes, q backend.ExpiredQuery) (victims []victim, stale [][]byte, more bool) {
	now := q.Now
	c := ix.byExpiry.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		dl, id, ok := splitExpiryKey(k)
		if ok && dl > max(now, 0) { // keys clamp at 0: see expiryKey
			break
		}
		if len(victims)+len(stale) >= q.Limit {
			return victims, stale, true
		}
		if !ok { // points nowhere; Check reports it until it goes
			b.log.Error("usersessions: cleanup drops a malformed expiry index key", "key", fmt.Sprintf("%x", k))
			stale = append(stale, slices.Clone(k))
			continue
		}
		if q.Keep != nil && q.Keep(id) {
			continue // activity since the flush: the next flush moves it
		}
		r, err := ix.get(id, false)
		switch {
		case err != nil:
			// Due by its index entry, written while it was whole.
			b.log.Error("usersessions: cleanup removes a damaged session record", "id", id.String(), "err", err)
			victims = append(victims, victim{id: id, damaged: true})
		case r == nil || max(r.Deadline(ix.idle), 0) != dl:
			// An entry that disagrees with its record (Check
			// reports these): drop it; the victim re-adds a right one.
			stale = append(stale, slices.Clone(k))
			if r != nil {
				victims = append(victims, victim{id: id})
			}
		case r.Deadline(ix.idle) <= now && (r.Expires <= now || backend.AddNanos(backend.AddNanos(r.LastSeen, ix.idle), q.IdleGrace) <= now):
			victims = append(victims, victim{id: id, r: r})
		}
	}
	return victims, stale, false
}

// removeExpired drops the stale index keys and acts on the victims that
// collectExpired found, and returns the records it removed.
func (b *boltBackend) removeExpired(ix indexes, q backend.ExpiredQuery, victims []victim, stale [][]byte) ([]backend.Record, error) {
	for _, k := range stale {
		if err := ix.byExpiry.Delete(k); err != nil {
			return nil, err
		}
	}
	var removed []backend.Record
	for _, v := range victims {
		switch {
		case v.damaged:
			if err := ix.removeDamaged(v.id); err != nil {
				return nil, err
			}
			removed = append(removed, backend.Record{ID: v.id})
		case v.r == nil: // re-index a record whose entry was wrong
			r, err := ix.get(v.id, false)
			if err != nil {
				return nil, err
			}
			if err := ix.byExpiry.Put(expiryKey(r.Deadline(ix.idle), v.id), nil); err != nil {
				return nil, err
			}
		default:
			if err := ix.remove(v.id, v.r); err != nil {
				return nil, err
			}
			v.r.ID = v.id
			if err := ix.ended(v.r, backend.Ending{At: q.Now, Reason: backend.ExpiryReason(v.r, q.Now), Keep: q.History}); err != nil {
				return nil, err
			}
			removed = append(removed, *v.r)
		}
	}
	return removed, nil
}

// expiryDue reports whether the expiry index's first entry is due (or
// malformed).
func (b *boltBackend) expiryDue(now int64) (due bool, err error) {
	err = b.view(func(ix indexes) error {
		k, _ := ix.byExpiry.Cursor().First()
		dl, _, ok := splitExpiryKey(k)
		due = k != nil && (!ok || dl <= max(now, 0))
		if h, _ := ix.historyUntil.Cursor().First(); h != nil {
			due = due || len(h) < 8 || int64(binary.BigEndian.Uint64(h)) <= max(now, 0)
		}
		return nil
	})
	return due, err
}

// ---- group commit ----

// maxBatch bounds how many writes share one transaction.
const maxBatch = 256

// write hands fn to the group committer (package groupcommit: writes that
// arrive while a transaction commits share the next one and its fsync)
// and waits until it is durable. fn may run twice: alone, after its batch
// failed.
func (b *boltBackend) write(ctx context.Context, fn func(indexes) error) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.group.Do(ctx, fn)
}

// commitBatch runs a batch of writes in one transaction: all of them
// commit, or none.
func (b *boltBackend) commitBatch(ops []func(indexes) error) error {
	return b.update(func(tx *bolt.Tx) error {
		ix := openIndexes(tx, b.idle)
		for _, fn := range ops {
			if err := fn(ix); err != nil {
				return err
			}
		}
		return ix.saveCount()
	})
}

// ---- lifecycle ----

// Close waits for writes in flight and closes the file.
func (b *boltBackend) Close() error {
	var err error
	b.once.Do(func() {
		close(b.quit)
		b.group.Wait()
		b.closed.Store(true)
		if b.broken.Load() {
			err = errors.Join(errBroken, b.closeBroken())
			return
		}
		// bbolt's Close waits for read transactions still running.
		err = b.db.Close()
	})
	return err
}

// WriteTo writes a consistent copy of the whole file to w, from one read
// transaction, while the store keeps running (a hot backup).
//
// The read transaction ends before anything is written to w. While one is
// open, bbolt cannot remap the file, so every write that grows the file
// would wait for a slow w (a slow disk, a client of the control socket
// that stops reading) for as long as the copy takes. So the transaction
// copies into a private temporary file at local-disk speed (package spool),
// and w gets the copy from there.
func (b *boltBackend) WriteTo(w io.Writer) (int64, error) {
	// Beside the database: the space for a copy is likely there, and its
	// folder protects the copy as it protects the file.
	dirs := []string{filepath.Dir(b.path), ""}
	return spool.Copy(w, filepath.Base(b.path)+".backup-*.tmp", dirs, func(f io.Writer) (n int64, err error) {
		err = b.viewTx(func(tx *bolt.Tx) error {
			n, err = tx.WriteTo(f)
			return err
		})
		return n, err
	})
}

// Check verifies that the indexes and the records agree: every record
// decodes, has exactly its user-index entry and its expiry-index entry at the
// deadline its fields give, and every index entry points at such a record.
// It reads the whole file in one transaction; the problems it finds are
// returned joined, each wrapping ErrCorrupt.
func (b *boltBackend) Check(ctx context.Context) error {
	var c boltCheck
	err := b.view(func(ix indexes) error {
		c.ix = ix
		if err := c.decodeRecords(ctx); err != nil {
			return err
		}
		c.userIndex()
		c.expiryIndex()
		c.coverage()
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(c.problems...)
}

// boltCheck is one run of Check over one read transaction.
type boltCheck struct {
	ix       indexes
	records  map[backend.ID]*backend.Record // the records that decode
	users    map[backend.ID]bool            // sessions found in the user index
	expiries map[backend.ID]bool            // sessions found in the expiry index
	problems []error
}

// report adds a problem wrapping ErrCorrupt; past 100 the rest are dropped,
// so a badly damaged file gives a readable answer.
func (c *boltCheck) report(format string, args ...any) {
	if len(c.problems) < 100 {
		c.problems = append(c.problems, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
	}
}

// decodeRecords decodes every record, keeping those that decode.
func (c *boltCheck) decodeRecords(ctx context.Context) error {
	c.records = make(map[backend.ID]*backend.Record)
	return c.ix.sessions.ForEach(func(k, v []byte) error {
		if len(k) != idBytes {
			c.report("record key %x has the wrong length", k)
			return nil
		}
		r, err := decodeRecord(v, true)
		if err != nil {
			c.report("session %s: %v", backend.ID(k), err)
			return nil
		}
		c.records[backend.ID(k)] = &r.Record
		return ctx.Err()
	})
}

// userIndex checks that every user index entry points at a record of that
// user, once.
func (c *boltCheck) userIndex() {
	c.users = make(map[backend.ID]bool)
	c.ix.byUser.ForEach(func(k, _ []byte) error {
		user, id, ok := splitUserKey(k)
		switch r := c.records[id]; {
		case !ok:
			c.report("malformed user index key %x", k)
		case r == nil:
			c.report("user index: %q -> missing session %s", user, id)
		case r.UserID != user:
			c.report("user index: %q -> session %s of user %q", user, id, r.UserID)
		case c.users[id]:
			c.report("user index: session %s listed twice", id)
		default:
			c.users[id] = true
		}
		return nil
	})
}

// expiryIndex checks that every expiry index entry points at a record whose
// deadline it is, once.
func (c *boltCheck) expiryIndex() {
	c.expiries = make(map[backend.ID]bool)
	c.ix.byExpiry.ForEach(func(k, _ []byte) error {
		dl, id, ok := splitExpiryKey(k)
		switch r := c.records[id]; {
		case !ok:
			c.report("malformed expiry index key %x", k)
		case r == nil:
			c.report("expiry index: missing session %s", id)
		case max(r.Deadline(c.ix.idle), 0) != dl:
			c.report("expiry index: session %s at %v, its deadline is %v", id, unixNano(dl), unixNano(r.Deadline(c.ix.idle)))
		case c.expiries[id]:
			c.report("expiry index: session %s listed twice", id)
		default:
			c.expiries[id] = true
		}
		return nil
	})
}

// coverage checks the stored count, and that every record is in the
// indexes it belongs in.
func (c *boltCheck) coverage() {
	if n, stored := c.ix.sessions.Stats().KeyN, c.ix.count(); int64(n) != stored {
		c.report("the stored count is %d, the sessions bucket holds %d", stored, n)
	}
	for id, r := range c.records {
		if r.UserID != "" && !c.users[id] {
			c.report("session %s of user %q is missing from the user index", id, r.UserID)
		}
		if !c.expiries[id] {
			c.report("session %s is missing from the expiry index", id)
		}
	}
}
