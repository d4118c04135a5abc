package backend

import (
	"math"
	"net/netip"
	"time"
)

// Record is a session as a Backend stores it. The Store fills every field;
// a Backend keeps them as they are and indexes them (by UserID, by
// deadline, and optionally by IP for ScanFilter.IPPrefix).
type Record struct {
	ID        ID
	Hash      [32]byte // SHA-256 of the token's secret; the token itself is never stored
	UserID    string   // "" for an anonymous session
	IP        netip.Addr
	UserAgent string
	// Unix nanoseconds: creation, latest recorded activity, end of the
	// absolute lifetime.
	Created, LastSeen, Expires int64
	// Identity counts changes of UserID, so Save can tell a sign-in made
	// after its copy was loaded (usersessions.ErrConflict).
	Identity uint64
	// Values is the session's values as encoded by the Store: opaque bytes
	// to a Backend.
	Values []byte
}

// Deadline is the moment, in Unix nanoseconds, that the record's session
// dies under the idle timeout idle (0: none): Expires, or LastSeen plus idle
// when that is sooner. Backends index records by it.
func (r *Record) Deadline(idle time.Duration) int64 {
	return Deadline(r.Expires, r.LastSeen, idle)
}

// Deadline is the moment, in Unix nanoseconds, that a session with these
// absolute deadline, last activity and idle timeout (0: none) dies: the
// one rule the Store and every Backend share.
func Deadline(expires, lastSeen int64, idle time.Duration) int64 {
	if idle > 0 {
		return min(expires, AddNanos(lastSeen, idle))
	}
	return expires
}

// AddNanos returns t+d for Unix nanoseconds t, saturated at the ends of
// int64: a Lifetime of math.MaxInt64 (the natural "no absolute limit")
// means "as late as can be said", not a wrap into the past. Every deadline
// goes through it.
func AddNanos(t int64, d time.Duration) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-int64(d):
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-int64(d):
		return math.MinInt64
	}
	return t + int64(d)
}

// Activity is recorded activity for a Backend to write (Backend.Touch).
type Activity struct {
	ID        ID
	LastSeen  int64 // Unix nanoseconds; a Backend never moves LastSeen backwards
	IP        netip.Addr
	UserAgent string
}

// ScanFilter narrows Backend.Scan. A Backend may use any of its fields to
// read less (an index) or ignore them: the Store applies the full
// usersessions.Filter to what Scan returns.
type ScanFilter struct {
	UserID    string
	Anonymous bool
	IPPrefix  netip.Prefix
}

// The reasons a Backend itself gives in history (DeleteExpired). They are
// the values of usersessions.EndExpired and usersessions.EndIdle.
const (
	ReasonExpired = "expired"
	ReasonIdle    = "idle"
)

// ExpiryReason is the reason DeleteExpired records for r at now:
// ReasonExpired when its absolute lifetime has run out, else ReasonIdle.
func ExpiryReason(r *Record, now int64) string {
	if r.Expires <= now {
		return ReasonExpired
	}
	return ReasonIdle
}

// ExpiredQuery selects the records Backend.DeleteExpired removes: those with
// Deadline(idle) <= Now, and of those whose deadline is an idle one (before
// Expires), only the ones idle for IdleGrace longer. A shared Backend's
// Store sets IdleGrace so that activity another instance has not written
// yet cannot be outrun by cleanup.
type ExpiredQuery struct {
	Now       int64
	IdleGrace time.Duration
	Limit     int              // at most this many per call (0: the Backend's default); vetoed ones do not count
	Keep      func(id ID) bool // the Store's veto: fresh activity in its memory
	// History is how long the removed records stay in the history
	// (0: they don't), with reason ReasonExpired when Expires has passed,
	// else ReasonIdle. DeleteExpired also drops history entries kept past
	// their time.
	History time.Duration
}

// Ending says why records end and for how long history keeps them. A
// Backend writes the history entry in the same transaction as the removal.
type Ending struct {
	At     int64         // Unix nanoseconds
	Reason string        // a usersessions.EndReason; opaque to a Backend
	By     string        // see usersessions.Ended.By
	Keep   time.Duration // how long history keeps the record; 0: no history
}

// EndedRecord is a history entry: a record as it was when it ended.
type EndedRecord struct {
	Record
	EndedAt int64 // Unix nanoseconds
	Reason  string
	By      string
}

// UserLimit caps a user's live sessions on a write that gives the user one
// more (usersessions.Options.MaxPerUser). The Backend applies it in the
// same transaction as the write, serialized per user, so concurrent
// sign-ins cannot overshoot it: it counts the user's records for which
// Live is true (the written one included) and removes the least recent by
// Recency, never the written one, recording each with Ending (Reason
// "limit").
type UserLimit struct {
	Max     int
	Live    func(r *Record) bool
	Recency func(r *Record) int64
	Ending  Ending
}
