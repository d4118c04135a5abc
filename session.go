package usersessions

import (
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/usersessions/usersessions/backend"
)

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
