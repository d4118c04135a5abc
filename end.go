package usersessions

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Ending sessions: the one family of verbs (End, EndForUser, EndUser, and
// CredentialsChanged on top), the reasons and history they record, and the
// cleanup that ends expired sessions.

// EndReason says why a session ended, in History and Hooks.Ended.
type EndReason string

// The reasons the Store and httpx use. Apps may use their own as well.
const (
	EndLogout      EndReason = "logout"              // the person signed out of this session
	EndRevoked     EndReason = "revoked"             // ended from a list of sessions (End, EndForUser)
	EndOthers      EndReason = "others"              // "end all other sessions"
	EndEverywhere  EndReason = "everywhere"          // "sign out everywhere"
	EndExpired     EndReason = backend.ReasonExpired // its absolute lifetime ran out
	EndIdle        EndReason = backend.ReasonIdle    // its idle timeout ran out
	EndLimit       EndReason = "limit"               // evicted by Options.MaxPerUser
	EndCredentials EndReason = "credentials"         // the password or second factor changed
	EndAdmin       EndReason = "admin"               // an administrator ended it
	EndReported    EndReason = "reported"            // its user said "This wasn't me" (EndForUser with this reason)
)

// Ended is a session in History: as it was when it ended.
type Ended struct {
	Session
	EndedAt time.Time
	Reason  EndReason
	// By is the ID of the session that ended it (for "others", "logout",
	// "revoked", "credentials", "limit"), or "admin:" and the
	// administrator's user ID, or "" when no session did (expiry).
	By string
}

// EndOptions say who ends sessions and why, for History and Hooks.Ended.
// The zero value means each method's default reason. Both are kept as
// SanitizeText makes them.
type EndOptions struct {
	Reason EndReason
	By     string // see Ended.By
}

// sanitized returns o as it is kept.
func (o EndOptions) sanitized() EndOptions {
	return EndOptions{Reason: EndReason(SanitizeText(string(o.Reason))), By: SanitizeText(o.By)}
}

// ending returns the Ending for a removal now.
func (s *Store) ending(reason EndReason, by string) backend.Ending {
	return backend.Ending{At: s.now(), Reason: string(reason), By: by, Keep: max(s.opts.History, 0)}
}

// ended reports removed records: it drops them from memory and calls
// Hooks.Ended.
func (s *Store) ended(ctx context.Context, removed []backend.Record, reason func(*backend.Record) EndReason) {
	for i := range removed {
		s.forget(removed[i].ID)
	}
	s.deletes.Add(uint64(len(removed)))
	if s.opts.Hooks.Ended == nil {
		return
	}
	for i := range removed {
		r := &removed[i]
		sess := s.sessionOf(r)
		s.runHook("Ended", func() { s.opts.Hooks.Ended(ctx, sess, reason(r)) })
	}
}

// History returns userID's ended sessions that Options.History still
// keeps, most recent first. They never load: History is a record of what
// ended, not a way back.
func (s *Store) History(ctx context.Context, userID string) ([]Ended, error) {
	if userID == "" {
		return nil, nil
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	past, err := s.b.History(ctx, SanitizeText(userID))
	if err != nil {
		return nil, s.closedErr(err)
	}
	out := make([]Ended, 0, len(past))
	for i := range past {
		e := &past[i]
		out = append(out, Ended{Session: *s.sessionOf(&e.Record), EndedAt: unixNano(e.EndedAt), Reason: EndReason(e.Reason), By: e.By})
	}
	slices.SortStableFunc(out, func(a, b Ended) int { return b.EndedAt.Compare(a.EndedAt) })
	return out, nil
}

// End ends the session id: "sign out" or "end this session". It returns
// nil when a session was removed (even an expired one, or a damaged
// record) and ErrNotFound when there was none. History and Hooks.Ended get
// o's reason and By; the zero EndOptions means reason EndRevoked.
func (s *Store) End(ctx context.Context, id string, o EndOptions) error {
	return s.endOne(ctx, id, nil, o)
}

// EndForUser ends the session id only if it belongs to userID, checked
// in the same transaction. Another user's session, like a missing one, is
// ErrNotFound: use it wherever a user names a session to end. An empty
// userID owns nothing (anonymous sessions are nobody's): ErrNotFound. The
// zero EndOptions means reason EndRevoked.
func (s *Store) EndForUser(ctx context.Context, userID, id string, o EndOptions) error {
	return s.endOne(ctx, id, &userID, o)
}

// endOne ends the session id, only if it belongs to *owner when owner is
// not nil. The empty user owns nothing: anonymous sessions are nobody's,
// and naming "" must not end another visitor's.
func (s *Store) endOne(ctx context.Context, id string, owner *string, o EndOptions) error {
	sid, ok := backend.ParseID(id)
	if !ok || owner != nil && *owner == "" {
		return ErrNotFound
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if owner != nil {
		clean := SanitizeText(*owner)
		owner = &clean
	}
	o = o.sanitized()
	reason := cmp.Or(o.Reason, EndRevoked)
	r, err := s.b.Delete(ctx, sid, owner, s.ending(reason, o.By))
	if err != nil {
		return s.closedErr(err)
	}
	r.ID = sid
	s.ended(ctx, []backend.Record{r}, func(*backend.Record) EndReason { return reason })
	return nil
}

// EndUser ends every session of userID except keepID ("" keeps none):
// "sign out everywhere" or "end all other sessions". It reads only that
// user's index entries, removes damaged records too, and returns how many
// sessions it removed. An empty userID removes nothing. The zero
// EndOptions means reason EndOthers with By keepID when keepID is set,
// else EndEverywhere.
func (s *Store) EndUser(ctx context.Context, userID, keepID string, o EndOptions) (int, error) {
	if userID == "" {
		return 0, nil
	}
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var keep backend.ID
	if keepID != "" {
		keep, _ = backend.ParseID(keepID) // a malformed keepID keeps nothing
	}
	userID, o = SanitizeText(userID), o.sanitized()
	reason, by := o.Reason, o.By
	if reason == "" {
		reason = EndEverywhere
		if keepID != "" {
			reason, by = EndOthers, cmp.Or(by, keepID)
		}
	}
	removed, err := s.b.DeleteByUser(ctx, userID, keep, s.ending(reason, by))
	if err != nil {
		return 0, s.closedErr(err)
	}
	s.ended(ctx, removed, func(*backend.Record) EndReason { return reason })
	return len(removed), nil
}

// CredentialsChanged is the one call for after a password or second-factor
// change: it gives the session of token a new token (returned), and ends
// every other session of its user with reason EndCredentials. A stolen
// token, or a session signed in with the old password, is worthless after.
//
// The others end first: if that fails, nothing has changed, the token still
// works, and the call can be repeated; if the rotation then fails, the
// others are gone and the old token still works.
func (s *Store) CredentialsChanged(ctx context.Context, token string) (*Session, int, error) {
	cur, err := s.Load(ctx, token)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	if cur.UserID != "" {
		if n, err = s.EndUser(ctx, cur.UserID, cur.ID, EndOptions{Reason: EndCredentials, By: cur.ID}); err != nil {
			return nil, 0, err
		}
	}
	sess, err := s.Rotate(ctx, token)
	if err != nil {
		return nil, n, err
	}
	return sess, n, nil
}

// forget drops every in-memory trace of id after a committed write.
func (s *Store) forget(id backend.ID) {
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	s.active.remove(id)
}

// clearBatch bounds how many sessions one cleanup transaction removes, so
// cleanup never holds the writer lock for long.
const clearBatch = 1000

// ClearExpired removes the sessions that are past their deadline, with their
// index entries, and returns how many. It reads only what has expired.
// Pending activity is flushed first so idle deadlines are current, and a
// session with activity in memory since is kept. On a shared Backend a
// session idle by its stored activity is kept for two more TouchIntervals,
// the time in which another instance's activity reaches the Backend; so
// every instance may run it at once, and an idle timeout never ends a
// session that is active elsewhere. A damaged record whose indexed deadline
// has passed is removed and logged. A flush that fails does not stop
// cleanup (the activity it could not write is still in memory, and keeps
// its sessions): its error is returned with the count.
func (s *Store) ClearExpired(ctx context.Context) (int, error) {
	flushErr := s.Flush(ctx)
	if errors.Is(flushErr, ErrClosed) {
		return 0, flushErr
	}
	n, err := s.clearExpired(ctx)
	return n, errors.Join(flushErr, err)
}

// clearExpired is ClearExpired after its flush.
func (s *Store) clearExpired(ctx context.Context) (int, error) {
	var grace time.Duration
	if s.shared {
		grace = 2 * min(s.opts.TouchInterval, math.MaxInt64/4)
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if s.closed.Load() {
			return total, ErrClosed
		}
		now := s.now()
		removed, more, err := s.b.DeleteExpired(ctx, backend.ExpiredQuery{
			Now:       now,
			IdleGrace: grace,
			Limit:     clearBatch,
			History:   max(s.opts.History, 0),
			Keep: func(id backend.ID) bool {
				a, ok := s.active.lookup(id)
				return ok && s.opts.IdleTimeout > 0 && backend.AddNanos(a.lastSeen, s.opts.IdleTimeout) > now
			},
		})
		if err != nil {
			return total, s.closedErr(err)
		}
		s.ended(ctx, removed, func(r *backend.Record) EndReason { return EndReason(backend.ExpiryReason(r, now)) })
		total += len(removed)
		if !more {
			return total, nil
		}
	}
}
