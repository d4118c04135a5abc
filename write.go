package usersessions

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"

	"github.com/usersessions/usersessions/backend"
)

// Writing sessions: Create, Save, Touch, Rotate and RotateUser, and Flush
// of the activity Touch records in memory.

// Create starts a session for userID ("" for anonymous) and returns it with
// its Token set. It is durable when it returns. The user ID and the user
// agent are kept as SanitizeText makes them.
func (s *Store) Create(ctx context.Context, userID string, c Client) (*Session, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	userID = SanitizeText(userID)
	now := s.now()
	id, err := newSessionID(now)
	if err != nil {
		return nil, fmt.Errorf("usersessions: random ID: %w", err)
	}
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	c = s.private(c)
	r := &backend.Record{
		ID:        id,
		Hash:      sec.hash(),
		UserID:    userID,
		IP:        c.IP.Unmap(),
		UserAgent: storedUserAgent(c.UserAgent),
		Created:   now,
		LastSeen:  now,
		Expires:   backend.AddNanos(now, s.opts.Lifetime),
		Values:    []byte{0}, // no values
	}
	var t ticket
	if s.cache != nil {
		t = s.cache.ticket(id)
	}
	var limit *backend.UserLimit
	if userID != "" {
		limit = s.limit(id)
	}
	evicted, err := s.b.Create(ctx, r, limit)
	if err != nil {
		return nil, s.closedErr(err)
	}
	s.creates.Add(1)
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	sess := s.sessionOf(r)
	token := formatToken(id, sec)
	if s.cache != nil {
		s.cache.put(id, t, r.Hash, token, sess, len(r.UserID)+len(r.UserAgent)+64)
	}
	sess.Token = token
	s.created(ctx, sess, now)
	return sess, nil
}

// Save writes sess's UserID and values, and records activity. The client
// (IP, UserAgent) is the Store's, recorded by Create and Touch, and so are
// the times: changes to those fields are ignored, and Save writes the
// freshest activity instead. Save fails with ErrNotFound, and writes
// nothing, when the session was deleted, revoked or expired meanwhile: it
// never brings one back. It fails with ErrConflict, and writes nothing,
// when another call changed the session's UserID after sess was loaded (a
// sign-in or sign-out by a concurrent request must not be undone); a Save
// that changes UserID itself succeeds, and so do later Saves of the same
// copy. It is durable when it returns, and a value of a type that cannot be
// stored fails with ErrUnsupportedType. UserID is kept as SanitizeText makes
// it, and sess shows what was kept.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	id, ok := backend.ParseID(sess.ID)
	if !ok {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	values, err := encodeValues(nil, sess.values)
	if err != nil {
		return fmt.Errorf("save %s: %w", sess.ID, err)
	}
	userID, identity := SanitizeText(sess.UserID), sess.identity
	var saved backend.Record
	var at int64 // when the write that commits ran: a sign-in's moment
	var absorbed *activityEntry
	var snap activity
	evicted, err := s.b.Update(ctx, id, func(r *backend.Record) error {
		if r.Identity != identity {
			return fmt.Errorf("save %s: %w: its user changed from %q (sign-in, sign-out or another Save)", sess.ID, ErrConflict, r.UserID)
		}
		absorbed, snap = s.absorbActivity(id, r)
		now := s.now()
		if r.Deadline(s.opts.IdleTimeout) <= now {
			return ErrNotFound
		}
		at = now
		if userID != r.UserID {
			r.Identity++
		}
		r.UserID, r.Values = userID, values
		r.LastSeen = max(r.LastSeen, now)
		saved = *r
		return nil
	}, s.limit(id))
	if err != nil {
		return s.closedErr(err)
	}
	s.settle(id, absorbed, snap)
	s.saves.Add(1)
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	sess.UserID, sess.IP, sess.UserAgent = saved.UserID, saved.IP, saved.UserAgent
	sess.LastSeen, sess.ExpiresAt, sess.CreatedAt = unixNano(saved.LastSeen), unixNano(saved.Expires), unixNano(saved.Created)
	signedIn := sess.identity != saved.Identity && saved.UserID != ""
	sess.identity = saved.Identity
	sess.modified = false
	if signedIn {
		s.created(ctx, sess, at)
	}
	return nil
}

// absorbActivity applies id's in-memory activity to r, a copy of its stored
// record, so a write never persists an older LastSeen, IP or user agent
// than Load reports, and a busy session is not taken for an idle one. It
// returns the entry and what it applied, for settle.
func (s *Store) absorbActivity(id backend.ID, r *backend.Record) (*activityEntry, activity) {
	e := s.active.entry(id)
	if e == nil {
		return nil, activity{}
	}
	a := e.snapshot()
	a.apply(r)
	return e, a
}

// settle runs after a committed write that rewrote id's record: it kills
// cached snapshots, and notes that the Backend now holds the activity the
// write absorbed (a Touch since then keeps the entry dirty).
func (s *Store) settle(id backend.ID, absorbed *activityEntry, snap activity) {
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	if absorbed != nil {
		absorbed.saved(snap)
	}
}

// Touch records activity on the session id: now as LastSeen, and the
// client's IP and user agent when they are set and changed. It is meant for
// every request, so it writes nothing itself: activity is kept in memory,
// reported by Load and ListByUser at once, and written to the Backend in
// one batch per TouchInterval (and on Flush and Close). It fails with
// ErrNotFound for a session that is not live.
//
// With the default clock, LastSeen has a resolution of about a millisecond:
// the load path reads a clock that a goroutine refreshes every millisecond
// while it is in use, and reads the exact one only for deadlines less than
// a minute away (see clock.go). LastSeen never moves backwards.
func (s *Store) Touch(ctx context.Context, id string, c Client) error {
	sid, ok := backend.ParseID(id)
	if !ok {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.privacy {
		c = s.private(c)
	}
	if s.active.touch(sid, nil, s.clock, c, s.opts.IdleTimeout) != nil {
		return nil
	}
	// No recent activity in memory: start from the stored state.
	_, err := s.loadAndTouch(ctx, sid, nil, "", c)
	return err
}

// Rotate gives the session of token a new token and returns the session
// with it. The old token is dead when Rotate returns; the ID, the values and
// the lifetime stay. Use it whenever privileges change, such as at login, so
// a token planted before (session fixation) is worthless.
func (s *Store) Rotate(ctx context.Context, token string) (*Session, error) {
	return s.rotate(ctx, token, nil)
}

// RotateUser is Rotate plus binding the session to userID in the same
// durable write, with the lifetime restarted from now: a sign-in. Use it at
// login.
func (s *Store) RotateUser(ctx context.Context, token, userID string) (*Session, error) {
	return s.rotate(ctx, token, &userID)
}

// rotate is Rotate, and RotateUser when userID is not nil: one Backend
// Update checks the old token's hash and the deadline, and stores the new
// hash (and the user, with the lifetime restarted).
func (s *Store) rotate(ctx context.Context, token string, userID *string) (*Session, error) {
	id, oldSec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if userID != nil {
		clean := SanitizeText(*userID)
		userID = &clean
	}
	oldHash := oldSec.hash()
	sec, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("usersessions: random token: %w", err)
	}
	var rotated backend.Record
	var absorbed *activityEntry
	var snap activity
	var limit *backend.UserLimit
	if userID != nil && *userID != "" {
		limit = s.limit(id)
	}
	evicted, err := s.b.Update(ctx, id, func(r *backend.Record) error {
		if subtle.ConstantTimeCompare(r.Hash[:], oldHash[:]) != 1 {
			return ErrNotFound
		}
		absorbed, snap = s.absorbActivity(id, r)
		now := s.now()
		if r.Deadline(s.opts.IdleTimeout) <= now {
			return ErrNotFound
		}
		r.Hash = sec.hash()
		if userID != nil {
			r.UserID = *userID
			r.Identity++
			r.Created, r.LastSeen, r.Expires = now, now, backend.AddNanos(now, s.opts.Lifetime)
		}
		rotated = *r
		return nil
	}, limit)
	if err != nil {
		return nil, s.closedErr(err)
	}
	s.settle(id, absorbed, snap)
	return s.rotated(ctx, id, &rotated, sec, userID != nil, evicted)
}

// rotated finishes the rotation of session id, which the Backend has
// stored as r: it reports the sessions the user limit evicted, and returns
// the session with its new token. signIn says the session was bound to a user with its lifetime
// restarted.
func (s *Store) rotated(ctx context.Context, id backend.ID, r *backend.Record, sec secret, signIn bool, evicted []backend.Record) (*Session, error) {
	s.ended(ctx, evicted, func(*backend.Record) EndReason { return EndLimit })
	if signIn {
		// The lifetime restarted: drop the in-memory entry, which holds
		// the old deadline (the Backend now has its activity).
		s.active.remove(id)
	}
	sess, err := s.view(r)
	if err != nil {
		return nil, err
	}
	sess.Token = formatToken(id, sec)
	if signIn {
		s.created(ctx, sess, r.Created)
	}
	return sess, nil
}

// Flush writes pending activity (from Touch) to the Backend now. The Store
// does this by itself every TouchInterval and on Close.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if pending := s.active.pending(); len(pending) > 0 {
		acts := make([]backend.Activity, len(pending))
		for i, p := range pending {
			acts[i] = backend.Activity{ID: p.id, LastSeen: p.snap.lastSeen, IP: p.snap.client.ip, UserAgent: p.snap.client.userAgent}
		}
		if err := s.b.Touch(ctx, acts); err != nil {
			return s.closedErr(err)
		}
		s.flushes.Add(1)
		for _, p := range pending {
			p.e.saved(p.snap)
		}
	}
	// Entries idle for two intervals leave memory. Cached snapshots of their
	// sessions may predate what the flushes wrote, and no overlay covers
	// them any more: drop those too.
	now := s.now()
	for _, id := range s.active.sweep(backend.AddNanos(now, -2*min(s.opts.TouchInterval, math.MaxInt64/2)), now) {
		if s.cache != nil {
			s.cache.invalidate(id)
		}
	}
	return nil
}
