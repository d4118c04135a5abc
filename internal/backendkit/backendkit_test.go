package backendkit

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

func TestMapErr(t *testing.T) {
	conn := errors.New("connection refused")
	isConn := func(err error) bool { return errors.Is(err, conn) }
	cases := []struct {
		err    error
		closed bool
		want   error
	}{
		{usersessions.ErrNotFound, true, usersessions.ErrNotFound}, // a sentinel stays, even after Close
		{conn, false, usersessions.ErrUnavailable},
		{context.DeadlineExceeded, false, usersessions.ErrUnavailable},
		{conn, true, usersessions.ErrClosed},
		{context.Canceled, false, context.Canceled},
	}
	for _, c := range cases {
		got := MapErr("x", "op", c.err, c.closed, isConn)
		if !errors.Is(got, c.want) || !errors.Is(got, c.err) && c.want != usersessions.ErrClosed {
			t.Errorf("MapErr(%v, closed %v) = %v, want it to wrap %v", c.err, c.closed, got, c.want)
		}
	}
	if got := MapErr("x", "op", errors.New("syntax"), false, isConn); errors.Is(got, usersessions.ErrUnavailable) || got.Error() != "x: op: syntax" {
		t.Errorf("a statement's own error: %v", got)
	}
	if MapErr("x", "op", nil, true, isConn) != nil {
		t.Error("nil mapped to an error")
	}
}

func TestExpiry(t *testing.T) {
	if limit, cut := Expiry(backend.ExpiredQuery{Now: 100}); limit != DefaultExpiredLimit || cut != 100 {
		t.Errorf("defaults: %d %d", limit, cut)
	}
	if limit, cut := Expiry(backend.ExpiredQuery{Now: 100, Limit: 7, IdleGrace: 30}); limit != 7 || cut != 70 {
		t.Errorf("grace: %d %d", limit, cut)
	}
	if _, cut := Expiry(backend.ExpiredQuery{Now: math.MinInt64 + 5, IdleGrace: time.Hour}); cut != math.MinInt64 {
		t.Errorf("a grace past the start of time: cut %d, want the minimum", cut)
	}
}
