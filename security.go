package usersessions

import (
	"bytes"
	"cmp"
	"context"
	"runtime/debug"

	"github.com/usersessions/usersessions/backend"
)

// Account security at run time: what Options.Privacy keeps of a client,
// the cap on sessions per user (Options.MaxPerUser), and the hooks on
// sign-in (new devices) and on every end.

// private applies Options.Privacy to a client.
func (s *Store) private(c Client) Client {
	p := &s.opts.Privacy
	if c.IP.IsValid() {
		c.IP = p.address(c.IP)
	}
	if p.NoUserAgent && c.UserAgent != "" {
		c.UserAgent = storedDevice(c.UserAgent)
	}
	return c
}

// storedDevice is what NoUserAgent keeps of a user agent: its device name,
// or a fixed word when it has none (the raw text must not be kept).
func storedDevice(ua string) string {
	if d := Device(ua); d != "" {
		return d
	}
	return "Unknown device"
}

// limit returns the UserLimit for a write, or nil without MaxPerUser.
func (s *Store) limit(by backend.ID) *backend.UserLimit {
	if s.opts.MaxPerUser <= 0 {
		return nil
	}
	return &backend.UserLimit{
		Max: s.opts.MaxPerUser,
		Live: func(r *backend.Record) bool {
			return s.now() < backend.Deadline(r.Expires, s.recency(r), s.opts.IdleTimeout)
		},
		Recency: s.recency,
		Ending:  s.ending(EndLimit, by.String()),
	}
}

// recency is r's latest activity, the freshest in memory counting.
func (s *Store) recency(r *backend.Record) int64 {
	if a, ok := s.active.lookup(r.ID); ok {
		return max(r.LastSeen, a.lastSeen)
	}
	return r.LastSeen
}

// created calls Hooks.Created for sess, now durable as a session of a user
// since at (Unix nanoseconds: its creation, or the write that signed it in).
//
// The sign-in check and the hook's newDevice are answered from one walk of
// the user's earlier sessions (see earlierOf).
func (s *Store) created(ctx context.Context, sess *Session, at int64) {
	check, hook := s.opts.SignInCheck, s.opts.Hooks.Created
	if sess.UserID == "" || check == nil && hook == nil {
		return
	}
	known, err := s.earlierOf(ctx, sess, at, check)
	if check != nil {
		s.checkSignIn(ctx, check, sess, at, known, err)
	}
	if hook == nil {
		return
	}
	if err != nil {
		s.log.Error("usersessions: Hooks.Created: looking up earlier devices", "user", sess.UserID, "err", err)
	}
	// An unnamed device matches nothing: it is always new.
	newDevice := deviceKey(sess.UserAgent, s.opts.Privacy.NoUserAgent) == "" || !known.device
	c := *sess
	c.Token = "" // hooks never see the secret
	s.runHook("Created", func() { hook(ctx, &c, newDevice) })
}

// eachEarlier calls fn for each session of sess's user that signed in
// before sess (at), live, then in history, until fn returns false.
//
// The list is read after sess is durable, so it may hold sessions that
// signed in after sess: two sign-ins at the same moment each see the
// other, and counting those suppressed the new device for both. Only
// sessions created before at count, or at the same moment with a smaller
// ID: of sign-ins at once, the first always reports the new device, and
// when each sees the others it alone does. (A session that signed in with
// Save counts from its creation, the only time its record keeps.)
func (s *Store) eachEarlier(ctx context.Context, sess *Session, at int64, fn func(r *backend.Record) bool) error {
	id, ok := backend.ParseID(sess.ID)
	if !ok {
		return nil
	}
	earlier := func(r *backend.Record) bool {
		return r.ID != id && cmp.Or(cmp.Compare(r.Created, at), bytes.Compare(r.ID[:], id[:])) < 0
	}
	more := true
	err := s.b.ListByUser(ctx, sess.UserID, func(r *backend.Record, err error) {
		if more && err == nil && earlier(r) {
			more = fn(r)
		}
	})
	if err != nil || !more {
		return err
	}
	past, err := s.b.History(ctx, sess.UserID)
	for i := 0; i < len(past) && more; i++ {
		if earlier(&past[i].Record) {
			more = fn(&past[i].Record)
		}
	}
	return err
}

// deviceKey is the device name a stored user agent stands for.
func deviceKey(ua string, stored bool) string {
	if stored {
		return ua // NoUserAgent stored the name itself
	}
	return Device(ua)
}

// runHook runs a hook, recovering and logging a panic.
func (s *Store) runHook(name string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("usersessions: a hook panicked", "hook", name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	fn()
}
