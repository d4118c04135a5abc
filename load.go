package usersessions

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usersessions/usersessions/backend"
)

// Reading sessions: by token (Load, LoadTouch), by ID (Get), by user
// (ListByUser), and the public view of a stored record.

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

// Load returns the session that token belongs to. It fails with ErrNotFound
// for a token that is malformed, unknown, expired or revoked; a malformed one
// (wrong length, not base64url) is refused before any lookup. The caller
// owns the result: changes reach the store only through Save.
func (s *Store) Load(ctx context.Context, token string) (*Session, error) {
	if len(token) != TokenLength {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if e := s.cacheByToken(token); e != nil {
		sess, err := s.live(e.id, &e.act, e.sess.clone())
		if err == nil || !s.shared {
			s.countHit(token, err == nil)
			return sess, err
		}
		// A shared backend: another instance may have seen activity
		// this one has not. Ask the backend before calling it idle.
	}
	id, sec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	sess, err := s.load(ctx, id, &sec, token)
	if err != nil {
		return nil, err
	}
	s.loads[token[TokenLength-1]%16].n.Add(1) // a random character: spreads the stripes
	return sess, nil
}

// countHit counts a hit of the token fast path: as a hit and a load with
// one atomic add when the session loaded, else as a hit alone.
func (s *Store) countHit(token string, loaded bool) {
	i := token[TokenLength-1] % 16
	if loaded {
		s.hitLoads[i].n.Add(1)
	} else {
		s.cache.hits[i].n.Add(1)
	}
}

// LoadTouch is Load followed by Touch with the client c, in one pass: one
// token check, one look at the clock and one at the in-memory activity. It is
// what a middleware does on every request (httpx does), and the session it
// returns already shows this request's activity. Errors as for Load.
func (s *Store) LoadTouch(ctx context.Context, token string, c Client) (*Session, error) {
	if len(token) != TokenLength {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.privacy {
		c = s.private(c)
	}
	if e := s.cacheByToken(token); e != nil {
		// The common case: the session is cached and has an activity
		// entry to record this request in.
		if a := s.active.touch(e.id, &e.act, s.clock, c, s.opts.IdleTimeout); a != nil {
			sess := e.sess.clone()
			a.snapshot().overlay(sess)
			s.countHit(token, true)
			return sess, nil
		}
	}
	// The full path: a miss, the uncached mode, or no activity entry yet.
	id, sec, ok := parseToken(token)
	if !ok {
		return nil, ErrNotFound
	}
	sess, err := s.loadAndTouch(ctx, id, &sec, token, c)
	if err == nil {
		s.loads[token[TokenLength-1]%16].n.Add(1)
	}
	return sess, err
}

// addRetries bounds how often loadAndTouch reads a session again because a
// removal in its activity shard raced it. Each retry needs a removal in the
// same 1/1024th of the table within one read; past the bound the request's
// activity goes unrecorded rather than the request waiting.
const addRetries = 16

// loadAndTouch loads the live session id (checking the token's secret sec
// when given) and records activity c on it, creating its activity entry.
// The entry is created only if no removal (an End, a sign-in) came
// between the read and the creation: a late touch must never bring a
// deleted session's activity back, which would keep a revoked session
// "alive" for Touch.
func (s *Store) loadAndTouch(ctx context.Context, id backend.ID, sec *secret, token string, c Client) (*Session, error) {
	for range addRetries {
		since := s.active.removals(id) // before the read
		sess, err := s.load(ctx, id, sec, token)
		if err != nil {
			return nil, err
		}
		if e := s.active.touch(id, nil, s.clock, c, s.opts.IdleTimeout); e != nil {
			e.snapshot().overlay(sess)
			return sess, nil
		}
		d := sess.deadline()
		now := s.clock.nowFor(d)
		if now >= d {
			return nil, ErrNotFound
		}
		if testHookBeforeActivityAdd != nil {
			testHookBeforeActivityAdd()
		}
		stored := activity{lastSeen: sess.LastSeen.UnixNano(), client: &clientInfo{ip: sess.IP, userAgent: sess.UserAgent}}
		if s.active.add(id, now, c, stored, sess.ExpiresAt.UnixNano(), since) {
			if a, ok := s.active.lookup(id); ok {
				a.overlay(sess)
			}
			return sess, nil
		}
	}
	return s.load(ctx, id, sec, token)
}

// testHookBeforeActivityAdd, when set by a test, runs between reading a
// session and adding its activity entry: the window a concurrent End
// must not fall into unnoticed.
var testHookBeforeActivityAdd func()

func (s *Store) cacheByToken(token string) *cacheEntry {
	if s.cache == nil {
		return nil
	}
	return s.cache.getByToken(token)
}

// Get returns the session with the public ID id (for views and admin
// tools: it needs no token and returns none). Errors as for Load.
func (s *Store) Get(ctx context.Context, id string) (*Session, error) {
	sid, ok := backend.ParseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.load(ctx, sid, nil, "")
}

// load returns a caller-owned copy of the live session id, checking the
// token's secret when one is given (token is its text, for the cache).
func (s *Store) load(ctx context.Context, id backend.ID, sec *secret, token string) (*Session, error) {
	if s.cache != nil {
		if e := s.cache.get(id); e != nil {
			if sec != nil && !e.verify(sec) {
				return nil, ErrNotFound
			}
			sess, err := s.live(id, &e.act, e.sess.clone())
			if err == nil || !s.shared {
				return sess, err
			}
			// Maybe active on another instance: read what it wrote.
		}
	}
	var t ticket
	if s.cache != nil {
		t = s.cache.ticket(id) // before the read: see memcache.go
	}
	var r record
	if err := s.get(ctx, id, &r); err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.log.Error("usersessions: unreadable session record", "id", id.String(), "err", err)
		}
		return nil, s.closedErr(err)
	}
	if sec != nil {
		if h := sec.hash(); subtle.ConstantTimeCompare(r.Hash[:], h[:]) != 1 {
			return nil, ErrNotFound
		}
	}
	if err := s.decode(&r); err != nil {
		s.log.Error("usersessions: unreadable session values", "id", id.String(), "err", err)
		return nil, err
	}
	sess := r.session(s.opts.IdleTimeout)
	if s.cache != nil {
		// Cached even when past its stored deadline: liveness is decided
		// by live, on every hit, with the in-memory activity applied (a busy
		// session's stored LastSeen may be older than its idle timeout).
		size := len(r.UserID) + len(r.UserAgent) + len(r.Values) + 64
		s.cache.put(id, t, r.Hash, token, sess, size) // caches a copy; sess is now shared
	}
	return s.live(id, nil, sess)
}

// recordGetter is the embedded backend's load path: it decodes straight
// into a record, values and ID text included, which a backend.Record
// cannot carry. A Store uses it when its Backend has it.
type recordGetter interface {
	getRecord(ctx context.Context, id backend.ID, r *record, values bool) error
}

// get reads the record of id, values included (decoded unless the Backend
// left them encoded: see decode).
func (s *Store) get(ctx context.Context, id backend.ID, r *record) error {
	if s.getter != nil {
		return s.getter.getRecord(ctx, id, r, true)
	}
	return s.b.Get(ctx, id, &r.Record, true)
}

// closedErr maps a Backend's error after Close to ErrClosed.
func (s *Store) closedErr(err error) error {
	if s.closed.Load() && !errors.Is(err, ErrNotFound) {
		return ErrClosed
	}
	return err
}

// live overlays pending activity on sess and checks that it has not
// expired. memo is the cache entry's memo of the activity entry, or nil.
func (s *Store) live(id backend.ID, memo *activityMemo, sess *Session) (*Session, error) {
	if e := s.active.find(id, memo); e != nil {
		e.snapshot().overlay(sess)
	}
	if d := sess.deadline(); s.clock.nowFor(d) >= d {
		return nil, ErrNotFound
	}
	return sess, nil
}

// ListByUser returns userID's active sessions, most recent activity first,
// without tokens. It reads only that user's index entries and records. An
// empty userID (anonymous) has no list. userID is taken as SanitizeText
// makes it, as it was when stored.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]*Session, error) {
	if userID == "" {
		return nil, nil
	}
	userID = SanitizeText(userID)
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var list []*Session
	now := unixNano(s.now())
	err := s.b.ListByUser(ctx, userID, func(r *backend.Record, err error) {
		// A damaged record or index entry must not take the user's
		// whole list down: skip it, log it, let Check report it.
		var sess *Session
		if err == nil {
			sess, err = s.view(r)
		}
		if err != nil {
			s.log.Error("usersessions: ListByUser skips a session", "user", userID, "err", err)
			return
		}
		if a, ok := s.active.lookup(r.ID); ok {
			a.overlay(sess)
		}
		if sess.Active(now) {
			list = append(list, sess)
		}
	})
	if err != nil {
		return nil, s.closedErr(err)
	}
	slices.SortFunc(list, func(a, b *Session) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// decode decodes r's values if the Backend left them encoded.
func (s *Store) decode(r *record) error {
	if r.decoded != nil || len(r.Values) <= 1 {
		return nil
	}
	var err error
	r.decoded, err = decodeValues(r.Values)
	if err != nil {
		return fmt.Errorf("session %s: %w", r.ID, err)
	}
	return nil
}
