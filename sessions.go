package usersessions

import (
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Errors returned by the Store. Test for them with errors.Is: the Store wraps
// them with context (the file name, the failing operation). Those a Backend
// also returns are package backend's values under the same names, so
// errors.Is works with either.
var (
	// ErrNotFound reports an unknown, malformed, expired or revoked token or
	// ID. The Store never says which of these it was: to a client they are
	// the same thing, an invalid session.
	ErrNotFound = backend.ErrNotFound

	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = backend.ErrClosed

	// ErrLocked reports that Open gave up waiting for a database file that
	// another process holds open (bbolt allows one writer process per file).
	ErrLocked = errors.New("usersessions: database in use by another process")

	// ErrCorrupt reports a record or index entry that cannot be decoded or
	// that disagrees with the rest of the database.
	ErrCorrupt = backend.ErrCorrupt

	// ErrSchema reports a database file that is not a usersessions database,
	// or one written by a newer, unknown version of this package.
	ErrSchema = backend.ErrSchema

	// ErrConflict is returned by Save when the session's identity (its
	// UserID) was changed by another call, such as a sign-in with
	// RotateUser, after this copy was loaded. Nothing is written: a
	// request that started before a sign-in or sign-out cannot undo it.
	// Load the session again to act on its current state.
	ErrConflict = errors.New("usersessions: session changed since it was loaded")

	// ErrUnavailable reports that the Backend cannot be reached, or that a
	// shared Backend's change feed is down and the answer could not be
	// confirmed. It is not ErrNotFound: the session may well be valid, so
	// the httpx middleware answers 503 instead of signing the person out.
	ErrUnavailable = backend.ErrUnavailable
)

// UseStoredIdleTimeout, as Options.IdleTimeout, keeps the idle timeout the
// database file was last opened with (0 for a new file).
const UseStoredIdleTimeout = backend.UseStoredIdleTimeout

// Defaults applied by Open to zero Options fields.
const (
	DefaultLifetime        = 14 * 24 * time.Hour
	DefaultTouchInterval   = time.Minute
	DefaultOpenTimeout     = time.Second
	DefaultCacheBytes      = 64 << 20
	DefaultCleanupInterval = time.Hour
)

// Options configure a Store. The zero value (or a nil *Options) is useful:
// 14-day sessions, no idle timeout, a 64 MiB cache, hourly cleanup.
type Options struct {
	// Lifetime is the absolute lifetime of a session from its creation.
	// Default 14 days.
	Lifetime time.Duration

	// IdleTimeout ends a session after this long without activity (Touch,
	// Save, Create). 0 disables it. UseStoredIdleTimeout (any negative
	// value) takes the one the file was last opened with: tools that open
	// an application's database use it so they apply the application's
	// setting instead of their own.
	//
	// The expiry index depends on this setting, so opening a file with a
	// different one recomputes the index once (O(sessions)).
	IdleTimeout time.Duration

	// NoCache selects the "uncached" mode: every Load reads bbolt. The
	// default is a ristretto cache in front of bbolt.
	NoCache bool

	// CacheBytes bounds the cache's memory, measured as the size of the
	// cached records. 0 means DefaultCacheBytes.
	CacheBytes int64

	// TouchInterval is how often activity recorded by Touch is written to
	// disk: at most one persisted LastSeen update per session per interval.
	// Loads always report the freshest value from memory. Default 1 minute.
	TouchInterval time.Duration

	// OpenTimeout is how long Open waits for a file held by another process
	// before failing with ErrLocked. Default 1 second.
	OpenTimeout time.Duration

	// CleanupInterval is how often a background goroutine removes expired
	// sessions. 0 means DefaultCleanupInterval; a negative value disables
	// background cleanup (call ClearExpired yourself). It stops on Close.
	CleanupInterval time.Duration

	// Now is the clock, for tests. Default time.Now. A custom clock is
	// read exactly on every call; the default one is read coarsely on the
	// load path (see Store.Touch).
	Now func() time.Time

	// MaxPerUser caps the live sessions of one user; 0 means no cap.
	// Creating one more (Create, RotateUser, or a Save that sets the
	// UserID) ends the least recently active of the others, with reason
	// EndLimit, in the same transaction: concurrent sign-ins cannot
	// overshoot it.
	MaxPerUser int

	// Privacy limits what is kept of clients' addresses and user agents.
	Privacy Privacy

	// Hooks are called on sign-ins and on every end of a session.
	Hooks Hooks

	// History keeps ended sessions this long, for Store.History ("recently
	// ended" lists, who ended what and why); 0 keeps none. Cleanup removes
	// them with expired sessions.
	History time.Duration

	// StrictRevocation makes every Load confirm the session with the
	// Backend: the Store keeps no cache (as with NoCache), so each Load is
	// one Backend read. On a shared Backend that closes the window (one
	// change notice) in which another instance's revocation is not yet
	// seen here.
	StrictRevocation bool

	// Logger receives problems the Store handles by itself (a corrupt
	// record skipped during cleanup, a failed background flush). Default:
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = DefaultTouchInterval
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = DefaultCleanupInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts
}

// Client describes the other end of a request: where it came from and what
// it says it is.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

// Session is one session record. The Store hands out copies: the caller owns
// what Load returns, and changes reach the database (and other requests) only
// through Save.
type Session struct {
	// ID is the public handle: stable for the session's whole life (also
	// across Rotate), safe to show and to put in URLs. It never grants
	// access.
	ID string

	// Token is the secret for the cookie. It is set only on what Create,
	// Rotate and Login return; Load, ListByUser and All leave it empty,
	// because the Store keeps only a hash of it.
	Token string

	// UserID is the signed-in user, "" for an anonymous session.
	UserID string

	// IP and UserAgent are the client's, as last recorded by Create, Touch
	// or Save. UserAgent is cut to MaxUserAgentLength bytes.
	IP        netip.Addr
	UserAgent string

	// CreatedAt is when the session began, LastSeen its latest recorded
	// activity, and ExpiresAt the end of its absolute lifetime. With an
	// IdleTimeout the session may die earlier: see Deadline.
	CreatedAt, LastSeen, ExpiresAt time.Time

	values   valueList
	byKey    map[string]int // positions in values, for many values: see index
	shared   bool           // values is shared with the cache: copy before writing
	modified bool
	idle     time.Duration // the store's IdleTimeout, for Deadline
	identity uint64        // the record's identity when loaded: see codec.go
}

// Get returns the value stored under key and whether there was one.
// Values keep their Go type across Save, Load and reopening the Store.
// Keys are taken as SanitizeText makes them, as Set stored them.
func (s *Session) Get(key string) (any, bool) {
	if i := s.index(SanitizeText(key)); i >= 0 {
		return s.values[i].v, true
	}
	return nil, false
}

// Set stores v under key. Supported types are listed at RegisterType; Save
// reports an error for any other type. Set marks the session as modified.
// The key is kept as SanitizeText makes it: valid UTF-8, like every text
// the Store keeps.
func (s *Session) Set(key string, v any) {
	key = SanitizeText(key)
	s.own()
	if i := s.index(key); i >= 0 {
		s.values[i].v = v
	} else {
		s.values = append(s.values, keyValue{key, v})
		if s.byKey != nil {
			s.byKey[key] = len(s.values) - 1
		}
	}
	s.modified = true
}

// Delete removes key (taken as Set takes it). Deleting a missing key is not
// a modification.
func (s *Session) Delete(key string) {
	i := s.index(SanitizeText(key))
	if i < 0 {
		return
	}
	s.own()
	s.values = append(s.values[:i], s.values[i+1:]...)
	s.byKey = nil // positions moved; index rebuilds it when needed
	s.modified = true
}

// scanLimit is the number of values up to which index scans the list.
// Sessions hold a handful of values, for which a scan beats hashing and
// costs no allocation; past it a map keeps Get, Set and Delete from
// turning quadratic (50,000 Sets took seconds with scans alone).
const scanLimit = 32

// index returns the position of key in s.values, or -1.
func (s *Session) index(key string) int {
	if len(s.values) <= scanLimit {
		return s.values.index(key)
	}
	if s.byKey == nil {
		// Built on the caller's copy only: a cached snapshot is never
		// written, and own drops the map with the values it indexes.
		s.byKey = make(map[string]int, len(s.values))
		for i, kv := range s.values {
			s.byKey[kv.key] = i
		}
	}
	if i, ok := s.byKey[key]; ok {
		return i
	}
	return -1
}

// Keys returns the stored keys in the order they were first set.
func (s *Session) Keys() []string {
	keys := make([]string, len(s.values))
	for i, kv := range s.values {
		keys[i] = kv.key
	}
	return keys
}

// valueList holds a session's values in the order they were set. Sessions
// hold a handful of values, for which a slice beats a map: one allocation
// to decode instead of a map's buckets, and a scan of a few keys is faster
// than hashing.
type valueList []keyValue

type keyValue struct {
	key string
	v   any
}

func (l valueList) index(key string) int {
	for i := range l {
		if l[i].key == key {
			return i
		}
	}
	return -1
}

// Modified reports whether Set or Delete changed the values since the
// session was loaded or saved. Middleware uses it to save only on change.
func (s *Session) Modified() bool { return s.modified }

// Deadline is the moment the session dies: ExpiresAt, or LastSeen plus the
// Store's IdleTimeout when that comes first.
func (s *Session) Deadline() time.Time {
	switch d := s.deadline(); {
	case d == s.ExpiresAt.UnixNano():
		return s.ExpiresAt
	case d < math.MaxInt64: // an idle deadline that did not saturate
		return s.LastSeen.Add(s.idle)
	default:
		return unixNano(d)
	}
}

// Active reports whether the session is alive at now.
func (s *Session) Active(now time.Time) bool { return now.Before(s.Deadline()) }

// own makes s.values private to s before a write (copy on write), so a
// caller's changes never leak into the cache or into another copy.
func (s *Session) own() {
	if s.shared {
		s.values = slices.Clone(s.values)
		s.byKey = maps.Clone(s.byKey) // the positions stay right for the clone
		s.shared = false
	}
}

// clone returns a copy of s that shares the values map copy-on-write. s
// itself must already be marked shared (cached snapshots are): clone never
// writes to s, because concurrent loads clone the same snapshot.
func (s *Session) clone() *Session {
	c := *s
	c.shared = true
	return &c
}

// deadline is Deadline in Unix nanoseconds, for the load path.
func (s *Session) deadline() int64 {
	return backend.Deadline(s.ExpiresAt.UnixNano(), s.LastSeen.UnixNano(), s.idle)
}

// State selects sessions by liveness in a Filter.
type State int

const (
	// AnyState matches every session, alive or expired.
	AnyState State = iota
	// ActiveOnly matches live sessions.
	ActiveOnly
	// ExpiredOnly matches sessions past their deadline that ClearExpired has
	// not removed yet.
	ExpiredOnly
)

// Filter narrows All. Zero fields match everything.
type Filter struct {
	// UserID keeps one user's sessions (read through the user index).
	UserID string
	// Anonymous keeps only sessions without a user.
	Anonymous bool
	// State keeps active or expired sessions.
	State State
	// IPPrefix keeps sessions whose IP is inside the prefix.
	IPPrefix netip.Prefix
	// Search keeps sessions whose user ID or IP contains the text.
	Search string
	// After resumes a listing after the session with this ID, in ID order:
	// pass the last ID of one page to get the next.
	After string
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
