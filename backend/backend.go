package backend

import (
	"context"
	"log/slog"
	"time"
)

// UseStoredIdleTimeout, as the idle timeout given to Backend.Open, asks
// for the one the last Open stored (usersessions.UseStoredIdleTimeout).
const UseStoredIdleTimeout time.Duration = -1

// Backend is the storage under a usersessions.Store (see
// usersessions.NewStore). The Store owns it
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
	// (and a record that holds at least its ID) for each one that cannot
	// be read.
	ListByUser(ctx context.Context, userID string, fn func(r *Record, err error)) error

	// Scan calls fn for up to limit records after the ID after (the zero
	// ID: from the start), in ID order, narrowed by f as the Backend can,
	// and returns the last ID it visited and done = true at the end. A
	// record that cannot be read gets fn with an error, as in ListByUser.
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
