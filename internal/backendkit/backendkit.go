// Package backendkit holds what the shared Backends of this module
// (pgstore, redisstore) do alike, so that they do it the same way: how
// their errors map to the usersessions sentinels, and how an ExpiredQuery
// reads.
package backendkit

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// MapErr turns an error of operation op of the backend pkg ("pgstore")
// into the usersessions sentinels: after Close (closed) ErrClosed;
// connection failures (isConn) and a deadline that passed while waiting for
// the server wrap ErrUnavailable. Errors that already carry a sentinel, and
// errors of the statement itself, are returned as they are, prefixed.
func MapErr(pkg, op string, err error, closed bool, isConn func(error) bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, usersessions.ErrNotFound), errors.Is(err, usersessions.ErrCorrupt),
		errors.Is(err, usersessions.ErrUnavailable), errors.Is(err, usersessions.ErrClosed):
		return err
	case closed:
		return fmt.Errorf("%s: %s: %w", pkg, op, usersessions.ErrClosed)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %s: %w", pkg, op, err)
	case errors.Is(err, context.DeadlineExceeded), isConn(err):
		return fmt.Errorf("%s: %s: %w: %w", pkg, op, usersessions.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}

// DefaultExpiredLimit is a DeleteExpired's batch when ExpiredQuery.Limit
// is 0.
const DefaultExpiredLimit = 1000

// Expiry reads q: the batch limit (DefaultExpiredLimit for 0), and the
// grace's cut: an idle deadline is due only at or before it (q.Now minus
// q.IdleGrace, saturated).
func Expiry(q backend.ExpiredQuery) (limit int, cut int64) {
	limit = q.Limit
	if limit <= 0 {
		limit = DefaultExpiredLimit
	}
	cut = q.Now
	if q.IdleGrace > 0 {
		if cut = q.Now - int64(q.IdleGrace); cut > q.Now { // wrapped
			cut = math.MinInt64
		}
	}
	return limit, cut
}
