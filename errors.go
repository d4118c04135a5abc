package usersessions

import (
	"errors"

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

// ErrNotSupported reports an operation the Store's Backend does not offer
// (a file backup of a database server, say).
var ErrNotSupported = errors.New("usersessions: not supported by this backend")

// ErrUnsupportedType is returned by Save for a value whose type is neither
// built in nor registered with RegisterType.
var ErrUnsupportedType = errors.New("usersessions: unsupported value type")
