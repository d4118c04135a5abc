package usersessions

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"slices"
	"strings"
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
	fail := func(err error) (*Store, error) {
		s.stopBg()
		b.Close()
		return nil, err
	}
	if err := o.Privacy.validate(); err != nil {
		return fail(err)
	}
	s.privacy = o.Privacy.active()
	idle, err := b.Open(s.bg, o.IdleTimeout, s.log)
	if err != nil {
		return fail(err)
	}
	s.opts.IdleTimeout = idle
	s.getter, _ = b.(recordGetter)
	if !o.NoCache && !o.StrictRevocation {
		if s.cache, err = newMemCache(o.CacheBytes); err != nil {
			return fail(fmt.Errorf("cache: %w", err))
		}
	}
	if sb, ok := b.(backend.SharedBackend); ok {
		s.shared = true
		if err := sb.Subscribe(s.bg, storeFeed{s}); err != nil {
			if s.cache != nil {
				s.cache.close()
			}
			return fail(err)
		}
	}
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
	return s, nil
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

// ---- reading ----

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
		if err == nil || !s.shared {
			s.countHit(token, err == nil)
			return sess, err
		}
		// A shared backend: another instance may have seen activity
		// this one has not. Ask the backend before calling it idle.
	}
	id, sec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	sess, err := s.load(ctx, id, &sec, token)
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
	if s.privacy {
		c = s.private(c)
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
	sess, err := s.loadAndTouch(ctx, id, &sec, token, c)
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
// The entry is created only if no removal (an End, a sign-in) came
// between the read and the creation: a late touch must never bring a
// deleted session's activity back, which would keep a revoked session
// "alive" for Touch.
func (s *Store) loadAndTouch(ctx context.Context, id backend.ID, sec *secret, token string, c Client) (*Session, error) {
	for range addRetries {
		since := s.active.removals(id) // before the read
		sess, err := s.load(ctx, id, sec, token)
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
	return s.load(ctx, id, sec, token)
}

// testHookBeforeActivityAdd, when set by a test, runs between reading a
// session and adding its activity entry: the window a concurrent End
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
	sid, ok := backend.ParseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.load(ctx, sid, nil, "")
}

// load returns a caller-owned copy of the live session id, checking the
// token's secret when one is given (token is its text, for the cache).
func (s *Store) load(ctx context.Context, id backend.ID, sec *secret, token string) (*Session, error) {
	if s.cache != nil {
		if e := s.cache.get(id); e != nil {
			if sec != nil && !e.verify(sec) {
				return nil, ErrNotFound
			}
			sess, err := s.live(id, &e.act, e.sess.clone())
			if err == nil || !s.shared {
				return sess, err
			}
			// Maybe active on another instance: read what it wrote.
		}
	}
	var t ticket
	if s.cache != nil {
		t = s.cache.ticket(id) // before the read: see memcache.go
	}
	var r record
	if err := s.get(ctx, id, &r); err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.log.Error("usersessions: unreadable session record", "id", id.String(), "err", err)
		}
		return nil, s.closedErr(err)
	}
	if sec != nil {
		if h := sec.hash(); subtle.ConstantTimeCompare(r.Hash[:], h[:]) != 1 {
			return nil, ErrNotFound
		}
	}
	if err := s.decode(&r); err != nil {
		s.log.Error("usersessions: unreadable session values", "id", id.String(), "err", err)
		return nil, err
	}
	sess := r.session(s.opts.IdleTimeout)
	if s.cache != nil {
		// Cached even when past its stored deadline: liveness is decided
		// by live, on every hit, with the in-memory activity applied (a busy
		// session's stored LastSeen may be older than its idle timeout).
		size := len(r.UserID) + len(r.UserAgent) + len(r.Values) + 64
		s.cache.put(id, t, r.Hash, token, sess, size) // caches a copy; sess is now shared
	}
	return s.live(id, nil, sess)
}

// recordGetter is the embedded backend's load path: it decodes straight
// into a record, values and ID text included, which a backend.Record
// cannot carry. A Store uses it when its Backend has it.
type recordGetter interface {
	getRecord(ctx context.Context, id backend.ID, r *record, values bool) error
}

// get reads the record of id, values included (decoded unless the Backend
// left them encoded: see decode).
func (s *Store) get(ctx context.Context, id backend.ID, r *record) error {
	if s.getter != nil {
		return s.getter.getRecord(ctx, id, r, true)
	}
	return s.b.Get(ctx, id, &r.Record, true)
}

// closedErr maps a Backend's error after Close to ErrClosed.
func (s *Store) closedErr(err error) error {
	if s.closed.Load() && !errors.Is(err, ErrNotFound) {
		return ErrClosed
	}
	return err
}

// live overlays pending activity on sess and checks that it has not
// expired. memo is the cache entry's memo of the activity entry, or nil.
func (s *Store) live(id backend.ID, memo *activityMemo, sess *Session) (*Session, error) {
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
// empty userID (anonymous) has no list. userID is taken as SanitizeText
// makes it, as it was when stored.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]*Session, error) {
	if userID == "" {
		return nil, nil
	}
	userID = SanitizeText(userID)
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var list []*Session
	now := unixNano(s.now())
	err := s.b.ListByUser(ctx, userID, func(r *backend.Record, err error) {
		// A damaged record or index entry must not take the user's
		// whole list down: skip it, log it, let Check report it.
		var sess *Session
		if err == nil {
			sess, err = s.view(r)
		}
		if err != nil {
			s.log.Error("usersessions: ListByUser skips a session", "user", userID, "err", err)
			return
		}
		if a, ok := s.active.lookup(r.ID); ok {
			a.overlay(sess)
		}
		if sess.Active(now) {
			list = append(list, sess)
		}
	})
	if err != nil {
		return nil, s.closedErr(err)
	}
	slices.SortFunc(list, func(a, b *Session) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// decode decodes r's values if the Backend left them encoded.
func (s *Store) decode(r *record) error {
	if r.decoded != nil || len(r.Values) <= 1 {
		return nil
	}
	var err error
	r.decoded, err = decodeValues(r.Values)
	if err != nil {
		return fmt.Errorf("session %s: %w", r.ID, err)
	}
	return nil
}

// allPage is how many sessions All reads per Backend call. Paging keeps
// transactions short: a long-lived read transaction would stall writers that
// need to grow the file while the caller works on each session.
const allPage = 256

// All iterates over sessions matching f, in ID order, for admin listings.
// Sessions come without tokens, with pending activity applied. A record
// that cannot be decoded is yielded as an error wrapping ErrCorrupt, and the
// iteration goes on if the loop does. Stop early by breaking out of the loop.
func (s *Store) All(ctx context.Context, f Filter) iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		var after backend.ID
		if f.After != "" {
			id, ok := backend.ParseID(f.After)
			if !ok {
				yield(nil, fmt.Errorf("usersessions: bad cursor %q: %w", f.After, ErrNotFound))
				return
			}
			after = id
		}
		f.UserID, f.Search = SanitizeText(f.UserID), SanitizeText(f.Search) // as stored
		scan := backend.ScanFilter{UserID: f.UserID, Anonymous: f.Anonymous, IPPrefix: f.IPPrefix}
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if s.closed.Load() {
				yield(nil, ErrClosed)
				return
			}
			var page []sessionOrError
			now := unixNano(s.now())
			last, done, err := s.b.Scan(ctx, scan, after, allPage, func(r *backend.Record, err error) {
				var sess *Session
				if err == nil {
					sess, err = s.view(r)
				}
				if err != nil {
					page = append(page, sessionOrError{err: err})
					return
				}
				if a, ok := s.active.lookup(r.ID); ok {
					a.overlay(sess)
				}
				if f.matches(sess, now) {
					page = append(page, sessionOrError{sess: sess})
				}
			})
			if err != nil {
				yield(nil, s.closedErr(err))
				return
			}
			for _, item := range page {
				if !yield(item.sess, item.err) {
					return
				}
			}
			if done {
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
// included. On the embedded backend it is one read: the count is kept with
// the records.
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.b.Count(ctx)
	return n, s.closedErr(err)
}

// ---- writing ----

// Create starts a session for userID ("" for anonymous) and returns it with
// its Token set. It is durable when it returns. The user ID and the user
// agent are kept as SanitizeText makes them.
func (s *Store) Create(ctx context.Context, userID string, c Client) (*Session, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	userID = SanitizeText(userID)
	now := s.now()
	id, err := newSessionID(now)
	if err != nil {
		return nil, fmt.Errorf("usersessions: random ID: %w", err)
	}
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	c = s.private(c)
	r := &backend.Record{
		ID:        id,
		Hash:      sec.hash(),
		UserID:    userID,
		IP:        c.IP.Unmap(),
		UserAgent: storedUserAgent(c.UserAgent),
		Created:   now,
		LastSeen:  now,
		Expires:   backend.AddNanos(now, s.opts.Lifetime),
		Values:    []byte{0}, // no values
	}
	var t ticket
	if s.cache != nil {
		t = s.cache.ticket(id)
	}
	var limit *backend.UserLimit
	if userID != "" {
		limit = s.limit(id)
	}
	evicted, err := s.b.Create(ctx, r, limit)
	if err != nil {
		return nil, s.closedErr(err)
	}
	s.creates.Add(1)
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	sess := s.sessionOf(r)
	token := formatToken(id, sec)
	if s.cache != nil {
		s.cache.put(id, t, r.Hash, token, sess, len(r.UserID)+len(r.UserAgent)+64)
	}
	sess.Token = token
	s.created(ctx, sess, now)
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
// stored fails with ErrUnsupportedType. UserID is kept as SanitizeText makes
// it, and sess shows what was kept.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	id, ok := backend.ParseID(sess.ID)
	if !ok {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	values, err := encodeValues(nil, sess.values)
	if err != nil {
		return fmt.Errorf("save %s: %w", sess.ID, err)
	}
	userID, identity := SanitizeText(sess.UserID), sess.identity
	var saved backend.Record
	var at int64 // when the write that commits ran: a sign-in's moment
	var absorbed *activityEntry
	var snap activity
	evicted, err := s.b.Update(ctx, id, func(r *backend.Record) error {
		if r.Identity != identity {
			return fmt.Errorf("save %s: %w: its user changed from %q (sign-in, sign-out or another Save)", sess.ID, ErrConflict, r.UserID)
		}
		absorbed, snap = s.absorbActivity(id, r)
		now := s.now()
		if r.Deadline(s.opts.IdleTimeout) <= now {
			return ErrNotFound
		}
		at = now
		if userID != r.UserID {
			r.Identity++
		}
		r.UserID, r.Values = userID, values
		r.LastSeen = max(r.LastSeen, now)
		saved = *r
		return nil
	}, s.limit(id))
	if err != nil {
		return s.closedErr(err)
	}
	s.settle(id, absorbed, snap)
	s.saves.Add(1)
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	sess.UserID, sess.IP, sess.UserAgent = saved.UserID, saved.IP, saved.UserAgent
	sess.LastSeen, sess.ExpiresAt, sess.CreatedAt = unixNano(saved.LastSeen), unixNano(saved.Expires), unixNano(saved.Created)
	signedIn := sess.identity != saved.Identity && saved.UserID != ""
	sess.identity = saved.Identity
	sess.modified = false
	if signedIn {
		s.created(ctx, sess, at)
	}
	return nil
}

// absorbActivity applies id's in-memory activity to r, a copy of its stored
// record, so a write never persists an older LastSeen, IP or user agent
// than Load reports, and a busy session is not taken for an idle one. It
// returns the entry and what it applied, for settle.
func (s *Store) absorbActivity(id backend.ID, r *backend.Record) (*activityEntry, activity) {
	e := s.active.entry(id)
	if e == nil {
		return nil, activity{}
	}
	a := e.snapshot()
	a.apply(r)
	return e, a
}

// settle runs after a committed write that rewrote id's record: it kills
// cached snapshots, and notes that the Backend now holds the activity the
// write absorbed (a Touch since then keeps the entry dirty).
func (s *Store) settle(id backend.ID, absorbed *activityEntry, snap activity) {
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
// reported by Load and ListByUser at once, and written to the Backend in
// one batch per TouchInterval (and on Flush and Close). It fails with
// ErrNotFound for a session that is not live.
//
// With the default clock, LastSeen has a resolution of about a millisecond:
// the load path reads a clock that a goroutine refreshes every millisecond
// while it is in use, and reads the exact one only for deadlines less than
// a minute away (see clock.go). LastSeen never moves backwards.
func (s *Store) Touch(ctx context.Context, id string, c Client) error {
	sid, ok := backend.ParseID(id)
	if !ok {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.privacy {
		c = s.private(c)
	}
	if s.active.touch(sid, nil, s.clock, c, s.opts.IdleTimeout) != nil {
		return nil
	}
	// No recent activity in memory: start from the stored state.
	_, err := s.loadAndTouch(ctx, sid, nil, "", c)
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
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if userID != nil {
		clean := SanitizeText(*userID)
		userID = &clean
	}
	oldHash := oldSec.hash()
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	var rotated backend.Record
	var absorbed *activityEntry
	var snap activity
	var limit *backend.UserLimit
	if userID != nil && *userID != "" {
		limit = s.limit(id)
	}
	evicted, err := s.b.Update(ctx, id, func(r *backend.Record) error {
		if subtle.ConstantTimeCompare(r.Hash[:], oldHash[:]) != 1 {
			return ErrNotFound
		}
		absorbed, snap = s.absorbActivity(id, r)
		now := s.now()
		if r.Deadline(s.opts.IdleTimeout) <= now {
			return ErrNotFound
		}
		r.Hash = sec.hash()
		if userID != nil {
			r.UserID = *userID
			r.Identity++
			r.Created, r.LastSeen, r.Expires = now, now, backend.AddNanos(now, s.opts.Lifetime)
		}
		rotated = *r
		return nil
	}, limit)
	if err != nil {
		return nil, s.closedErr(err)
	}
	s.settle(id, absorbed, snap)
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	if userID != nil {
		// The lifetime restarted: drop the in-memory entry, which holds
		// the old deadline (the Backend now has its activity).
		s.active.remove(id)
	}
	sess, err := s.view(&rotated)
	if err != nil {
		return nil, err
	}
	sess.Token = formatToken(id, sec)
	if userID != nil {
		s.created(ctx, sess, rotated.Created)
	}
	return sess, nil
}

// forget drops every in-memory trace of id after a committed write.
func (s *Store) forget(id backend.ID) {
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	s.active.remove(id)
}

// clearBatch bounds how many sessions one cleanup transaction removes, so
// cleanup never holds the writer lock for long.
const clearBatch = 1000

// ClearExpired removes the sessions that are past their deadline, with their
// index entries, and returns how many. It reads only what has expired.
// Pending activity is flushed first so idle deadlines are current, and a
// session with activity in memory since is kept. On a shared Backend a
// session idle by its stored activity is kept for two more TouchIntervals,
// the time in which another instance's activity reaches the Backend; so
// every instance may run it at once, and an idle timeout never ends a
// session that is active elsewhere. A damaged record whose indexed deadline
// has passed is removed and logged. A flush that fails does not stop
// cleanup (the activity it could not write is still in memory, and keeps
// its sessions): its error is returned with the count.
func (s *Store) ClearExpired(ctx context.Context) (int, error) {
	flushErr := s.Flush(ctx)
	if errors.Is(flushErr, ErrClosed) {
		return 0, flushErr
	}
	n, err := s.clearExpired(ctx)
	return n, errors.Join(flushErr, err)
}

// clearExpired is ClearExpired after its flush.
func (s *Store) clearExpired(ctx context.Context) (int, error) {
	var grace time.Duration
	if s.shared {
		grace = 2 * min(s.opts.TouchInterval, math.MaxInt64/4)
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if s.closed.Load() {
			return total, ErrClosed
		}
		now := s.now()
		removed, more, err := s.b.DeleteExpired(ctx, backend.ExpiredQuery{
			Now:       now,
			IdleGrace: grace,
			Limit:     clearBatch,
			History:   max(s.opts.History, 0),
			Keep: func(id backend.ID) bool {
				a, ok := s.active.lookup(id)
				return ok && s.opts.IdleTimeout > 0 && backend.AddNanos(a.lastSeen, s.opts.IdleTimeout) > now
			},
		})
		if err != nil {
			return total, s.closedErr(err)
		}
		s.ended(ctx, removed, func(r *backend.Record) EndReason { return EndReason(backend.ExpiryReason(r, now)) })
		total += len(removed)
		if !more {
			return total, nil
		}
	}
}

// Flush writes pending activity (from Touch) to the Backend now. The Store
// does this by itself every TouchInterval and on Close.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if pending := s.active.pending(); len(pending) > 0 {
		acts := make([]backend.Activity, len(pending))
		for i, p := range pending {
			acts[i] = backend.Activity{ID: p.id, LastSeen: p.snap.lastSeen, IP: p.snap.client.ip, UserAgent: p.snap.client.userAgent}
		}
		if err := s.b.Touch(ctx, acts); err != nil {
			return s.closedErr(err)
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
	for _, id := range s.active.sweep(backend.AddNanos(now, -2*min(s.opts.TouchInterval, math.MaxInt64/2)), now) {
		if s.cache != nil {
			s.cache.invalidate(id)
		}
	}
	return nil
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

// ErrNotSupported reports an operation the Store's Backend does not offer
// (a file backup of a database server, say).
var ErrNotSupported = errors.New("usersessions: not supported by this backend")

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
