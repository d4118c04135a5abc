package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Moves.
//
// A session whose user changes (a sign-in of an anonymous session, a
// sign-out, a Save with another UserID) moves to another group: another
// hash tag, so in a Redis Cluster possibly another node, and no single
// script can do it. The locator serializes it:
//
//  1. The locator is set from the old group's to a marker (compare and
//     set, with a lease of moveLease as its TTL). Updates and Deletes by
//     ID wait while a marker is there; Loads read the old group, then the
//     new one.
//  2. The record leaves the old group (one script), only if it is still
//     the one Update read; otherwise the locator is put back and Update
//     starts again. If the record is gone, it was revoked meanwhile
//     (DeleteByUser on the old group): the move ends with ErrNotFound, and
//     nothing is written to the new group.
//  3. The record joins the new group, with the new user's MaxPerUser limit
//     (one script, as Create).
//  4. The locator is set from the marker to the new group's.
//
// At any moment the record is in at most one group, so a revocation (which
// removes records from groups) is never undone by a move. A mover that dies
// between 2 and 4 leaves the session in neither group or only in the new
// one, with the marker: when its lease runs out the locator goes, and the
// session is lost (signed out), never duplicated. A copy left in the new
// group without a locator cannot be loaded; it is listed until cleanup
// removes it at its deadline, or DeleteByUser or DeleteForUser end it.

// move moves id's record, read at version from the group of from and
// changed into r, to r.UserID's group. oldTTL is the locator's TTL before
// the change (to put it back). It returns errMoved when Update must start
// again.
func (b *Backend) move(ctx context.Context, id backend.ID, from locator, version, oldTTL string, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	fromG, to := b.groupOf(from.user, id), locatorOf(r.UserID)
	toG := b.groupOf(r.UserID, id)
	marker := newMarker(from, to).String()
	lease := strconv.FormatInt(moveLease.Milliseconds(), 10)
	if ok, err := b.casLoc(ctx, id, from.String(), marker, lease); err != nil || !ok {
		return nil, errOr(err, errMoved)
	}
	if err := b.moveStep(1); err != nil {
		return nil, err
	}
	status, err := b.eval(ctx, sMoveOut, []string{fromG.idx()},
		fromG.recPrefix(), id.String(), userFlag(fromG), version, b.channel(), b.tag).ToString()
	if err != nil {
		// Whether it ran is unknown: the marker's lease settles it.
		return nil, b.mapErr("move", err)
	}
	switch status {
	case "conflict": // changed since Update read it: put the locator back
		if _, err := b.casLoc(ctx, id, marker, from.String(), oldTTL); err != nil {
			return nil, err
		}
		return nil, errMoved
	case "missing": // revoked meanwhile: the session is gone
		if _, err := b.casLoc(ctx, id, marker, "", ""); err != nil {
			return nil, err
		}
		b.forget(ctx, b.anonGroup(id), []backend.ID{id}) // its P:all entry
		return nil, usersessions.ErrNotFound
	}
	if err := b.moveStep(2); err != nil {
		return nil, err
	}
	evicted, err := b.moveIn(ctx, toG, r, limit)
	if err != nil {
		return nil, err
	}
	if err := b.moveStep(3); err != nil {
		return nil, err
	}
	ok, err := b.casLoc(ctx, id, marker, to.String(), ttl(r))
	if err != nil {
		return nil, err
	}
	if !ok {
		// The lease ran out first: the session was given up. Take the
		// copy back, so it cannot be listed.
		_, _, _ = b.deleteIn(ctx, toG, id, backend.Ending{})
		return nil, fmt.Errorf("redisstore: move of %s took longer than its lease (%v): %w", id, moveLease, usersessions.ErrUnavailable)
	}
	return evicted, nil
}

// moveStep runs a test's hook after step n of a move: an error stops the
// move there, as if the process had died.
func (b *Backend) moveStep(n int) error {
	if b.testMoveStep == nil {
		return nil
	}
	return b.testMoveStep(n)
}

// errOr is err, or other when err is nil.
func errOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}

// moveIn writes r into g (replacing a copy a dead mover left there), under
// the limit of g's user as Create applies it.
func (b *Backend) moveIn(ctx context.Context, g group, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	if g.anonymous() || limit == nil || limit.Max <= 0 {
		evicted, _, err := b.insert(ctx, g, r, "", nil, backend.Ending{}, "force", false)
		return evicted, err
	}
	for range maxAttempts {
		snapshot, recs, _, err := b.readGroup(ctx, g)
		if err != nil {
			return nil, err
		}
		evicted, status, err := b.insert(ctx, g, r, snapshot, victimsOf(recs, r, limit), limit.Ending, "force", false)
		if status != "retry" {
			return evicted, err
		}
	}
	return nil, fmt.Errorf("redisstore: sign-in of %s: %d attempts lost to concurrent sign-ins of %q", r.ID, maxAttempts, r.UserID)
}
