package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Locators.
//
// A Load knows only the session's ID, but the record lives in its user's
// group. The locator P:loc:{aX} says which group holds X:
//
//	"a"                     the anonymous group of X (the same slot)
//	"u" + user              the group of user
//	"m" + nonce + from + to X is moving from one group to another (move.go)
//
// The record is the authority: a session is live only if its record is
// where the locator points. So a locator may be read from rueidis's
// client-side cache (kept coherent by RESP3 invalidation) without ever
// making a revoked session live: revocation deletes the record, and a stale
// locator leads to no record. A locator that leads nowhere is read again
// from the server before anyone is told ErrNotFound.

// locator is a parsed locator value.
type locator struct {
	kind     byte   // 'a', 'u' or 'm'
	user     string // 'u': the user
	nonce    string // 'm': the move's nonce
	from, to string // 'm': the locators of the groups left and joined
}

func locatorOf(user string) locator {
	if user == "" {
		return locator{kind: 'a'}
	}
	return locator{kind: 'u', user: user}
}

// String is the value stored.
func (l locator) String() string {
	switch l.kind {
	case 'a':
		return "a"
	case 'u':
		return "u" + l.user
	}
	return "m" + l.nonce + fmt.Sprintf("%08x", len(l.from)) + l.from + l.to
}

const nonceLen = 16

// parseLocator reads a stored locator; ok is false for one this version
// cannot have written.
func parseLocator(s string) (l locator, ok bool) {
	switch {
	case s == "a":
		return locator{kind: 'a'}, true
	case len(s) > 1 && s[0] == 'u':
		return locator{kind: 'u', user: s[1:]}, true
	case len(s) >= 1+nonceLen+8 && s[0] == 'm':
		n, err := strconv.ParseUint(s[1+nonceLen:1+nonceLen+8], 16, 32)
		rest := s[1+nonceLen+8:]
		if err != nil || n > uint64(len(rest)) {
			return locator{}, false
		}
		from, okFrom := parseLocator(rest[:n])
		to, okTo := parseLocator(rest[n:])
		if !okFrom || !okTo || from.kind == 'm' || to.kind == 'm' {
			return locator{}, false
		}
		return locator{kind: 'm', nonce: s[1 : 1+nonceLen], from: rest[:n], to: rest[n:]}, true
	}
	return locator{}, false
}

// moving reports whether the locator is a move's marker.
func (l locator) moving() bool { return l.kind == 'm' }

// newMarker is the marker of a move from one locator to another.
func newMarker(from, to locator) locator {
	var n [nonceLen / 2]byte
	_, _ = rand.Read(n[:])
	return locator{kind: 'm', nonce: hex.EncodeToString(n[:]), from: from.String(), to: to.String()}
}

// ends returns a marker's two locators.
func (l locator) ends() (from, to locator) {
	from, _ = parseLocator(l.from)
	to, _ = parseLocator(l.to)
	return from, to
}

// locCacheTTL bounds how long the client keeps a locator it read; RESP3
// invalidation drops it sooner when it changes.
const locCacheTTL = 10 * time.Minute

// locate reads id's locator, from the client-side cache when cached is
// true. It returns ErrNotFound when there is none, and an error wrapping
// ErrCorrupt for one it cannot read.
func (b *Backend) locate(ctx context.Context, id backend.ID, cached bool) (locator, error) {
	var s string
	err := b.retryRead(ctx, func() error {
		var err error
		if cached {
			s, err = b.client.DoCache(ctx, b.client.B().Get().Key(b.loc(id)).Cache(), locCacheTTL).ToString()
		} else {
			s, err = b.client.Do(ctx, b.client.B().Get().Key(b.loc(id)).Build()).ToString()
		}
		return err
	})
	if rueidis.IsRedisNil(err) {
		return locator{}, usersessions.ErrNotFound
	}
	if err != nil {
		return locator{}, b.mapErr("locate", err)
	}
	l, ok := parseLocator(s)
	if !ok {
		return locator{}, fmt.Errorf("redisstore: locator of %s: %q: %w", id, s, usersessions.ErrCorrupt)
	}
	return l, nil
}

// retryRead runs a read, and runs it again after a broken connection:
// once for any, a few times while they are pooled connections that died
// with a server restarted since (see pipe). Reads have no effect, so
// running one again is safe.
func (b *Backend) retryRead(ctx context.Context, read func() error) error {
	err := read()
	wait := time.Millisecond
	for i := 0; i < 5 && isConnError(err) && (i == 0 || unsent(err)); i++ {
		if b.closed.Load() || sleep(ctx, wait) != nil {
			break
		}
		wait *= 2
		err = read()
	}
	return err
}

// casLoc sets id's locator from old to new ("" for none) with the TTL ttl
// (ms as text, "" to keep it) and reports whether it was old.
func (b *Backend) casLoc(ctx context.Context, id backend.ID, old, new, ttl string) (bool, error) {
	n, err := b.eval(ctx, sCAS, []string{b.loc(id)}, old, new, ttl).AsInt64()
	if err != nil {
		return false, b.mapErr("locator", err)
	}
	return n == 1, nil
}

// errMoved says a locator changed under an operation, which starts again.
var errMoved = errors.New("redisstore: the session's locator changed")
