package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Get reads the record of id into r, or returns ErrNotFound: the locator
// (from the client-side cache), then the record in one round trip. A
// locator that leads to no record is read again from the server, and
// followed if it changed, before the answer is ErrNotFound.
func (b *Backend) Get(ctx context.Context, id backend.ID, r *backend.Record, values bool) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	prev, cached := "", true
	for range maxAttempts {
		l, err := b.locate(ctx, id, cached)
		if err != nil {
			return err
		}
		if !cached && l.String() == prev {
			return usersessions.ErrNotFound // read again: it still leads nowhere
		}
		prev, cached = l.String(), false
		var found bool
		if l.moving() {
			found, err = b.readMoving(ctx, id, l, r, values)
		} else {
			found, err = b.readRecord(ctx, b.groupOf(l.user, id), id, r, values)
		}
		if found || err != nil {
			return err
		}
		if l.moving() {
			// Between a move's steps neither group holds it: wait for
			// the move to end, then follow its locator.
			if err := b.awaitMove(ctx, id, l); err != nil {
				return err
			}
			prev = ""
		}
	}
	return usersessions.ErrNotFound
}

// maxAttempts bounds how often an operation starts again after a
// concurrent change (a move, a lost compare-and-set).
const maxAttempts = 100

// readRecord reads id's record in g into r and reports whether there was
// one. A record that cannot be read, or that names another user than its
// group's, is an error wrapping ErrCorrupt.
func (b *Backend) readRecord(ctx context.Context, g group, id backend.ID, r *backend.Record, values bool) (bool, error) {
	var m map[string]string
	err := b.retryRead(ctx, func() error {
		var err error
		m, err = b.client.Do(ctx, b.client.B().Hgetall().Key(g.rec(id)).Build()).AsStrMap()
		return err
	})
	if err != nil {
		return false, b.mapErr("get", err)
	}
	if len(m) == 0 {
		return false, nil
	}
	return true, b.parseIn(g, id, fromMap(m), r, values)
}

// parseIn is parseRecord for a record read from group g.
func (b *Backend) parseIn(g group, id backend.ID, get func(string) (string, bool), r *backend.Record, values bool) error {
	if _, err := parseRecord(id, get, r, values); err != nil {
		return err
	}
	if r.UserID != g.user {
		return fmt.Errorf("redisstore: record %s: user %q in the group of %q: %w", id, r.UserID, g.user, usersessions.ErrCorrupt)
	}
	return nil
}

// readMoving reads a moving session: from the group it leaves while it is
// still there (the move has not happened yet), else from the group it
// joins (the move has happened; only its locator is not written yet).
func (b *Backend) readMoving(ctx context.Context, id backend.ID, marker locator, r *backend.Record, values bool) (bool, error) {
	from, to := marker.ends()
	for _, l := range []locator{from, to} {
		found, err := b.readRecord(ctx, b.groupOf(l.user, id), id, r, values)
		if found || err != nil {
			return found, err
		}
	}
	return false, nil
}

// moveLease is how long a move's marker lives: a mover that dies leaves
// it behind for this long at most (move.go). A variable for tests.
var moveLease = 5 * time.Second

// awaitMove waits until id's locator is no longer marker (the move ended,
// or its lease ran out).
func (b *Backend) awaitMove(ctx context.Context, id backend.ID, marker locator) error {
	want := marker.String()
	deadline := time.Now().Add(moveLease + time.Second)
	for time.Now().Before(deadline) {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return b.mapErr("wait for a move", err)
		}
		s, err := b.client.Do(ctx, b.client.B().Get().Key(b.loc(id)).Build()).ToString()
		if rueidis.IsRedisNil(err) || (err == nil && s != want) {
			return nil
		}
		if err != nil {
			return b.mapErr("wait for a move", err)
		}
	}
	return fmt.Errorf("redisstore: session %s is still moving after %v: %w", id, moveLease, usersessions.ErrUnavailable)
}

// readGroup reads a user's group in one round trip: the snapshot of its
// index (for scriptCreate), and its records with, for each, its read error.
func (b *Backend) readGroup(ctx context.Context, g group) (snapshot string, recs []backend.Record, errs []error, err error) {
	var arr []rueidis.RedisMessage
	err = b.retryRead(ctx, func() error {
		var err error
		arr, err = b.eval(ctx, sReadGroup, []string{g.idx()}, g.recPrefix()).ToArray()
		return err
	})
	if err != nil {
		return "", nil, nil, b.mapErr("read user", err)
	}
	if len(arr) == 0 {
		return "", nil, nil, fmt.Errorf("redisstore: read user: empty reply")
	}
	snapshot, recs, errs = groupReply(b, g, arr)
	return snapshot, recs, errs, nil
}

// groupReply reads scriptReadGroup's reply.
func groupReply(b *Backend, g group, arr []rueidis.RedisMessage) (snapshot string, recs []backend.Record, errs []error) {
	ids, _ := arr[0].AsStrSlice()
	recs, errs = b.records(g, arr[1:])
	return "=" + strings.Join(ids, " "), recs, errs
}

// records reads a script's list of removed or read records: ID, fields,
// ID, fields... A record that cannot be read comes with its ID and an
// error wrapping ErrCorrupt.
func (b *Backend) records(g group, arr []rueidis.RedisMessage) ([]backend.Record, []error) {
	recs := make([]backend.Record, 0, len(arr)/2)
	errs := make([]error, 0, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		text, _ := arr[i].ToString()
		var r backend.Record
		id, ok := backend.ParseID(text)
		if !ok {
			recs = append(recs, r)
			errs = append(errs, fmt.Errorf("redisstore: index entry %q: not an ID: %w", text, usersessions.ErrCorrupt))
			continue
		}
		fields, _ := arr[i+1].AsStrSlice()
		err := b.parseIn(g, id, fromPairs(fields), &r, true)
		r.ID = id
		recs, errs = append(recs, r), append(errs, err)
	}
	return recs, errs
}

// ListByUser calls fn for each record of userID, in ID order, or with an
// error wrapping ErrCorrupt for each one that cannot be read: one script
// reads the user's group. The records are read first, so fn may call the
// Backend.
func (b *Backend) ListByUser(ctx context.Context, userID string, fn func(r *backend.Record, err error)) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	if userID == "" {
		return nil
	}
	_, recs, errs, err := b.readGroup(ctx, b.userGroup(userID))
	if err != nil {
		return err
	}
	for _, i := range byID(recs) {
		fn(&recs[i], errs[i])
	}
	return nil
}

// byID returns the indexes of recs in ID order.
func byID(recs []backend.Record) []int {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return bytes.Compare(recs[x].ID[:], recs[y].ID[:]) })
	return order
}

// Scan calls fn for up to limit records with IDs after after, in ID order,
// and returns the last ID visited and done = true when no record is left.
// With f.UserID it reads that user's group; otherwise it pages through
// P:all and reads each record by its locator (f.Anonymous skips the
// others without reading them). f.IPPrefix is left to the Store.
func (b *Backend) Scan(ctx context.Context, f backend.ScanFilter, after backend.ID, limit int, fn func(r *backend.Record, err error)) (backend.ID, bool, error) {
	if b.closed.Load() {
		return after, false, usersessions.ErrClosed
	}
	if limit <= 0 {
		limit = 100
	}
	if f.UserID != "" {
		return b.scanUser(ctx, f.UserID, after, limit, fn)
	}
	start := "-"
	if after != (backend.ID{}) {
		start = "(" + string(after[:])
	}
	var members []string
	err := b.retryRead(ctx, func() error {
		var err error
		members, err = b.client.Do(ctx, b.client.B().Zrange().Key(b.allKey()).Min(start).Max("+").Bylex().Limit(0, int64(limit)).Build()).AsStrSlice()
		return err
	})
	if err != nil {
		return after, false, b.mapErr("scan", err)
	}
	last := after
	for _, m := range members {
		if len(m) != len(last) {
			continue // not an ID: Check reports it
		}
		var id backend.ID
		copy(id[:], m)
		last = id
		var r backend.Record
		found, err := b.scanOne(ctx, id, f.Anonymous, &r)
		if found || err != nil {
			fn(&r, err)
		}
	}
	return last, len(members) < limit, nil
}

// scanOne reads the record of id for Scan; with anonymous, only if it is
// an anonymous session's.
func (b *Backend) scanOne(ctx context.Context, id backend.ID, anonymous bool, r *backend.Record) (bool, error) {
	l, err := b.locate(ctx, id, true)
	switch {
	case errors.Is(err, usersessions.ErrNotFound):
		return false, nil // being created, or a leftover
	case err != nil:
		*r = backend.Record{ID: id}
		return true, err
	case l.moving():
		return b.readMoving(ctx, id, l, r, true)
	case anonymous && l.kind != 'a':
		return false, nil
	}
	found, err := b.readRecord(ctx, b.groupOf(l.user, id), id, r, true)
	r.ID = id
	return found, err
}

// scanUser is Scan of one user's group.
func (b *Backend) scanUser(ctx context.Context, user string, after backend.ID, limit int, fn func(*backend.Record, error)) (backend.ID, bool, error) {
	_, recs, errs, err := b.readGroup(ctx, b.userGroup(user))
	if err != nil {
		return after, false, err
	}
	last, n := after, 0
	for _, i := range byID(recs) {
		if bytes.Compare(recs[i].ID[:], after[:]) <= 0 {
			continue
		}
		if n == limit {
			return last, false, nil
		}
		fn(&recs[i], errs[i])
		last, n = recs[i].ID, n+1
	}
	return last, true, nil
}

// Count returns the number of sessions in P:all, expired ones included.
func (b *Backend) Count(ctx context.Context) (int, error) {
	if b.closed.Load() {
		return 0, usersessions.ErrClosed
	}
	var n int64
	err := b.retryRead(ctx, func() error {
		var err error
		n, err = b.client.Do(ctx, b.client.B().Zcard().Key(b.allKey()).Build()).AsInt64()
		return err
	})
	return int(n), b.mapErr("count", err)
}
