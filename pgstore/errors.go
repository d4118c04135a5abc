package pgstore

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersessions/usersessions/internal/backendkit"
)

// isConnError reports whether err says the database could not be reached
// or the connection broke, as opposed to an error of the statement itself.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection_exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	// pgconn's "conn closed" and "conn busy" carry no exported type.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}

// isRetryable reports whether a transaction that failed with err can simply
// run again: a deadlock or a serialization failure.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	// A connection that died before anything was sent on it (a pooled
	// connection to a server that restarted since): nothing reached the
	// server, so running the transaction again on another connection
	// cannot apply it twice.
	return pgconn.SafeToRetry(err)
}

// mapErr maps err to the usersessions sentinels (backendkit.MapErr).
func (b *Backend) mapErr(op string, err error) error {
	return backendkit.MapErr("pgstore", op, err, b.closed.Load(), isConnError)
}
