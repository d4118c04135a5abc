package usersessions

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"runtime/debug"
	"slices"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Account security: a cap on sessions per user, privacy of stored client
// data, hooks on sign-in and on every end, and a history of ended sessions.

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
)

// Privacy limits what the Store keeps of a client. It applies before
// anything is stored (the database, the history) or held in memory.
type Privacy struct {
	// IPPrefixV4 and IPPrefixV6 keep only this many leading bits of an
	// address (24 and 48 are common choices); 0 keeps the full address.
	// An IPv6 address that embeds an IPv4 one (6to4, Teredo,
	// IPv4-compatible; the address Geo.Location looks up) is kept, under
	// IPPrefixV4, as that IPv4 address's prefix. Locations still resolve
	// from the kept network where the GeoIP database allows.
	IPPrefixV4, IPPrefixV6 int
	// NoUserAgent keeps the device name ("Safari on iPhone", see Device)
	// in place of the raw user agent.
	NoUserAgent bool
}

// Hooks are called after the change they report is durable, outside any
// transaction, inline: on the goroutine of the call that made the change
// (a request's, or the cleanup goroutine's for expiry), which waits for
// the hook and for nothing else. Keep them short, or hand work to a
// goroutine of your own. A panicking hook is recovered and logged.
type Hooks struct {
	// Created reports a session that a user now has: Create for a user,
	// RotateUser, or a Save that set another UserID. newDevice is true
	// when no earlier session of the user, live or in History, had the
	// same device name: the moment to email "new sign-in from Chrome on
	// Windows".
	Created func(ctx context.Context, s *Session, newDevice bool)
	// Ended reports a session that ended, for every reason, expiry and
	// idle timeouts (from cleanup) included.
	Ended func(ctx context.Context, s *Session, reason EndReason)
}

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

// address is what the prefixes keep of ip. An IPv6 address that embeds an
// IPv4 one would keep the exact IPv4 address under any IPPrefixV6 of 48 or
// more (6to4 holds it in bits 16-48), so under IPPrefixV4 it becomes that
// IPv4 address, the one geo lookups use, before the prefix applies.
// Loopback and unspecified addresses embed none.
func (p *Privacy) address(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if p.IPPrefixV4 > 0 && !ip.IsLoopback() && !ip.IsUnspecified() {
		ip = geoIPv4Of(ip)
	}
	bits := p.IPPrefixV6
	if ip.Is4() {
		bits = p.IPPrefixV4
	}
	if bits > 0 && bits < ip.BitLen() {
		if pfx, err := ip.Prefix(bits); err == nil {
			return pfx.Addr()
		}
	}
	return ip
}

// storedDevice is what NoUserAgent keeps of a user agent: its device name,
// or a fixed word when it has none (the raw text must not be kept).
func storedDevice(ua string) string {
	if d := Device(ua); d != "" {
		return d
	}
	return "Unknown device"
}

// active reports whether Options.Privacy changes anything.
func (p *Privacy) active() bool { return p.IPPrefixV4 > 0 || p.IPPrefixV6 > 0 || p.NoUserAgent }

// validate checks the prefix lengths.
func (p *Privacy) validate() error {
	if p.IPPrefixV4 < 0 || p.IPPrefixV4 > 32 || p.IPPrefixV6 < 0 || p.IPPrefixV6 > 128 {
		return fmt.Errorf("usersessions: Privacy prefixes %d and %d: want 0-32 and 0-128", p.IPPrefixV4, p.IPPrefixV6)
	}
	return nil
}

// ending returns the Ending for a removal now.
func (s *Store) ending(reason EndReason, by string) backend.Ending {
	return backend.Ending{At: s.now(), Reason: string(reason), By: by, Keep: max(s.opts.History, 0)}
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

// sessionOf builds the public view of a record a Backend returned (values
// decoded when they can be; a damaged record gives just its ID).
func (s *Store) sessionOf(r *backend.Record) *Session {
	rec := record{Record: *r}
	if len(r.Values) > 1 {
		rec.decoded, _ = decodeValues(r.Values)
	}
	return rec.session(s.opts.IdleTimeout)
}

// view builds the public view of a record a Backend returned, or the
// error that decoding its values gave.
func (s *Store) view(r *backend.Record) (*Session, error) {
	rec := record{Record: *r}
	if err := s.decode(&rec); err != nil {
		return nil, err
	}
	return rec.session(s.opts.IdleTimeout), nil
}

// created calls Hooks.Created for sess, now durable as a session of a user
// since at (Unix nanoseconds: its creation, or the write that signed it in).
func (s *Store) created(ctx context.Context, sess *Session, at int64) {
	hook := s.opts.Hooks.Created
	if hook == nil || sess.UserID == "" {
		return
	}
	newDevice, err := s.isNewDevice(ctx, sess, at)
	if err != nil {
		s.log.Error("usersessions: Hooks.Created: looking up earlier devices", "user", sess.UserID, "err", err)
	}
	c := *sess
	c.Token = "" // hooks never see the secret
	s.runHook("Created", func() { hook(ctx, &c, newDevice) })
}

// isNewDevice reports whether no session of sess's user that signed in
// before sess (at), live or in history, has sess's device name.
//
// The list is read after sess is durable, so it may hold sessions that
// signed in after sess: two sign-ins at the same moment each see the
// other, and counting those suppressed the new device for both. Only
// sessions created before at count, or at the same moment with a smaller
// ID: of sign-ins at once, the first always reports the new device, and
// when each sees the others it alone does. (A session that signed in with
// Save counts from its creation, the only time its record keeps.)
func (s *Store) isNewDevice(ctx context.Context, sess *Session, at int64) (bool, error) {
	device := deviceKey(sess.UserAgent, s.opts.Privacy.NoUserAgent)
	id, ok := backend.ParseID(sess.ID)
	if device == "" || !ok {
		return true, nil
	}
	seenBefore := func(r *backend.Record) bool {
		earlier := cmp.Or(cmp.Compare(r.Created, at), bytes.Compare(r.ID[:], id[:])) < 0
		return r.ID != id && earlier && deviceKey(r.UserAgent, s.opts.Privacy.NoUserAgent) == device
	}
	seen := false
	err := s.b.ListByUser(ctx, sess.UserID, func(r *backend.Record, err error) {
		seen = seen || err == nil && seenBefore(r)
	})
	if err != nil || seen {
		return !seen, err
	}
	past, err := s.b.History(ctx, sess.UserID)
	for i := range past {
		if seenBefore(&past[i].Record) {
			return false, err
		}
	}
	return true, err
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
