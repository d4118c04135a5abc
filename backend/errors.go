package backend

import "errors"

// The errors a Backend returns, wrapped with context as it likes.
// usersessions re-exports each under the same name (usersessions.ErrNotFound
// is ErrNotFound), so errors.Is works with either.
var (
	// ErrNotFound reports a record that does not exist (or, to the
	// Store's callers, an unknown, malformed, expired or revoked token or
	// ID).
	ErrNotFound = errors.New("usersessions: session not found")

	// ErrClosed is returned by every method of a closed Backend (and of a
	// closed Store).
	ErrClosed = errors.New("usersessions: store closed")

	// ErrCorrupt reports a record or index entry that cannot be decoded
	// or that disagrees with the rest of the storage.
	ErrCorrupt = errors.New("usersessions: corrupt data")

	// ErrSchema reports storage that is not a usersessions database, or
	// one written by a newer, unknown version.
	ErrSchema = errors.New("usersessions: unsupported database schema")

	// ErrUnavailable reports that the storage cannot be reached, or that
	// a shared Backend's change feed is down and an answer could not be
	// confirmed. It is not ErrNotFound: the session may well be valid.
	ErrUnavailable = errors.New("usersessions: session storage unavailable")
)
