package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
)

// isConnError reports whether err says the server could not be reached,
// the connection broke, or the server cannot serve now (loading its data
// after a restart, a cluster without a majority, a replica that was
// promoted away), as opposed to an error of the command itself.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := rueidis.IsRedisErr(err); ok {
		msg := e.Error()
		return e.IsLoading() || e.IsClusterDown() || e.IsTryAgain() ||
			strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY") || strings.HasPrefix(msg, "BUSY ")
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENOENT), // a unix socket that is not there (yet)
		errors.Is(err, rueidis.ErrClosing), errors.Is(err, rueidis.ErrDoCacheAborted),
		errors.Is(err, rueidis.ErrNoSlot), errors.Is(err, rueidis.ErrNoAddr):
		return true
	}
	return false
}

// mapErr turns the server's and the client's errors into the usersessions
// sentinels: connection failures (and a deadline that passed while waiting
// for the server) wrap ErrUnavailable. Errors that already carry a
// sentinel, and errors of the command itself, are returned as they are.
func (b *Backend) mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, usersessions.ErrNotFound), errors.Is(err, usersessions.ErrCorrupt),
		errors.Is(err, usersessions.ErrUnavailable), errors.Is(err, usersessions.ErrClosed):
		return err
	case b.closed.Load():
		return fmt.Errorf("redisstore: %s: %w", op, usersessions.ErrClosed)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	case errors.Is(err, context.DeadlineExceeded), isConnError(err):
		return fmt.Errorf("redisstore: %s: %w: %w", op, usersessions.ErrUnavailable, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}
