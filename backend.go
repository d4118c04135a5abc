package usersessions

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// The storage seam.
//
// A Store is the session rules — tokens and their hashes, the cache and its
// generations, in-memory activity, deadlines, values — over a Backend that
// keeps records durable and indexed. Open gives a Store on the embedded
// bbolt backend; NewStore takes any Backend, such as pgstore's PostgreSQL
// one for apps that run more than one instance.
//
// A Backend only stores: it never decides whether a session is alive or a
// token is right. Each method is one atomic, durable step (a record and its
// index entries change together or not at all), and when a method returns,
// its change is durable and visible to every later call on any instance.

// Record is a session as a Backend stores it. The Store fills every field;
// a Backend keeps them as they are and indexes them (by UserID, by
// deadline, and optionally by IP for Filter.IPPrefix).
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
	// after its copy was loaded (ErrConflict).
	Identity uint64
	// Values is the session's values as encoded by the Store: opaque bytes
	// to a Backend.
	Values []byte

	decoded valueList // Values decoded, when the reader asked for them
	idText  string    // the ID's text form, when the decoder made it
}

// Deadline is the moment, in Unix nanoseconds, that the record's session
// dies under the idle timeout idle (0: none): Expires, or LastSeen plus idle
// when that is sooner. Backends index records by it.
func (r *Record) Deadline(idle time.Duration) int64 {
	return deadlineAt(r.Expires, r.LastSeen, idle)
}

func (r *Record) deadline(idle time.Duration) int64 { return r.Deadline(idle) }

// Activity is recorded activity for a Backend to write (Backend.Touch).
type Activity struct {
	ID        ID
	LastSeen  int64 // Unix nanoseconds; a Backend never moves LastSeen backwards
	IP        netip.Addr
	UserAgent string
}

// ScanFilter narrows Backend.Scan. A Backend may use any of its fields to
// read less (an index) or ignore them: the Store applies the full Filter to
// what Scan returns.
type ScanFilter struct {
	UserID    string
	Anonymous bool
	IPPrefix  netip.Prefix
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
	// (0: they don't), with reason EndExpired when Expires has passed,
	// else EndIdle. DeleteExpired also drops history entries kept past
	// their time.
	History time.Duration
}

// Ending says why records end and for how long history keeps them. A
// Backend writes the history entry in the same transaction as the removal.
type Ending struct {
	At     int64 // Unix nanoseconds
	Reason EndReason
	By     string        // see Ended.By
	Keep   time.Duration // how long history keeps the record; 0: no history
}

// EndedRecord is a history entry: a record as it was when it ended.
type EndedRecord struct {
	Record
	EndedAt int64 // Unix nanoseconds
	Reason  EndReason
	By      string
}

// UserLimit caps a user's live sessions on a write that gives the user one
// more (Options.MaxPerUser). The Backend applies it in the same
// transaction as the write, serialized per user, so concurrent sign-ins
// cannot overshoot it: it counts the user's records for which Live is true
// (the written one included) and removes the least recent by Recency,
// never the written one, recording each with Ending (Reason EndLimit).
type UserLimit struct {
	Max     int
	Live    func(r *Record) bool
	Recency func(r *Record) int64
	Ending  Ending
}

// Backend is the storage under a Store (see NewStore). The Store owns it
// and calls Close. Methods must be safe for concurrent use. Errors:
// ErrNotFound where a method says so, errors wrapping ErrCorrupt for data
// that cannot be read, ErrUnavailable when the storage cannot be reached.
type Backend interface {
	// Open prepares the storage (creates or checks its schema) for a
	// Store with the idle timeout idle, and returns the idle timeout in
	// force: idle, or for a negative idle (UseStoredIdleTimeout) the one
	// the last Open stored. A Backend that indexes by deadline re-indexes
	// when idle changes. log receives problems the Backend handles itself.
	Open(ctx context.Context, idle time.Duration, log *slog.Logger) (time.Duration, error)

	// Get reads the record of id into r, or returns ErrNotFound. With
	// values false, r.Values may be left nil.
	Get(ctx context.Context, id ID, r *Record, values bool) error

	// Create stores the new record r. It fails if r.ID exists. With a
	// limit, it also removes what the limit says in the same transaction,
	// and returns those records.
	Create(ctx context.Context, r *Record, limit *UserLimit) (evicted []Record, err error)

	// Update reads the record of id, calls change with it, and stores
	// the changed record with its index entries moved, in one
	// transaction. It returns ErrNotFound (change not called) when there
	// is no record, and change's error, storing nothing, when change
	// fails. change may run more than once and must have no other
	// effects. With a limit, and when change gave the record another
	// non-empty UserID, it applies the limit to that user as Create does.
	Update(ctx context.Context, id ID, change func(r *Record) error, limit *UserLimit) (evicted []Record, err error)

	// Touch writes activity in one transaction: LastSeen (never moved
	// backwards) and the client of the newest activity of each record
	// (another instance may have written newer). A missing record is
	// skipped: activity never brings a session back.
	Touch(ctx context.Context, acts []Activity) error

	// Delete removes the record of id, only if it belongs to *owner
	// when owner is not nil, records it in history as end says, and
	// returns it; ErrNotFound when it removed nothing. A record that
	// cannot be read is removed too (its owner taken from the user index;
	// the returned record then has only its ID): revocation never depends
	// on a record being readable.
	Delete(ctx context.Context, id ID, owner *string, end Ending) (Record, error)

	// DeleteByUser removes every record of userID but keep (the zero ID:
	// none), unreadable ones too, records them in history as end says,
	// and returns them.
	DeleteByUser(ctx context.Context, userID string, keep ID, end Ending) ([]Record, error)

	// DeleteExpired removes records as q says and returns them, and
	// more = true when it stopped at q.Limit with more possibly due.
	DeleteExpired(ctx context.Context, q ExpiredQuery) (removed []Record, more bool, err error)

	// History returns the history entries of userID, most recent first.
	History(ctx context.Context, userID string) ([]EndedRecord, error)

	// ListByUser calls fn for each record of userID, or with an error
	// for each one that cannot be read.
	ListByUser(ctx context.Context, userID string, fn func(r *Record, err error)) error

	// Scan calls fn for up to limit records after the ID after (the zero
	// ID: from the start), in ID order, narrowed by f as the Backend can,
	// and returns the last ID it visited and done = true at the end.
	Scan(ctx context.Context, f ScanFilter, after ID, limit int, fn func(r *Record, err error)) (last ID, done bool, err error)

	// Count returns the number of stored records, expired ones included.
	Count(ctx context.Context) (int, error)

	// Check verifies the storage's own invariants (indexes agree with
	// records) and returns the problems, each wrapping ErrCorrupt.
	Check(ctx context.Context) error

	// Close releases the storage. The Store calls it once, last.
	Close() error
}

// SharedBackend is a Backend that several Stores (processes) use at once.
// Each Store keeps its own cache, so it must hear of the others' changes.
type SharedBackend interface {
	Backend
	// Subscribe starts delivering other instances' changes to c until
	// Close. Subscribe returns once the feed is live.
	Subscribe(ctx context.Context, c ChangeFeed) error
}

// ChangeFeed receives a SharedBackend's notices. A Store implements it.
type ChangeFeed interface {
	// Changed reports records another instance changed or removed.
	Changed(ids []ID)
	// Lost reports that notices may be missed from now on (the feed's
	// connection dropped or stopped answering): trust no cache.
	Lost()
	// Restored reports that the feed is live again; notices missed
	// meanwhile are not replayed.
	Restored()
}
