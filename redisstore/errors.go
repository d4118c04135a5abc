package redisstore

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions/internal/backendkit"
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

// mapErr maps err to the usersessions sentinels (backendkit.MapErr).
func (b *Backend) mapErr(op string, err error) error {
	return backendkit.MapErr("redisstore", op, err, b.closed.Load(), isConnError)
}
