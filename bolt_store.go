package usersessions

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

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

// Store is a session store backed by one bbolt file. It is safe for
// concurrent use. Create it with Open and Close it when done.
type Store struct {
	db     *bolt.DB
	path   string
	opts   Options
	log    *slog.Logger
	cache  *memCache // nil in uncached mode
	active *activityTable

	writes  chan *writeOp   // to the group committer
	quit    chan struct{}   // closed by Close: stop accepting work
	bg      context.Context // background work's context, cancelled by Close
	stopBg  context.CancelFunc
	stopped chan struct{} // closed when the committer has exited
	loops   sync.WaitGroup
	closed  atomic.Bool
	closeMu sync.Mutex

	clock *clock

	// Striped: Load runs in parallel. A Load served by the token fast path
	// counts in hitLoads alone, as a load and a cache hit.
	loads, hitLoads                           [16]paddedCounter
	creates, saves, deletes, commits, flushes atomic.Uint64
}

// Open opens the session database at path, creating it if needed. A nil
// opts means the defaults (see Options).
//
// bbolt lets one process at a time open a file. If another process holds
// it, Open waits up to Options.OpenTimeout and then fails with an error that
// names the file and wraps ErrLocked. A file that is not a bbolt database,
// or not a usersessions one, fails with ErrSchema; a damaged one with
// ErrCorrupt.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	db, err := openBolt(path, o.OpenTimeout)
	if err != nil {
		return nil, err
	}
	var customNow func() time.Time // nil: the system clock
	if opts != nil {
		customNow = opts.Now
	}
	s := &Store{
		clock:   newClock(customNow),
		db:      db,
		path:    path,
		opts:    o,
		log:     o.Logger.With("db", path),
		active:  newActivityTable(),
		writes:  make(chan *writeOp),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	if err := s.initSchema(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !o.NoCache {
		if s.cache, err = newMemCache(o.CacheBytes); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: cache: %w", path, err)
		}
	}
	go s.commitLoop()
	if s.clock.custom == nil {
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.clock.run(s.quit)
		}()
	}
	s.every(o.TouchInterval, func() {
		s.clock.reset()
		if err := s.Flush(s.bg); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Error("usersessions: flushing activity", "err", err)
		}
	})
	if o.CleanupInterval > 0 {
		s.every(o.CleanupInterval, func() {
			if n, err := s.ClearExpired(s.bg); err != nil && !errors.Is(err, ErrClosed) && s.bg.Err() == nil {
				s.log.Error("usersessions: clearing expired sessions", "err", err)
			} else if n > 0 {
				s.log.Debug("usersessions: cleared expired sessions", "count", n)
			}
		})
	}
	return s, nil
}

// errLockTimeout is lockFile's "still held by another process".
var errLockTimeout = errors.New("lock wait timed out")

// openBolt opens the bbolt file at path safely: it waits for the lock
// (exactly timeout), verifies the file's structure before bbolt reads it
// (see bolt_verify.go), and releases the file on every failure, so a
// restored copy can be opened by the same process.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	var file *os.File
	var verifyErr error
	openFile := func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, mode)
		if err != nil {
			return nil, err
		}
		if err := lockFile(f, timeout); err != nil {
			f.Close()
			if errors.Is(err, errLockTimeout) {
				return nil, bolt.ErrTimeout
			}
			return nil, err
		}
		if verifyErr = verifyBoltFile(name); verifyErr != nil {
			f.Close()
			return nil, verifyErr
		}
		file = f
		return f, nil
	}
	defer func() {
		// bbolt panics on some kinds of damage instead of returning an
		// error. Whatever happened, a failed open must not keep the file
		// (its descriptor holds the lock).
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, p)
		}
		if err != nil && file != nil {
			file.Close()
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
		return db, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("open %s: %w (gave up after %v)", path, ErrLocked, timeout)
	case errors.Is(verifyErr, errNotBolt):
		return nil, fmt.Errorf("open %s: %w: %v", path, ErrSchema, verifyErr)
	case verifyErr != nil:
		return nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, verifyErr)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, fmt.Errorf("open %s: %w: not a bbolt database (%v)", path, ErrSchema, err)
	case errors.Is(err, bolt.ErrChecksum):
		return nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, err)
	default:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// initSchema creates the buckets of a new file, or checks an existing one.
func (s *Store) initSchema() error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: the file holds other data, not usersessions", ErrSchema)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(metaSchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
				return err
			}
		}
		switch v := string(meta.Get(metaSchema)); v {
		case strconv.Itoa(schemaVersion):
		case strconv.Itoa(schemaVersionV1):
			if err := meta.Put(metaSchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: schema version %q, this package reads versions %d and %d", ErrSchema, v, schemaVersionV1, schemaVersion)
		}
		for _, name := range [][]byte{bucketSessions, bucketByUser, bucketByExpiry} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		// Expiry keys depend on IdleTimeout. If it changed since the file
		// was last opened, recompute them so cleanup stays exact.
		old := meta.Get(metaIdle)
		if s.opts.IdleTimeout < 0 {
			stored, _ := strconv.ParseInt(string(old), 10, 64)
			s.opts.IdleTimeout = time.Duration(max(stored, 0))
		}
		idle := []byte(strconv.FormatInt(int64(s.opts.IdleTimeout), 10))
		if old != nil && string(old) != string(idle) {
			if err := s.rebuildExpiryIndex(tx); err != nil {
				return err
			}
		}
		if err := meta.Put(metaIdle, idle); err != nil {
			return err
		}
		if meta.Get(metaCount) == nil {
			n := tx.Bucket(bucketSessions).Stats().KeyN
			return meta.Put(metaCount, binary.AppendVarint(nil, int64(n)))
		}
		return nil
	})
}

// rebuildExpiryIndex recomputes every expiry key for the idle timeout in
// force. A record whose header cannot be decoded keeps no entry (it is
// logged, Check names it, and deletes still remove it): one damaged record
// must not make the store unopenable.
func (s *Store) rebuildExpiryIndex(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketByExpiry); err != nil {
		return err
	}
	byExpiry, err := tx.CreateBucket(bucketByExpiry)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v, false)
		if err != nil || len(k) != idBytes {
			s.log.Error("usersessions: expiry index rebuild skips a damaged record", "key", fmt.Sprintf("%x", k), "err", err)
			return nil
		}
		return byExpiry.Put(expiryKey(r.deadline(s.opts.IdleTimeout), ID(k)), nil)
	})
}

// every runs fn every interval until Close.
func (s *Store) every(interval time.Duration, fn func()) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-s.quit:
				return
			}
		}
	}()
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Lifetime returns the absolute session lifetime in force (for cookie
// Max-Age).
func (s *Store) Lifetime() time.Duration { return s.opts.Lifetime }

// IdleTimeout returns the idle timeout in force; 0 means none.
func (s *Store) IdleTimeout() time.Duration { return s.opts.IdleTimeout }

// now returns the current time in Unix nanoseconds.
func (s *Store) now() int64 { return s.clock.now() }

func unixNano(n int64) time.Time { return time.Unix(0, n) }

// ---- reading ----

// view runs fn in a read transaction with the buckets open.
func (s *Store) view(fn func(indexes) error) error {
	return s.viewTx(func(tx *bolt.Tx) error { return fn(openIndexes(tx, s.opts.IdleTimeout)) })
}

// viewTx runs fn in a read transaction, turning a closed database into
// ErrClosed and a bbolt panic on damaged pages into ErrCorrupt. Open
// verified the file, but it can still change under a running store (an
// operator truncating or overwriting it): reading a mapped page past the
// end of a truncated file faults, which would kill the process. With
// SetPanicOnFault such a fault is a panic of this goroutine, recovered here
// like bbolt's own.
func (s *Store) viewTx(fn func(*bolt.Tx) error) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // see faultsPanic
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return s.mapErr(s.db.View(fn))
}

func (s *Store) mapErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Load returns the session that token belongs to. It fails with ErrNotFound
// for a token that is malformed, unknown, expired or revoked; a malformed one
// (wrong length, not base64url) is refused before any lookup. The caller
// owns the result: changes reach the store only through Save.
func (s *Store) Load(ctx context.Context, token string) (*Session, error) {
	if len(token) != TokenLength {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if e := s.cacheByToken(token); e != nil {
		sess, err := s.live(e.id, &e.act, e.sess.clone())
		s.countHit(token, err == nil)
		return sess, err
	}
	id, sec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	sess, err := s.load(id, &sec, token)
	if err != nil {
		return nil, err
	}
	s.loads[token[TokenLength-1]%16].n.Add(1) // a random character: spreads the stripes
	return sess, nil
}

// countHit counts a hit of the token fast path: as a hit and a load with
// one atomic add when the session loaded, else as a hit alone.
func (s *Store) countHit(token string, loaded bool) {
	i := token[TokenLength-1] % 16
	if loaded {
		s.hitLoads[i].n.Add(1)
	} else {
		s.cache.hits[i].n.Add(1)
	}
}

// LoadTouch is Load followed by Touch with the client c, in one pass: one
// token check, one look at the clock and one at the in-memory activity. It is
// what a middleware does on every request (httpx does), and the session it
// returns already shows this request's activity. Errors as for Load.
func (s *Store) LoadTouch(ctx context.Context, token string, c Client) (*Session, error) {
	if len(token) != TokenLength {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if e := s.cacheByToken(token); e != nil {
		// The common case: the session is cached and has an activity
		// entry to record this request in.
		if a := s.active.touch(e.id, &e.act, s.clock, c, s.opts.IdleTimeout); a != nil {
			sess := e.sess.clone()
			a.snapshot().overlay(sess)
			s.countHit(token, true)
			return sess, nil
		}
	}
	// The full path: a miss, the uncached mode, or no activity entry yet.
	id, sec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	sess, err := s.loadAndTouch(id, &sec, token, c)
	if err == nil {
		s.loads[token[TokenLength-1]%16].n.Add(1)
	}
	return sess, err
}

// addRetries bounds how often loadAndTouch reads a session again because a
// removal in its activity shard raced it. Each retry needs a removal in the
// same 1/1024th of the table within one read; past the bound the request's
// activity goes unrecorded rather than the request waiting.
const addRetries = 16

// loadAndTouch loads the live session id (checking the token's secret sec
// when given) and records activity c on it, creating its activity entry.
// The entry is created only if no removal (a Delete, a sign-in) came
// between the read and the creation: a late touch must never bring a
// deleted session's activity back, which would keep a revoked session
// "alive" for Touch.
func (s *Store) loadAndTouch(id ID, sec *secret, token string, c Client) (*Session, error) {
	for range addRetries {
		since := s.active.removals(id) // before the read
		sess, err := s.load(id, sec, token)
		if err != nil {
			return nil, err
		}
		if e := s.active.touch(id, nil, s.clock, c, s.opts.IdleTimeout); e != nil {
			e.snapshot().overlay(sess)
			return sess, nil
		}
		d := sess.deadline()
		now := s.clock.nowFor(d)
		if now >= d {
			return nil, ErrNotFound
		}
		if testHookBeforeActivityAdd != nil {
			testHookBeforeActivityAdd()
		}
		stored := activity{lastSeen: sess.LastSeen.UnixNano(), client: &clientInfo{ip: sess.IP, userAgent: sess.UserAgent}}
		if s.active.add(id, now, c, stored, sess.ExpiresAt.UnixNano(), since) {
			if a, ok := s.active.lookup(id); ok {
				a.overlay(sess)
			}
			return sess, nil
		}
	}
	return s.load(id, sec, token)
}

// testHookBeforeActivityAdd, when set by a test, runs between reading a
// session and adding its activity entry: the window a concurrent Delete
// must not fall into unnoticed.
var testHookBeforeActivityAdd func()

func (s *Store) cacheByToken(token string) *cacheEntry {
	if s.cache == nil {
		return nil
	}
	return s.cache.getByToken(token)
}

// Get returns the session with the public ID id (for views and admin
// tools: it needs no token and returns none). Errors as for Load.
func (s *Store) Get(ctx context.Context, id string) (*Session, error) {
	sid, ok := parseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	return s.load(sid, nil, "")
}

// load returns a caller-owned copy of the live session id, checking the
// token's secret when one is given (token is its text, for the cache).
func (s *Store) load(id ID, sec *secret, token string) (*Session, error) {
	if s.cache != nil {
		if e := s.cache.get(id); e != nil {
			if sec != nil && !e.verify(sec) {
				return nil, ErrNotFound
			}
			return s.live(id, &e.act, e.sess.clone())
		}
	}
	var gen uint64
	if s.cache != nil {
		gen = s.cache.generation(id) // before the read: see memcache.go
	}
	r, size, err := s.readRecord(id)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.log.Error("usersessions: unreadable session record", "id", id.String(), "err", err)
		}
		return nil, err
	}
	if sec != nil {
		if h := sec.hash(); subtle.ConstantTimeCompare(r.Hash[:], h[:]) != 1 {
			return nil, ErrNotFound
		}
	}
	sess := r.session(id, s.opts.IdleTimeout)
	if s.cache != nil {
		// Cached even when past its stored deadline: liveness is decided
		// by live, on every hit, with the in-memory activity applied (a busy
		// session's stored LastSeen may be older than its idle timeout).
		s.cache.put(id, gen, r.Hash, token, sess, size) // caches a copy; sess is now shared
	}
	return s.live(id, nil, sess)
}

// readRecord reads and decodes the record of id in its own read
// transaction. It is the uncached load path, so it opens the transaction by
// hand rather than through a closure (which would move the record to the
// heap) and opens only the records bucket.
func (s *Store) readRecord(id ID) (r Record, size int, err error) {
	if s.closed.Load() {
		return r, 0, ErrClosed
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return r, 0, s.mapErr(err)
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
		return r, 0, ErrNotFound
	}
	r, err = decodeRecordOf(&id, data, true)
	return r, len(data), err
}

// live overlays pending activity on sess and checks that it has not
// expired. memo is the cache entry's memo of the activity entry, or nil.
func (s *Store) live(id ID, memo *activityMemo, sess *Session) (*Session, error) {
	if e := s.active.find(id, memo); e != nil {
		e.snapshot().overlay(sess)
	}
	if d := sess.deadline(); s.clock.nowFor(d) >= d {
		return nil, ErrNotFound
	}
	return sess, nil
}

// ListByUser returns userID's active sessions, most recent activity first,
// without tokens. It reads only that user's index entries and records. An
// empty userID (anonymous) has no list.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]*Session, error) {
	if userID == "" {
		return nil, nil
	}
	var list []*Session
	now := s.now()
	err := s.view(func(ix indexes) error {
		for _, id := range ix.userIDs(userID) {
			// A damaged record or index entry must not take the user's
			// whole list down: skip it, log it, let Check report it.
			r, err := ix.get(id, true)
			if err != nil || r == nil {
				s.log.Error("usersessions: ListByUser skips a session", "user", userID, "id", id.String(),
					"err", cmp.Or(err, error(fmt.Errorf("%w: user index names a missing session", ErrCorrupt))))
				continue
			}
			sess := r.session(id, s.opts.IdleTimeout)
			if a, ok := s.active.lookup(id); ok {
				a.overlay(sess)
			}
			if sess.Active(unixNano(now)) {
				list = append(list, sess)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *Session) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// allPage is how many sessions All reads per read transaction. Paging keeps
// transactions short: a long-lived read transaction would stall writers that
// need to grow the file while the caller works on each session.
const allPage = 256

// All iterates over sessions matching f, in ID order, for admin listings.
// Sessions come without tokens, with pending activity applied. A record
// that cannot be decoded is yielded as an error wrapping ErrCorrupt, and the
// iteration goes on if the loop does. Stop early by breaking out of the loop.
func (s *Store) All(ctx context.Context, f Filter) iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		var after []byte
		if f.After != "" {
			id, ok := parseID(f.After)
			if !ok {
				yield(nil, fmt.Errorf("usersessions: bad cursor %q: %w", f.After, ErrNotFound))
				return
			}
			after = id[:]
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			page, last, err := s.allPage(f, after)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, item := range page {
				if !yield(item.sess, item.err) {
					return
				}
			}
			if last == nil {
				return
			}
			after = last
		}
	}
}

type sessionOrError struct {
	sess *Session
	err  error
}

// allPage reads up to allPage records after the key after and returns those
// that match f, and the last key read (nil at the end).
func (s *Store) allPage(f Filter, after []byte) (page []sessionOrError, last []byte, err error) {
	now := unixNano(s.now())
	err = s.view(func(ix indexes) error {
		var next func() (ID, bool)
		if f.UserID != "" {
			// Seek the user index to the cursor: each page reads only its
			// own entries, so paging through one user is linear.
			prefix := userPrefix(f.UserID)
			c := ix.byUser.Cursor()
			k, _ := c.Seek(append(prefix, after...))
			if after != nil && bytes.HasPrefix(k, prefix) && string(k[len(prefix):]) == string(after) {
				k, _ = c.Next()
			}
			next = func() (ID, bool) {
				for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
					if len(k) == len(prefix)+idBytes {
						id := ID(k[len(prefix):])
						k, _ = c.Next()
						return id, true
					}
				}
				return ID{}, false
			}
		} else {
			c := ix.sessions.Cursor()
			var k []byte
			if after == nil {
				k, _ = c.First()
			} else if k, _ = c.Seek(after); k != nil && string(k) == string(after) {
				k, _ = c.Next()
			}
			next = func() (ID, bool) {
				for k != nil && len(k) != idBytes {
					k, _ = c.Next()
				}
				if k == nil {
					return ID{}, false
				}
				id := ID(k)
				k, _ = c.Next()
				return id, true
			}
		}
		read := 0
		for read < allPage {
			id, ok := next()
			if !ok {
				last = nil
				return nil
			}
			read++
			last = id[:]
			r, err := ix.get(id, true)
			if err != nil {
				page = append(page, sessionOrError{err: fmt.Errorf("session %s: %w", id, err)})
				continue
			}
			if r == nil {
				continue
			}
			sess := r.session(id, s.opts.IdleTimeout)
			if a, ok := s.active.lookup(id); ok {
				a.overlay(sess)
			}
			if f.matches(sess, now) {
				page = append(page, sessionOrError{sess: sess})
			}
		}
		last = slices.Clone(last)
		return nil
	})
	return page, last, err
}

func (f *Filter) matches(s *Session, now time.Time) bool {
	switch {
	case f.UserID != "" && s.UserID != f.UserID,
		f.Anonymous && s.UserID != "",
		f.State == ActiveOnly && !s.Active(now),
		f.State == ExpiredOnly && s.Active(now),
		f.IPPrefix.IsValid() && !f.IPPrefix.Contains(s.IP):
		return false
	}
	if f.Search != "" {
		q := strings.ToLower(f.Search)
		ip := ""
		if s.IP.IsValid() {
			ip = s.IP.String()
		}
		return strings.Contains(strings.ToLower(s.UserID), q) || strings.Contains(ip, q)
	}
	return true
}

// Count returns the number of stored sessions, expired ones not yet cleared
// included. It is one read: the count is kept with the records.
func (s *Store) Count(ctx context.Context) (int, error) {
	n := 0
	err := s.view(func(ix indexes) error {
		n = int(ix.count())
		return nil
	})
	return n, err
}

// ---- writing ----

// Create starts a session for userID ("" for anonymous) and returns it with
// its Token set. It is durable when it returns.
func (s *Store) Create(ctx context.Context, userID string, c Client) (*Session, error) {
	now := s.now()
	id, err := newSessionID(now)
	if err != nil {
		return nil, fmt.Errorf("usersessions: random ID: %w", err)
	}
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	r := &Record{
		Hash:      sec.hash(),
		UserID:    userID,
		IP:        c.IP.Unmap(),
		UserAgent: TruncateUserAgent(c.UserAgent),
		Created:   now,
		LastSeen:  now,
		Expires:   addNanos(now, s.opts.Lifetime),
		Values: []byte{0}, // no values
	}
	var gen uint64
	if s.cache != nil {
		gen = s.cache.generation(id)
	}
	err = s.write(ctx, func(ix indexes) error {
		if ix.sessions.Get(id[:]) != nil {
			return errors.New("usersessions: session ID collision") // 2^-128: a broken RNG
		}
		return ix.put(id, nil, r)
	}, nil)
	if err != nil {
		return nil, err
	}
	s.creates.Add(1)
	sess := r.session(id, s.opts.IdleTimeout)
	token := formatToken(id, sec)
	if s.cache != nil {
		s.cache.put(id, gen, r.Hash, token, sess, len(r.UserID)+len(r.UserAgent)+64)
	}
	sess.Token = token
	return sess, nil
}

// Save writes sess's UserID and values, and records activity. The client
// (IP, UserAgent) is the Store's, recorded by Create and Touch, and so are
// the times: changes to those fields are ignored, and Save writes the
// freshest activity instead. Save fails with ErrNotFound, and writes
// nothing, when the session was deleted, revoked or expired meanwhile: it
// never brings one back. It fails with ErrConflict, and writes nothing,
// when another call changed the session's UserID after sess was loaded (a
// sign-in or sign-out by a concurrent request must not be undone); a Save
// that changes UserID itself succeeds, and so do later Saves of the same
// copy. It is durable when it returns, and a value of a type that cannot be
// stored fails with ErrUnsupportedType.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	id, ok := parseID(sess.ID)
	if !ok {
		return ErrNotFound
	}
	values, err := encodeValues(nil, sess.values)
	if err != nil {
		return fmt.Errorf("save %s: %w", sess.ID, err)
	}
	userID, identity := sess.UserID, sess.identity
	var saved Record
	var absorbed *activityEntry
	var snap activity
	err = s.write(ctx, func(ix indexes) error {
		old, err := ix.get(id, false)
		if err != nil || old == nil {
			return cmp.Or(err, ErrNotFound)
		}
		if old.Identity != identity {
			return fmt.Errorf("save %s: %w: its user changed from %q (sign-in, sign-out or another Save)", sess.ID, ErrConflict, old.UserID)
		}
		r := *old
		absorbed, snap = s.absorbActivity(id, &r)
		now := s.now()
		if r.deadline(ix.idle) <= now {
			return ErrNotFound
		}
		if userID != r.UserID {
			r.Identity++
		}
		r.UserID, r.Values = userID, values
		r.LastSeen = max(r.LastSeen, now)
		saved = r
		return ix.put(id, old, &r)
	}, func() { s.settle(id, absorbed, snap) })
	if err != nil {
		return err
	}
	s.saves.Add(1)
	sess.IP, sess.UserAgent = saved.IP, saved.UserAgent
	sess.LastSeen, sess.ExpiresAt, sess.CreatedAt = unixNano(saved.LastSeen), unixNano(saved.Expires), unixNano(saved.Created)
	sess.identity = saved.Identity
	sess.modified = false
	return nil
}

// absorbActivity applies id's in-memory activity to r, a copy of its stored
// record, so a write never persists an older LastSeen, IP or user agent
// than Load reports, and a busy session is not taken for an idle one. It
// returns the entry and what it applied, for settle.
func (s *Store) absorbActivity(id ID, r *Record) (*activityEntry, activity) {
	e := s.active.entry(id)
	if e == nil {
		return nil, activity{}
	}
	a := e.snapshot()
	a.apply(r)
	return e, a
}

// settle runs after a committed write that rewrote id's record: it kills
// cached snapshots, and notes that disk now holds the activity the write
// absorbed (a Touch since then keeps the entry dirty).
func (s *Store) settle(id ID, absorbed *activityEntry, snap activity) {
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	if absorbed != nil {
		absorbed.saved(snap)
	}
}

// Touch records activity on the session id: now as LastSeen, and the
// client's IP and user agent when they are set and changed. It is meant for
// every request, so it writes nothing itself: activity is kept in memory,
// reported by Load and ListByUser at once, and written to disk in one batch
// per TouchInterval (and on Flush and Close). It fails with ErrNotFound for
// a session that is not live.
//
// With the default clock, LastSeen has a resolution of about a millisecond:
// the load path reads a clock that a goroutine refreshes every millisecond
// while it is in use, and reads the exact one only for deadlines less than
// a minute away (see clock.go). LastSeen never moves backwards.
func (s *Store) Touch(ctx context.Context, id string, c Client) error {
	sid, ok := parseID(id)
	if !ok {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.active.touch(sid, nil, s.clock, c, s.opts.IdleTimeout) != nil {
		return nil
	}
	// No recent activity in memory: start from the stored state.
	_, err := s.loadAndTouch(sid, nil, "", c)
	return err
}

// Rotate gives the session of token a new token and returns the session
// with it. The old token is dead when Rotate returns; the ID, the values and
// the lifetime stay. Use it whenever privileges change, such as at login, so
// a token planted before (session fixation) is worthless.
func (s *Store) Rotate(ctx context.Context, token string) (*Session, error) {
	return s.rotate(ctx, token, nil)
}

// RotateUser is Rotate plus binding the session to userID in the same
// durable write, with the lifetime restarted from now: a sign-in. Use it at
// login.
func (s *Store) RotateUser(ctx context.Context, token, userID string) (*Session, error) {
	return s.rotate(ctx, token, &userID)
}

func (s *Store) rotate(ctx context.Context, token string, userID *string) (*Session, error) {
	id, oldSec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	oldHash := oldSec.hash()
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	var rotated Record
	var absorbed *activityEntry
	var snap activity
	err = s.write(ctx, func(ix indexes) error {
		old, err := ix.get(id, true)
		if err != nil || old == nil {
			return cmp.Or(err, ErrNotFound)
		}
		if subtle.ConstantTimeCompare(old.Hash[:], oldHash[:]) != 1 {
			return ErrNotFound
		}
		r := *old
		absorbed, snap = s.absorbActivity(id, &r)
		now := s.now()
		if r.deadline(ix.idle) <= now {
			return ErrNotFound
		}
		r.Hash = sec.hash()
		if userID != nil {
			r.UserID = *userID
			r.Identity++
			r.Created, r.LastSeen, r.Expires = now, now, addNanos(now, s.opts.Lifetime)
		}
		rotated = r
		return ix.put(id, old, &r)
	}, func() {
		s.settle(id, absorbed, snap)
		if userID != nil {
			// The lifetime restarted: drop the in-memory entry, which holds
			// the old deadline (disk now has its activity).
			s.active.remove(id)
		}
	})
	if err != nil {
		return nil, err
	}
	sess := rotated.session(id, s.opts.IdleTimeout)
	sess.Token = formatToken(id, sec)
	return sess, nil
}

// Delete ends the session id. It returns nil when a session was removed
// (even an expired one) and ErrNotFound when there was none.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.deleteOne(ctx, id, nil)
}

// DeleteForUser ends the session id only if it belongs to userID, checked
// in the same transaction. Another user's session, like a missing one, is
// ErrNotFound: use it wherever a user names a session to end.
func (s *Store) DeleteForUser(ctx context.Context, userID, id string) error {
	return s.deleteOne(ctx, id, &userID)
}

func (s *Store) deleteOne(ctx context.Context, id string, owner *string) error {
	sid, ok := parseID(id)
	if !ok {
		return ErrNotFound
	}
	err := s.write(ctx, func(ix indexes) error {
		r, err := ix.get(sid, false)
		if err != nil {
			// A damaged record still ends: the user index decides whose
			// it is (see removeDamaged).
			if owner != nil && ix.byUser.Get(userKey(*owner, sid)) == nil {
				return ErrNotFound
			}
			s.log.Error("usersessions: removing a damaged session record", "id", sid.String(), "err", err)
			return ix.removeDamaged(sid)
		}
		if r == nil || owner != nil && r.UserID != *owner {
			return ErrNotFound
		}
		return ix.remove(sid, r)
	}, func() { s.forget(sid) })
	if err == nil {
		s.deletes.Add(1)
	}
	return err
}

// DeleteByUser ends every session of userID except keepID ("" keeps none):
// "log out everywhere" or "end all other sessions". It reads only that
// user's index entries, and returns how many sessions it removed. An empty
// userID removes nothing.
func (s *Store) DeleteByUser(ctx context.Context, userID, keepID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	var removed []ID
	err := s.write(ctx, func(ix indexes) error {
		removed = removed[:0] // the op may run twice (see runBatch)
		for _, id := range ix.userIDs(userID) {
			if id.String() == keepID {
				continue
			}
			r, err := ix.get(id, false)
			if err != nil { // damaged: revocation must still happen
				s.log.Error("usersessions: removing a damaged session record", "user", userID, "id", id.String(), "err", err)
				if err := ix.removeDamaged(id); err != nil {
					return err
				}
				removed = append(removed, id)
				continue
			}
			if r == nil {
				// A dangling index entry: drop it rather than fail.
				if err := ix.byUser.Delete(userKey(userID, id)); err != nil {
					return err
				}
				continue
			}
			if err := ix.remove(id, r); err != nil {
				return err
			}
			removed = append(removed, id)
		}
		return nil
	}, func() {
		for _, id := range removed {
			s.forget(id)
		}
	})
	if err != nil {
		return 0, err
	}
	s.deletes.Add(uint64(len(removed)))
	return len(removed), nil
}

// forget drops every in-memory trace of id after a committed write.
func (s *Store) forget(id ID) {
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	s.active.remove(id)
}

// clearBatch bounds how many sessions one cleanup transaction removes, so
// cleanup never holds the writer lock for long.
const clearBatch = 1000

// ClearExpired removes the sessions that are past their deadline, with their
// index entries, and returns how many. It walks the expiry index from the
// front and stops at the first deadline in the future, so it touches only
// what has expired. Pending activity is flushed first so idle deadlines are
// current. A record that cannot be decoded is left in place and logged.
func (s *Store) ClearExpired(ctx context.Context) (int, error) {
	if err := s.Flush(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if due, err := s.expiryDue(); err != nil || !due {
			return total, err // nothing to remove: no write transaction
		}
		var removed []ID
		more := false
		err := s.update(func(tx *bolt.Tx) error {
			removed = removed[:0]
			ix := openIndexes(tx, s.opts.IdleTimeout)
			now := s.now()
			type victim struct {
				id      ID
				r       *Record
				damaged bool
			}
			var victims []victim
			var stale [][]byte
			c := ix.byExpiry.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				dl, id, ok := splitExpiryKey(k)
				if ok && dl > max(now, 0) { // keys clamp at 0: see expiryKey
					break
				}
				if len(victims)+len(stale) >= clearBatch {
					more = true
					break
				}
				if !ok { // points nowhere; Check reports it until it goes
					s.log.Error("usersessions: cleanup drops a malformed expiry index key", "key", fmt.Sprintf("%x", k))
					stale = append(stale, slices.Clone(k))
					continue
				}
				if a, ok := s.active.lookup(id); ok && ix.idle > 0 && addNanos(a.lastSeen, ix.idle) > now {
					continue // activity since the flush: the next flush moves it
				}
				r, err := ix.get(id, false)
				switch {
				case err != nil:
					// Due by its index entry, written while it was whole.
					s.log.Error("usersessions: cleanup removes a damaged session record", "id", id.String(), "err", err)
					victims = append(victims, victim{id: id, damaged: true})
				case r == nil || max(r.deadline(ix.idle), 0) != dl:
					// An entry that disagrees with its record (Check
					// reports these): drop it; put() re-adds a right one.
					stale = append(stale, slices.Clone(k))
					if r != nil {
						victims = append(victims, victim{id: id})
					}
				case r.deadline(ix.idle) <= now:
					victims = append(victims, victim{id: id, r: r})
				}
			}
			for _, k := range stale {
				if err := ix.byExpiry.Delete(k); err != nil {
					return err
				}
			}
			for _, v := range victims {
				if v.damaged {
					if err := ix.removeDamaged(v.id); err != nil {
						return err
					}
					removed = append(removed, v.id)
					continue
				}
				if v.r == nil { // re-index a record whose entry was wrong
					r, err := ix.get(v.id, false)
					if err != nil {
						return err
					}
					if err := ix.byExpiry.Put(expiryKey(r.deadline(ix.idle), v.id), nil); err != nil {
						return err
					}
					continue
				}
				if err := ix.remove(v.id, v.r); err != nil {
					return err
				}
				removed = append(removed, v.id)
			}
			return ix.saveCount()
		})
		if err != nil {
			return total, err
		}
		for _, id := range removed {
			s.forget(id)
		}
		total += len(removed)
		s.deletes.Add(uint64(len(removed)))
		if !more {
			return total, nil
		}
	}
}

// expiryDue reports whether the expiry index's first entry is due (or
// malformed), so ClearExpired with nothing to do costs a read, not a
// durable write.
func (s *Store) expiryDue() (due bool, err error) {
	err = s.view(func(ix indexes) error {
		k, _ := ix.byExpiry.Cursor().First()
		dl, _, ok := splitExpiryKey(k)
		due = k != nil && (!ok || dl <= max(s.now(), 0))
		return nil
	})
	return due, err
}

// Flush writes pending activity (from Touch) to disk now. The Store does
// this by itself every TouchInterval and on Close.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if pending := s.active.pending(); len(pending) > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			ix := openIndexes(tx, s.opts.IdleTimeout)
			for _, p := range pending {
				old, err := ix.get(p.id, false)
				if err != nil {
					s.log.Error("usersessions: flush skips unreadable record", "id", p.id.String(), "err", err)
					continue
				}
				if old == nil {
					continue // deleted meanwhile: never resurrect
				}
				r := *old
				p.snap.apply(&r)
				if err := ix.put(p.id, old, &r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.flushes.Add(1)
		for _, p := range pending {
			p.e.saved(p.snap)
		}
	}
	// Entries idle for two intervals leave memory. Cached snapshots of their
	// sessions may predate what the flushes wrote, and no overlay covers
	// them any more: drop those too.
	now := s.now()
	for _, id := range s.active.sweep(addNanos(now, -2*min(s.opts.TouchInterval, math.MaxInt64/2)), now) {
		if s.cache != nil {
			s.cache.invalidate(id)
		}
	}
	return nil
}

// update runs fn in its own durable write transaction, mapping errors and
// panics like view.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // see viewTx
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	err = s.db.Update(fn)
	if err == nil {
		s.commits.Add(1)
	}
	return s.mapErr(err)
}

// ---- group commit ----

// A writeOp is one logical write waiting for the committer.
type writeOp struct {
	fn    func(indexes) error
	after func() // runs once the write is durable, before the caller resumes
	err   error
	done  chan struct{}
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 256

// write hands fn to the group committer and waits until it is durable.
//
// Every durable write costs an fsync, which takes far longer than the write
// itself. The committer runs one transaction at a time; writes that arrive
// while it is busy queue up and then share the next transaction and its one
// fsync. So a lone writer pays no added delay (unlike bbolt's Batch, which
// waits on a timer), and throughput grows with the number of writers.
func (s *Store) write(ctx context.Context, fn func(indexes) error, after func()) error {
	if s.closed.Load() {
		return ErrClosed
	}
	op := &writeOp{fn: fn, after: after, done: make(chan struct{})}
	select {
	case s.writes <- op:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-op.done // accepted: the outcome is decided by the committer, not ctx
	return op.err
}

func (s *Store) commitLoop() {
	defer close(s.stopped)
	batch := make([]*writeOp, 0, maxBatch)
	for {
		select {
		case op := <-s.writes:
			batch = append(batch[:0], op)
		case <-s.quit:
			return
		}
		// Writers woken by the last commit are about to queue again: let
		// them run first, so they join this batch instead of the next.
		runtime.Gosched()
	gather:
		for len(batch) < maxBatch {
			select {
			case op := <-s.writes:
				batch = append(batch, op)
			default:
				break gather
			}
		}
		s.runBatch(batch)
	}
}

// runBatch commits ops in one transaction. If any op fails, the transaction
// is rolled back and each op runs again alone, so one failing write cannot
// take the others down with it, and no partial write is ever committed.
func (s *Store) runBatch(ops []*writeOp) {
	err := s.update(func(tx *bolt.Tx) error {
		ix := openIndexes(tx, s.opts.IdleTimeout)
		for _, op := range ops {
			if err := op.fn(ix); err != nil {
				return err
			}
		}
		return ix.saveCount()
	})
	if err != nil && len(ops) > 1 {
		for _, op := range ops {
			s.runBatch([]*writeOp{op})
		}
		return
	}
	for _, op := range ops {
		if err == nil && op.after != nil {
			op.after()
		}
		op.err = err
		close(op.done)
	}
}

// ---- lifecycle and checks ----

// Stats returns counters since Open.
func (s *Store) Stats() Stats {
	st := Stats{
		Loads:          sumCounters(&s.loads) + sumCounters(&s.hitLoads),
		Creates:        s.creates.Load(),
		Saves:          s.saves.Load(),
		Deletes:        s.deletes.Load(),
		Commits:        s.commits.Load(),
		Flushes:        s.flushes.Load(),
		PendingTouches: s.active.dirtyCount(),
		Cached:         s.cache != nil,
	}
	if s.cache != nil {
		st.Hits, st.Misses = s.cache.counts()
		st.Hits += sumCounters(&s.hitLoads)
		if total := st.Hits + st.Misses; total > 0 {
			st.HitRatio = float64(st.Hits) / float64(total)
		}
	}
	return st
}

// Close flushes pending activity, waits for writes in flight, and closes
// the file. Every later call returns ErrClosed; closing twice is harmless.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	close(s.quit) // stops the loops and refuses new writes
	s.stopBg()    // and cuts a long cleanup short
	s.loops.Wait()
	<-s.stopped
	flushErr := s.Flush(context.Background())
	s.closed.Store(true)
	if s.cache != nil {
		s.cache.close()
	}
	// bbolt's Close waits for read transactions still running.
	if err := s.db.Close(); err != nil {
		return errors.Join(flushErr, err)
	}
	return flushErr
}

// Check verifies that the indexes and the records agree: every record
// decodes, has exactly its user-index entry and its expiry-index entry at the
// deadline its fields give, and every index entry points at such a record.
// It reads the whole file in one transaction; the problems it finds are
// returned joined, each wrapping ErrCorrupt.
func (s *Store) Check(ctx context.Context) error {
	var problems []error
	report := func(format string, args ...any) {
		if len(problems) < 100 {
			problems = append(problems, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
		}
	}
	err := s.view(func(ix indexes) error {
		records := make(map[ID]*Record)
		err := ix.sessions.ForEach(func(k, v []byte) error {
			if len(k) != idBytes {
				report("record key %x has the wrong length", k)
				return nil
			}
			r, err := decodeRecord(v, true)
			if err != nil {
				report("session %s: %v", ID(k), err)
				return nil
			}
			records[ID(k)] = &r
			return ctx.Err()
		})
		if err != nil {
			return err
		}
		users := make(map[ID]bool)
		ix.byUser.ForEach(func(k, _ []byte) error {
			user, id, ok := splitUserKey(k)
			switch r := records[id]; {
			case !ok:
				report("malformed user index key %x", k)
			case r == nil:
				report("user index: %q -> missing session %s", user, id)
			case r.UserID != user:
				report("user index: %q -> session %s of user %q", user, id, r.UserID)
			case users[id]:
				report("user index: session %s listed twice", id)
			default:
				users[id] = true
			}
			return nil
		})
		expiries := make(map[ID]bool)
		ix.byExpiry.ForEach(func(k, _ []byte) error {
			dl, id, ok := splitExpiryKey(k)
			switch r := records[id]; {
			case !ok:
				report("malformed expiry index key %x", k)
			case r == nil:
				report("expiry index: missing session %s", id)
			case max(r.deadline(ix.idle), 0) != dl:
				report("expiry index: session %s at %v, its deadline is %v", id, unixNano(dl), unixNano(r.deadline(ix.idle)))
			case expiries[id]:
				report("expiry index: session %s listed twice", id)
			default:
				expiries[id] = true
			}
			return nil
		})
		if n, stored := ix.sessions.Stats().KeyN, ix.count(); int64(n) != stored {
			report("the stored count is %d, the sessions bucket holds %d", stored, n)
		}
		for id, r := range records {
			if r.UserID != "" && !users[id] {
				report("session %s of user %q is missing from the user index", id, r.UserID)
			}
			if !expiries[id] {
				report("session %s is missing from the expiry index", id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(problems...)
}

// String describes the store for logs.
func (s *Store) String() string {
	mode := "cached"
	if s.cache == nil {
		mode = "uncached"
	}
	return fmt.Sprintf("usersessions.Store(%s, %s)", s.path, mode)
}
