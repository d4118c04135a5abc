package usersessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Store holds sessions: the rules of this package (tokens and their hashes,
// the cache, in-memory activity, deadlines, values) over a Backend that
// keeps them. It is safe for concurrent use. Create it with Open (the
// embedded bbolt file) or NewStore (any Backend), and Close it when done.
type Store struct {
	b      Backend
	getter recordGetter // b's own load path, or nil: see get
	shared bool         // b is a SharedBackend: other instances write too
	name   string       // for errors and logs: the file, or the backend
	opts   Options
	log    *slog.Logger
	cache  *memCache // nil in uncached mode
	active *activityTable

	quit    chan struct{} // closed by Close: stops the loops
	bg      context.Context
	stopBg  context.CancelFunc
	loops   sync.WaitGroup
	closed  atomic.Bool
	closeMu sync.Mutex

	clock   *clock
	privacy bool // Options.Privacy changes clients: see private

	// Striped: Load runs in parallel. A Load served by the token fast path
	// counts in hitLoads alone, as a load and a cache hit.
	loads, hitLoads                  [16]paddedCounter
	creates, saves, deletes, flushes atomic.Uint64
}

// Open opens the session database at path, creating it if needed: a Store
// on the embedded bbolt backend. A nil opts means the defaults (see
// Options).
//
// bbolt lets one process at a time open a file. If another process holds
// it, Open waits up to Options.OpenTimeout and then fails with an error that
// names the file and wraps ErrLocked. A file that is not a bbolt database,
// or not a usersessions one, fails with ErrSchema; a damaged one with
// ErrCorrupt. A failed Open releases the file.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	b, err := openBoltBackend(path, o.OpenTimeout)
	if err != nil {
		return nil, err
	}
	s, err := newStore(b, opts, path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// NewStore returns a Store over the Backend b, which it owns from now on:
// Close closes b, and so does a failed NewStore. Use it for a backend other
// than the embedded file, such as pgstore's PostgreSQL one:
//
//	b, err := pgstore.Open(ctx, "postgres://app@db/app", nil)
//	store, err := usersessions.NewStore(b, nil)
//
// On a SharedBackend the Store subscribes to the other instances' changes
// before it returns, and drops what they change from its cache.
func NewStore(b Backend, opts *Options) (*Store, error) {
	if b == nil {
		return nil, errors.New("usersessions: NewStore: nil Backend")
	}
	name := fmt.Sprintf("%T", b)
	if str, ok := b.(fmt.Stringer); ok {
		name = str.String() // "postgres table usersessions"
	}
	return newStore(b, opts, name)
}

// newStore builds the Store over b, opens b and starts the background
// loops. On any error it closes b and returns the error.
func newStore(b Backend, opts *Options, name string) (*Store, error) {
	o := opts.withDefaults()
	var customNow func() time.Time // nil: the system clock
	if opts != nil {
		customNow = opts.Now
	}
	s := &Store{
		b:      b,
		name:   name,
		opts:   o,
		log:    o.Logger.With("db", name),
		clock:  newClock(customNow),
		active: newActivityTable(),
		quit:   make(chan struct{}),
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	if err := s.connect(); err != nil {
		if s.cache != nil {
			s.cache.close()
		}
		s.stopBg()
		b.Close()
		return nil, err
	}
	s.startLoops()
	return s, nil
}

// connect validates the privacy options, opens the Backend (which settles
// the idle timeout in force), builds the cache and, on a shared Backend,
// subscribes to its change notices so the cache stays coherent.
func (s *Store) connect() error {
	o := s.opts
	if err := o.Privacy.validate(); err != nil {
		return err
	}
	s.privacy = o.Privacy.active()
	idle, err := s.b.Open(s.bg, o.IdleTimeout, s.log)
	if err != nil {
		return err
	}
	s.opts.IdleTimeout = idle
	s.getter, _ = s.b.(recordGetter)
	if !o.NoCache && !o.StrictRevocation {
		if s.cache, err = newMemCache(o.CacheBytes); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	if sb, ok := s.b.(backend.SharedBackend); ok {
		s.shared = true
		return sb.Subscribe(s.bg, storeFeed{s})
	}
	return nil
}

// startLoops starts the background work that runs until Close: the coarse
// clock (unless Options.Now replaces it), the activity flush and, if
// enabled, the cleanup of expired sessions.
func (s *Store) startLoops() {
	o := s.opts
	if s.clock.custom == nil {
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.clock.run(s.quit)
		}()
	}
	s.every(o.TouchInterval, func() {
		s.clock.reset()
		if err := s.Flush(s.bg); err != nil && !errors.Is(err, ErrClosed) && s.bg.Err() == nil {
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

// Path returns the database file's path, or for a Store made by NewStore
// the Backend's String (its type when it has none).
func (s *Store) Path() string { return s.name }

// Backend returns the Store's Backend, for tools that need what only it
// offers (the bbolt file's compaction, say). Use the Store for sessions.
func (s *Store) Backend() Backend { return s.b }

// Lifetime returns the absolute session lifetime in force (for cookie
// Max-Age).
func (s *Store) Lifetime() time.Duration { return s.opts.Lifetime }

// IdleTimeout returns the idle timeout in force; 0 means none.
func (s *Store) IdleTimeout() time.Duration { return s.opts.IdleTimeout }

// now returns the current time in Unix nanoseconds.
func (s *Store) now() int64 { return s.clock.now() }

func unixNano(n int64) time.Time { return time.Unix(0, n) }

// ---- change notices from other instances ----

// storeFeed is the Store's side of a SharedBackend's change feed. It is a
// separate type so that its methods stay off the Store's API.
type storeFeed struct{ s *Store }

// Changed drops what the Store holds of sessions another instance changed:
// cached snapshots (bumping their generations, as a local write does) and
// activity entries, so neither a cache hit nor a Touch outlives a
// revocation made elsewhere. Unwritten activity of such a session (at most
// one TouchInterval of LastSeen) is dropped with it.
func (f storeFeed) Changed(ids []backend.ID) {
	for _, id := range ids {
		f.s.forget(id)
	}
}

// Lost stops every cache hit at once: the cache's epoch moves on, and
// until Restored every load asks the Backend.
func (f storeFeed) Lost() {
	if f.s.cache != nil {
		f.s.cache.distrust()
	}
}

// Restored trusts the cache again, from an empty start: whatever was cached
// before may have changed while notices were missed. Activity entries go
// too (after a flush), since their sessions may have been deleted meanwhile.
func (f storeFeed) Restored() {
	s := f.s
	if err := s.Flush(s.bg); err != nil && s.bg.Err() == nil {
		s.log.Error("usersessions: flushing activity after the change feed returned", "err", err)
	}
	s.active.clear()
	if s.cache != nil {
		s.cache.trust()
	}
}

// Count returns the number of stored sessions, expired ones not yet cleared
// included. On the embedded backend it is one read: the count is kept with
// the records.
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.b.Count(ctx)
	return n, s.closedErr(err)
}

// ---- lifecycle and checks ----

// Stats returns counters since the Store was opened.
func (s *Store) Stats() Stats {
	st := Stats{
		Loads:          sumCounters(&s.loads) + sumCounters(&s.hitLoads),
		Creates:        s.creates.Load(),
		Saves:          s.saves.Load(),
		Deletes:        s.deletes.Load(),
		Flushes:        s.flushes.Load(),
		PendingTouches: s.active.dirtyCount(),
		Cached:         s.cache != nil,
	}
	if c, ok := s.b.(backend.Committer); ok {
		st.Commits = c.Commits()
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
// the Backend. Every later call returns ErrClosed; closing twice is
// harmless.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	close(s.quit) // stops the loops
	s.stopBg()    // and cuts a long cleanup short
	s.loops.Wait()
	flushErr := s.Flush(context.Background())
	s.closed.Store(true)
	err := s.b.Close()
	if s.cache != nil {
		s.cache.close()
	}
	return errors.Join(flushErr, err)
}

// Check verifies that the Backend's indexes and records agree (on the
// embedded backend: every record decodes, has exactly its user-index entry
// and its expiry-index entry at the deadline its fields give, and every
// index entry points at such a record). The problems it finds are returned
// joined, each wrapping ErrCorrupt.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.closedErr(s.b.Check(ctx))
}

// String describes the store for logs.
func (s *Store) String() string {
	mode := "cached"
	if s.cache == nil {
		mode = "uncached"
	}
	return fmt.Sprintf("usersessions.Store(%s, %s)", s.name, mode)
}

// Backup writes a consistent copy of the whole database to w while the
// Store keeps serving, and returns the bytes written. The embedded backend
// copies the file from one read transaction (bbolt's Tx.WriteTo) into a
// temporary file, private and unlinked at once, beside the database (or
// in os.TempDir), and writes w from there: a slow w holds up no write of
// the app, and the backup needs free space for one copy of the file. The
// copy opens as an equal store. Other backends return ErrNotSupported: use
// the database's own tools (pg_dump).
func (s *Store) Backup(w io.Writer) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	wt, ok := s.b.(io.WriterTo)
	if !ok {
		return 0, ErrNotSupported
	}
	n, err := wt.WriteTo(w)
	return n, s.closedErr(err)
}

// Stats are counters since Open.
type Stats struct {
	Hits, Misses   uint64  // cache hits and misses of Load
	HitRatio       float64 // Hits / (Hits + Misses), 0 when there were none
	Loads          uint64  // successful Loads
	Creates        uint64
	Saves          uint64
	Deletes        uint64 // sessions removed by End, EndForUser, EndUser, eviction and ClearExpired
	Commits        uint64 // durable write transactions
	PendingTouches int    // sessions with activity not yet written to disk
	Flushes        uint64 // activity flush transactions
	Cached         bool   // the Store runs in cached mode
}
