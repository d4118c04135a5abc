package usersessions

import (
	"context"
	"fmt"
	"iter"
	"net/netip"
	"strings"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Admin listings: Filter and the All iterator.

// State selects sessions by liveness in a Filter.
type State int

const (
	// AnyState matches every session, alive or expired.
	AnyState State = iota
	// ActiveOnly matches live sessions.
	ActiveOnly
	// ExpiredOnly matches sessions past their deadline that ClearExpired has
	// not removed yet.
	ExpiredOnly
)

// Filter narrows All. Zero fields match everything.
type Filter struct {
	// UserID keeps one user's sessions (read through the user index).
	UserID string
	// Anonymous keeps only sessions without a user.
	Anonymous bool
	// State keeps active or expired sessions.
	State State
	// IPPrefix keeps sessions whose IP is inside the prefix.
	IPPrefix netip.Prefix
	// Search keeps sessions whose user ID or IP contains the text.
	Search string
	// After resumes a listing after the session with this ID, in ID order:
	// pass the last ID of one page to get the next.
	After string
}

// allPage is how many sessions All reads per Backend call. Paging keeps
// transactions short: a long-lived read transaction would stall writers that
// need to grow the file while the caller works on each session.
const allPage = 256

// All iterates over sessions matching f, in ID order, for admin listings.
// Sessions come without tokens, with pending activity applied. A record
// that cannot be decoded is yielded as an error wrapping ErrCorrupt, and the
// iteration goes on if the loop does. Stop early by breaking out of the loop.
func (s *Store) All(ctx context.Context, f Filter) iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		var after backend.ID
		if f.After != "" {
			id, ok := backend.ParseID(f.After)
			if !ok {
				yield(nil, fmt.Errorf("usersessions: bad cursor %q: %w", f.After, ErrNotFound))
				return
			}
			after = id
		}
		f.UserID, f.Search = SanitizeText(f.UserID), SanitizeText(f.Search) // as stored
		scan := backend.ScanFilter{UserID: f.UserID, Anonymous: f.Anonymous, IPPrefix: f.IPPrefix}
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if s.closed.Load() {
				yield(nil, ErrClosed)
				return
			}
			var page []sessionOrError
			now := unixNano(s.now())
			last, done, err := s.b.Scan(ctx, scan, after, allPage, func(r *backend.Record, err error) {
				var sess *Session
				if err == nil {
					sess, err = s.view(r)
				}
				if err != nil {
					page = append(page, sessionOrError{err: err})
					return
				}
				if a, ok := s.active.lookup(r.ID); ok {
					a.overlay(sess)
				}
				if f.matches(sess, now) {
					page = append(page, sessionOrError{sess: sess})
				}
			})
			if err != nil {
				yield(nil, s.closedErr(err))
				return
			}
			for _, item := range page {
				if !yield(item.sess, item.err) {
					return
				}
			}
			if done {
				return
			}
			after = last
		}
	}
}

type sessionOrError struct {
	sess *Session
	err  error
}

func (f *Filter) matches(s *Session, now time.Time) bool {
	switch {
	case f.UserID != "" && s.UserID != f.UserID,
		f.Anonymous && s.UserID != "",
		f.State == ActiveOnly && !s.Active(now),
		f.State == ExpiredOnly && s.Active(now),
		f.IPPrefix.IsValid() && !f.IPPrefix.Contains(s.IP):
		return false
	}
	if f.Search != "" {
		q := strings.ToLower(f.Search)
		ip := ""
		if s.IP.IsValid() {
			ip = s.IP.String()
		}
		return strings.Contains(strings.ToLower(s.UserID), q) || strings.Contains(ip, q)
	}
	return true
}
