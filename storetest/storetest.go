// Package storetest is the contract every usersessions Backend passes: the
// Store's promises (tokens, values, revocation, expiry, listing, activity)
// checked through the public API, so that a Store means the same thing on
// the embedded bbolt file and on PostgreSQL.
//
// A backend's tests call Run with a function that opens a fresh, empty
// Store on that backend:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts *usersessions.Options) *usersessions.Store {
//			s, err := usersessions.Open(filepath.Join(t.TempDir(), "db"), opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/clocktest"
)

// Open returns a fresh, empty Store on the backend under test with opts
// applied, closed when the test ends. opts is never nil; it always sets a
// clock (Now) and disables background cleanup.
type Open func(t *testing.T, opts *usersessions.Options) *usersessions.Store

// Clock is a settable clock for Options.Now: Now reads it, Advance moves
// it on by a duration, Set puts it at a time. It is safe for concurrent
// use, and its zero value reads the zero time until Set. It is the clock
// every test of this module uses.
type Clock = clocktest.Clock

// NewClock returns a Clock at a fixed moment.
func NewClock() *Clock { return clocktest.New() }

var (
	clientA = usersessions.Client{IP: netip.MustParseAddr("203.0.113.7"), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
	clientB = usersessions.Client{IP: netip.MustParseAddr("2001:db8::1"), UserAgent: "curl/8.5.0"}
)

// env is one test's Store with its clock.
type env struct {
	t     *testing.T
	s     *usersessions.Store
	clock *Clock
	ctx   context.Context
	// with opens another fresh Store, with the test's options changed by
	// change.
	with func(change func(*usersessions.Options)) *usersessions.Store
}

func (e *env) create(user string, c usersessions.Client) *usersessions.Session {
	e.t.Helper()
	return e.createIn(e.s, user, c)
}

// createIn is create on s, a Store that e.with opened.
func (e *env) createIn(s *usersessions.Store, user string, c usersessions.Client) *usersessions.Session {
	e.t.Helper()
	sess, err := s.Create(e.ctx, user, c)
	if err != nil {
		e.t.Fatalf("Create(%q): %v", user, err)
	}
	return sess
}

// warm loads token until the Store serves it from its cache (Warm), so
// the tests of the cached mode exercise hits and not only misses (the
// cache admits entries asynchronously). Without a cache it does nothing.
func (e *env) warm(token string) {
	e.t.Helper()
	if e.s.Stats().Cached {
		Warm(e.t, e.s, token)
	}
}

// Run runs the contract suite, every test in both cache modes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"CreateLoad", testCreateLoad},
		{"MalformedTokens", testMalformedTokens},
		{"Values", testValues},
		{"SaveNeverResurrects", testSaveNeverResurrects},
		{"SaveConflict", testSaveConflict},
		{"Rotate", testRotate},
		{"Delete", testDelete},
		{"ListByUser", testListByUser},
		{"EndUser", testDeleteByUser},
		{"Expiry", testExpiry},
		{"IdleExpiry", testIdleExpiry},
		{"ClearExpiredManyBatches", testClearExpiredManyBatches},
		{"Touch", testTouch},
		{"All", testAll},
		{"AllFiltersAndPaging", testAllFiltersAndPaging},
		{"Closed", testClosed},
		{"RevokedNeverServed", testRevokedNeverServed},
		{"ExtremeLifetime", testExtremeLifetime},
		{"MaxPerUser", testMaxPerUser},
		{"MaxPerUserConcurrent", testMaxPerUserConcurrent},
		{"Privacy", testPrivacy},
		{"PrivacyEmbeddedIPv4", testPrivacyEmbeddedIPv4},
		{"InvalidText", testInvalidText},
		{"EmptyUser", testEmptyUser},
		{"NewDeviceConcurrent", testNewDeviceConcurrent},
		{"History", testHistory},
		{"CredentialsChanged", testCredentialsChanged},
	}
	tests = append(tests, signInTests...)
	for _, tc := range tests {
		for _, cached := range []bool{true, false} {
			name := tc.name + "/uncached"
			if cached {
				name = tc.name + "/cached"
			}
			t.Run(name, func(t *testing.T) {
				clock := NewClock()
				options := func() *usersessions.Options {
					return &usersessions.Options{
						NoCache:         !cached,
						Now:             clock.Now,
						CleanupInterval: -1,
						Lifetime:        10 * time.Hour,
						TouchInterval:   time.Hour,
					}
				}
				with := func(change func(*usersessions.Options)) *usersessions.Store {
					o := options()
					change(o)
					return open(t, o)
				}
				tc.fn(&env{t: t, s: open(t, options()), clock: clock, ctx: context.Background(), with: with})
			})
		}
	}
}

func testCreateLoad(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	raw, err := base64.RawURLEncoding.DecodeString(sess.Token)
	if err != nil || len(raw) != 48 || len(sess.Token) != usersessions.TokenLength || len(sess.ID) != backend.IDLength || strings.Contains(sess.Token, "=") {
		t.Fatalf("token %q (%d bytes, %v), ID %q: not the documented forms", sess.Token, len(raw), err, sess.ID)
	}
	for range 2 { // after warm, the second load is a cache hit in cached mode
		e.warm(sess.Token)
		got, err := e.s.Load(e.ctx, sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != sess.ID || got.UserID != "alice" || got.IP != clientA.IP || got.UserAgent != clientA.UserAgent || got.Token != "" {
			t.Fatalf("Load = %+v", got)
		}
		now := e.clock.Now()
		if !got.CreatedAt.Equal(now) || !got.LastSeen.Equal(now) || !got.ExpiresAt.Equal(now.Add(10*time.Hour)) {
			t.Fatalf("Load = %+v: want created and last seen now, expiring created + Lifetime", got)
		}
	}
	if st := e.s.Stats(); st.Cached && st.Hits == 0 {
		t.Errorf("cached mode served no hit: %+v", st)
	} else if !st.Cached && st.Hits+st.Misses != 0 {
		t.Errorf("uncached mode counted cache traffic: %+v", st)
	}
	byID, err := e.s.Get(e.ctx, sess.ID)
	if err != nil || byID.UserID != "alice" || byID.Token != "" {
		t.Fatalf("Get = %+v, %v", byID, err)
	}
	anon := e.create("", clientB)
	if got, err := e.s.Load(e.ctx, anon.Token); err != nil || got.UserID != "" {
		t.Fatalf("anonymous Load = %+v, %v", got, err)
	}
	if n, err := e.s.Count(e.ctx); n != 2 || err != nil {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func testMalformedTokens(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	bad := []string{"", "x", sess.Token[:len(sess.Token)-1], sess.Token + "x",
		sess.Token[:40] + "!" + sess.Token[41:]}
	// The same ID with another secret: the hash decides.
	other := []byte(sess.Token)
	other[len(other)-2] ^= 1
	if other[len(other)-2] == '-' || other[len(other)-2] == '_' {
		other[len(other)-2] = 'A'
	}
	bad = append(bad, string(other))
	random := make([]byte, 48)
	copy(random, "not a real session, but the right shape..........")
	n, idn := usersessions.TokenLength, backend.IDLength
	bad = append(bad,
		strings.Repeat("A", 1<<20),                   // huge
		strings.Repeat("!", n),                       // not base64
		sess.Token[:n-2]+"==",                        // padding
		base64.RawURLEncoding.EncodeToString(random), // unknown
		sess.Token[:idn]+strings.Repeat("A", n-idn),  // the right ID, a bad secret
		sess.ID,                   // the ID
		strings.Repeat("\x00", n), // NUL bytes
	)
	for _, tok := range bad {
		if _, err := e.s.Load(e.ctx, tok); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("Load(%.30q) = %v, want ErrNotFound", tok, err)
		}
		if _, err := e.s.Rotate(e.ctx, tok); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("Rotate(%.30q) = %v, want ErrNotFound", tok, err)
		}
	}
	for _, id := range []string{"", "x", "nope", strings.Repeat("A", idn+1), sess.Token, strings.Repeat("/", idn)} {
		if _, err := e.s.Get(e.ctx, id); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("Get(%.30q) = %v, want ErrNotFound", id, err)
		}
		if err := e.s.End(e.ctx, id, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("End(%.30q) = %v, want ErrNotFound", id, err)
		}
		if err := e.s.Touch(e.ctx, id, clientA); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("Touch(%.30q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := e.s.Load(e.ctx, sess.Token); err != nil {
		t.Fatalf("the real session was harmed: %v", err)
	}
}

func testValues(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	want := map[string]any{"s": "x", "n": 42, "f": 1.5, "b": true, "bytes": []byte{1, 2}, "list": []any{"a", int64(1)},
		"t": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "d": time.Minute}
	for k, v := range want {
		sess.Set(k, v)
	}
	if err := e.s.Save(e.ctx, sess); err != nil {
		t.Fatal(err)
	}
	e.warm(sess.Token)
	got, err := e.s.Load(e.ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		g, ok := got.Get(k)
		if !ok || fmt.Sprint(g) != fmt.Sprint(v) || fmt.Sprintf("%T", g) != fmt.Sprintf("%T", v) {
			t.Errorf("value %q = %#v (%v), want %#v", k, g, ok, v)
		}
	}
	// A caller's change does not reach another copy without Save.
	got.Set("s", "changed")
	again, _ := e.s.Load(e.ctx, sess.Token)
	if v, _ := again.Get("s"); v != "x" {
		t.Fatalf("an unsaved change leaked: %v", v)
	}
	type unregistered struct{ A int }
	got.Set("u", unregistered{1})
	if err := e.s.Save(e.ctx, got); !errors.Is(err, usersessions.ErrUnsupportedType) {
		t.Fatalf("Save(unregistered type) = %v", err)
	}
}

func testSaveNeverResurrects(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	loaded, _ := e.s.Load(e.ctx, sess.Token)
	if err := e.s.End(e.ctx, sess.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	loaded.Set("k", 1)
	if err := e.s.Save(e.ctx, loaded); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Save after End = %v, want ErrNotFound", err)
	}
	if _, err := e.s.Load(e.ctx, sess.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("the deleted session came back: %v", err)
	}
	if err := e.s.Touch(e.ctx, sess.ID, clientB); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch after End = %v", err)
	}
	if err := e.s.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.s.Count(e.ctx); n != 0 {
		t.Fatalf("Count = %d after the delete", n)
	}
}

func testSaveConflict(e *env) {
	t := e.t
	anon := e.create("", clientA)
	a, _ := e.s.Load(e.ctx, anon.Token)
	in, err := e.s.RotateUser(e.ctx, anon.Token, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a.Set("k", 1)
	if err := e.s.Save(e.ctx, a); !errors.Is(err, usersessions.ErrConflict) {
		t.Fatalf("a stale Save after a sign-in = %v, want ErrConflict", err)
	}
	got, err := e.s.Load(e.ctx, in.Token)
	if err != nil || got.UserID != "alice" {
		t.Fatalf("sign-in undone: %+v, %v", got, err)
	}
	got.UserID = "bob"
	if err := e.s.Save(e.ctx, got); err != nil {
		t.Fatalf("a Save that changes the user itself: %v", err)
	}
	got.Set("k", 2)
	if err := e.s.Save(e.ctx, got); err != nil {
		t.Fatalf("the next Save of that copy: %v", err)
	}
}

func testRotate(e *env) {
	t := e.t
	sess := e.create("", clientA)
	sess.Set("cart", "3 items")
	if err := e.s.Save(e.ctx, sess); err != nil {
		t.Fatal(err)
	}
	e.warm(sess.Token)
	e.clock.Advance(time.Hour)
	in, err := e.s.RotateUser(e.ctx, sess.Token, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != sess.ID || in.Token == sess.Token || in.UserID != "alice" {
		t.Fatalf("RotateUser = %+v", in)
	}
	if v, _ := in.Get("cart"); v != "3 items" {
		t.Fatalf("values lost at sign-in: %v", v)
	}
	if !in.ExpiresAt.Equal(e.clock.Now().Add(10 * time.Hour)) {
		t.Fatalf("lifetime not restarted at sign-in: %v", in.ExpiresAt)
	}
	if _, err := e.s.Load(e.ctx, sess.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("the old token still loads: %v", err)
	}
	if _, err := e.s.Rotate(e.ctx, sess.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("rotating the old token again: %v", err)
	}
	if list, _ := e.s.ListByUser(e.ctx, "alice"); len(list) != 1 {
		t.Fatalf("ListByUser(alice) after RotateUser = %d sessions, want 1", len(list))
	}
	again, err := e.s.Rotate(e.ctx, in.Token)
	if err != nil || again.UserID != "alice" || !again.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("Rotate = %+v, %v", again, err)
	}
	if _, err := e.s.Load(e.ctx, in.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("the rotated-away token still loads: %v", err)
	}
	if _, err := e.s.Load(e.ctx, again.Token); err != nil {
		t.Fatal(err)
	}
}

func testDelete(e *env) {
	t := e.t
	a := e.create("alice", clientA)
	b := e.create("bob", clientB)
	e.warm(a.Token)
	if err := e.s.EndForUser(e.ctx, "bob", a.ID, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("bob ending alice's session = %v, want ErrNotFound", err)
	}
	if _, err := e.s.Load(e.ctx, a.Token); err != nil {
		t.Fatalf("alice's session died from bob's attempt: %v", err)
	}
	if err := e.s.EndForUser(e.ctx, "alice", a.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Load(e.ctx, a.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Load after EndForUser: %v", err)
	}
	if err := e.s.End(e.ctx, a.ID, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("second End = %v", err)
	}
	if err := e.s.End(e.ctx, b.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.s.Count(e.ctx); n != 0 {
		t.Fatalf("Count = %d after ending everything", n)
	}
	if st := e.s.Stats(); st.Deletes != 2 || st.Creates != 2 {
		t.Errorf("Stats = %+v, want 2 creates and 2 deletes", st)
	}
}

func testListByUser(e *env) {
	t := e.t
	var ann []*usersessions.Session
	for range 3 {
		ann = append(ann, e.create("ann", clientA))
		e.clock.Advance(time.Minute)
		e.create("anne", clientB) // a prefix neighbour must not leak in
	}
	e.create("", clientA)
	e.clock.Advance(time.Minute)
	if err := e.s.Touch(e.ctx, ann[0].ID, clientB); err != nil {
		t.Fatal(err)
	}
	list, err := e.s.ListByUser(e.ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
		if s.UserID != "ann" || s.Token != "" {
			t.Errorf("listed %+v", s)
		}
	}
	if want := []string{ann[0].ID, ann[2].ID, ann[1].ID}; !slices.Equal(ids, want) {
		t.Fatalf("ListByUser = %v, want %v (most recent activity first)", ids, want)
	}
	if list[0].IP != clientB.IP || !list[0].LastSeen.Equal(e.clock.Now()) {
		t.Fatalf("fresh activity not reported: %+v", list[0])
	}
	if l, _ := e.s.ListByUser(e.ctx, ""); len(l) != 0 {
		t.Fatalf("anonymous has a list: %v", l)
	}
	if l, _ := e.s.ListByUser(e.ctx, "nobody"); len(l) != 0 {
		t.Fatalf("an unknown user has %d sessions", len(l))
	}
	// Expired sessions are not listed: at created + Lifetime + 1m30s,
	// only the newest is left.
	e.clock.Advance(10*time.Hour - 2*time.Minute - 30*time.Second)
	if l, _ := e.s.ListByUser(e.ctx, "ann"); len(l) != 1 || l[0].ID != ann[2].ID {
		t.Fatalf("after expiry ListByUser = %d sessions, want only the newest", len(l))
	}
}

func testDeleteByUser(e *env) {
	t := e.t
	keep := e.create("alice", clientA)
	var others []*usersessions.Session
	for range 4 {
		s := e.create("alice", clientB)
		e.warm(s.Token)
		others = append(others, s)
	}
	bob := e.create("bob", clientA)
	neighbour := e.create("alicex", clientA) // a prefix neighbour keeps its session
	n, err := e.s.EndUser(e.ctx, "alice", keep.ID, usersessions.EndOptions{})
	if err != nil || n != 4 {
		t.Fatalf("EndUser = %d, %v; want 4", n, err)
	}
	for _, s := range others {
		if _, err := e.s.Load(e.ctx, s.Token); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("ended session still loads: %v", err)
		}
	}
	for _, s := range []*usersessions.Session{keep, bob, neighbour} {
		if _, err := e.s.Load(e.ctx, s.Token); err != nil {
			t.Fatalf("a kept session died: %v", err)
		}
	}
	if n, _ := e.s.EndUser(e.ctx, "alice", "", usersessions.EndOptions{}); n != 1 {
		t.Fatalf("sign out everywhere removed %d, want 1", n)
	}
	if n, _ := e.s.EndUser(e.ctx, "nobody", "", usersessions.EndOptions{}); n != 0 {
		t.Fatalf("EndUser(nobody) = %d", n)
	}
	if c, _ := e.s.Count(e.ctx); c != 2 {
		t.Fatalf("Count = %d, want bob's and alicex's", c)
	}
}

func testExpiry(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	e.warm(sess.Token)
	e.clock.Advance(10*time.Hour - time.Second)
	if _, err := e.s.Load(e.ctx, sess.Token); err != nil {
		t.Fatalf("a second before its end: %v", err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.s.Load(e.ctx, sess.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("at its end: %v", err)
	}
	if l, _ := e.s.ListByUser(e.ctx, "alice"); len(l) != 0 {
		t.Fatalf("expired session listed")
	}
	if n, err := e.s.ClearExpired(e.ctx); n != 1 || err != nil {
		t.Fatalf("ClearExpired = %d, %v", n, err)
	}
	if n, _ := e.s.Count(e.ctx); n != 0 {
		t.Fatalf("Count = %d", n)
	}
}

// testIdleExpiry: the idle timeout ends a session without activity, even
// one whose last activity is still only in memory, and never one in use;
// the absolute lifetime ends even a busy one.
func testIdleExpiry(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) {
		o.Lifetime = 24 * time.Hour
		o.IdleTimeout = time.Hour
	})
	idle := e.createIn(s, "alice", clientA)
	busy := e.createIn(s, "alice", clientA)
	s.Load(e.ctx, idle.Token)
	for range 5 { // 50 minutes between requests keeps busy alive
		e.clock.Advance(50 * time.Minute)
		if err := s.Touch(e.ctx, busy.ID, clientA); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Load(e.ctx, idle.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("idle session loads after its idle timeout: %v", err)
	}
	if err := s.Touch(e.ctx, idle.ID, clientA); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch revived an idle session: %v", err)
	}
	got, err := s.Load(e.ctx, busy.Token)
	if err != nil {
		t.Fatalf("active session died: %v", err)
	}
	if want := e.clock.Now().Add(time.Hour); !got.Deadline().Equal(want) {
		t.Errorf("Deadline = %v, want %v", got.Deadline(), want)
	}
	if n, err := s.ClearExpired(e.ctx); err != nil || n != 1 {
		t.Fatalf("ClearExpired = %d, %v; want 1", n, err)
	}
	if c, _ := s.Count(e.ctx); c != 1 {
		t.Fatalf("Count = %d after cleanup, want 1", c)
	}
	// The absolute lifetime ends even a busy session.
	for range 4 {
		e.clock.Advance(55 * time.Minute)
		s.Touch(e.ctx, busy.ID, clientA)
	}
	e.clock.Advance(24 * time.Hour)
	if _, err := s.Load(e.ctx, busy.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("session outlived its lifetime: %v", err)
	}
	if err := s.Touch(e.ctx, busy.ID, clientA); err != nil && !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatal(err)
	}
	if n, err := s.ClearExpired(e.ctx); err != nil || n != 1 {
		t.Fatalf("second ClearExpired = %d, %v; want 1", n, err)
	}
	if n, err := s.ClearExpired(e.ctx); err != nil || n != 0 {
		t.Fatalf("third ClearExpired = %d, %v; want 0", n, err)
	}
	// Nor is an idle session revived when its last activity is still
	// pending in memory.
	late := e.createIn(s, "alice", clientA)
	e.clock.Advance(time.Minute)
	if err := s.Touch(e.ctx, late.ID, clientA); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if err := s.Touch(e.ctx, late.ID, clientA); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch revived an idle session with pending activity: %v", err)
	}
	if err := s.End(e.ctx, late.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testClearExpiredManyBatches(e *env) {
	t := e.t
	const n = 1100 // more than one cleanup batch
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				e.create(fmt.Sprint("u", i%7), clientA)
			}
		})
	}
	wg.Wait()
	live := e.create("alice", clientA)
	e.clock.Advance(10 * time.Hour)
	fresh := e.create("bob", clientA)
	_ = live
	got, err := e.s.ClearExpired(e.ctx)
	if err != nil || got != n+1 {
		t.Fatalf("ClearExpired = %d, %v; want %d", got, err, n+1)
	}
	if _, err := e.s.Load(e.ctx, fresh.Token); err != nil {
		t.Fatalf("a live session was cleared: %v", err)
	}
	if got, _ := e.s.ClearExpired(e.ctx); got != 0 {
		t.Fatalf("second ClearExpired = %d", got)
	}
	if list, _ := e.s.ListByUser(e.ctx, "bob"); len(list) != 1 {
		t.Fatalf("ListByUser after cleanup = %d, want 1", len(list))
	}
}

func testTouch(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	e.clock.Advance(time.Minute)
	got, err := e.s.LoadTouch(e.ctx, sess.Token, clientB)
	if err != nil || got.IP != clientB.IP || !got.LastSeen.Equal(e.clock.Now()) {
		t.Fatalf("LoadTouch = %+v, %v", got, err)
	}
	if err := e.s.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	byID, _ := e.s.Get(e.ctx, sess.ID)
	if byID == nil || !byID.LastSeen.Equal(e.clock.Now()) || byID.UserAgent != clientB.UserAgent {
		t.Fatalf("after Flush: %+v", byID)
	}
	if err := e.s.Touch(e.ctx, "AAAAAAAAAAAAAAAAAAAAAA", clientA); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch(unknown) = %v", err)
	}
}

func testAll(e *env) {
	t := e.t
	var alice []string
	for i := range 300 { // more than one page
		s := e.create("alice", usersessions.Client{IP: netip.AddrFrom4([4]byte{10, 0, byte(i % 3), 1})})
		alice = append(alice, s.ID)
	}
	e.create("bob", clientB)
	e.create("", clientA)
	// All lists in ID order: the bytes', which creation order only
	// approximates within a millisecond.
	slices.SortFunc(alice, func(a, b string) int {
		x, _ := backend.ParseID(a)
		y, _ := backend.ParseID(b)
		return bytes.Compare(x[:], y[:])
	})
	count := func(f usersessions.Filter) int {
		n := 0
		for s, err := range e.s.All(e.ctx, f) {
			if err != nil {
				t.Fatal(err)
			}
			if s.Token != "" {
				t.Fatal("All yields tokens")
			}
			n++
		}
		return n
	}
	for _, c := range []struct {
		f    usersessions.Filter
		want int
	}{
		{usersessions.Filter{}, 302},
		{usersessions.Filter{UserID: "alice"}, 300},
		{usersessions.Filter{Anonymous: true}, 1},
		{usersessions.Filter{IPPrefix: netip.MustParsePrefix("10.0.1.0/24")}, 100},
		{usersessions.Filter{IPPrefix: netip.MustParsePrefix("2001:db8::/32")}, 1},
		{usersessions.Filter{Search: "bo"}, 1},
		{usersessions.Filter{State: usersessions.ExpiredOnly}, 0},
		{usersessions.Filter{UserID: "alice", After: alice[149]}, 150},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("All(%+v) = %d sessions, want %d", c.f, got, c.want)
		}
	}
	for _, err := range e.s.All(e.ctx, usersessions.Filter{After: "bad"}) {
		if !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("bad cursor: %v", err)
		}
	}
}

// testAllFiltersAndPaging: All in ID order over several pages, each
// Filter field alone and together, and paging with After that visits each
// session once.
func testAllFiltersAndPaging(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) { o.Lifetime = time.Hour })
	e.createIn(s, "alice", usersessions.Client{IP: netip.MustParseAddr("10.0.0.1")}) // expires first
	e.clock.Advance(40 * time.Minute)
	for i := range 600 { // more than one page
		user := []string{"alice", "bob", ""}[i%3]
		e.createIn(s, user, usersessions.Client{IP: netip.AddrFrom4([4]byte{192, 168, byte(i % 2), byte(i)})})
	}
	e.clock.Advance(30 * time.Minute) // old is now expired
	collect := func(f usersessions.Filter) []*usersessions.Session {
		t.Helper()
		var out []*usersessions.Session
		for sess, err := range s.All(e.ctx, f) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sess)
		}
		return out
	}
	if got := collect(usersessions.Filter{}); len(got) != 601 {
		t.Fatalf("All = %d sessions, want 601", len(got))
	} else if !slices.IsSortedFunc(got, func(a, b *usersessions.Session) int {
		x, _ := backend.ParseID(a.ID)
		y, _ := backend.ParseID(b.ID)
		return bytes.Compare(x[:], y[:])
	}) {
		t.Fatal("All is not in ID order")
	}
	for _, c := range []struct {
		name string
		f    usersessions.Filter
		want int
	}{
		{"user", usersessions.Filter{UserID: "alice"}, 201},
		{"user active", usersessions.Filter{UserID: "alice", State: usersessions.ActiveOnly}, 200},
		{"expired", usersessions.Filter{State: usersessions.ExpiredOnly}, 1},
		{"anonymous", usersessions.Filter{Anonymous: true}, 200},
		{"prefix", usersessions.Filter{IPPrefix: netip.MustParsePrefix("192.168.1.0/24")}, 300},
		{"prefix and user", usersessions.Filter{UserID: "bob", IPPrefix: netip.MustParsePrefix("192.168.1.0/24")}, 100},
		{"search user", usersessions.Filter{Search: "BO"}, 200},
		{"search ip", usersessions.Filter{Search: "10.0.0"}, 1},
	} {
		if got := collect(c.f); len(got) != c.want {
			t.Errorf("%s: %d sessions, want %d", c.name, len(got), c.want)
		}
	}
	seen := map[string]bool{}
	after := ""
	for {
		n := 0
		for sess, err := range s.All(e.ctx, usersessions.Filter{After: after}) {
			if err != nil {
				t.Fatal(err)
			}
			if seen[sess.ID] {
				t.Fatalf("session %s listed twice", sess.ID)
			}
			seen[sess.ID] = true
			after = sess.ID
			if n++; n == 50 {
				break
			}
		}
		if n < 50 {
			break
		}
	}
	if len(seen) != 601 {
		t.Fatalf("paging saw %d sessions, want 601", len(seen))
	}
	for sess, err := range s.All(e.ctx, usersessions.Filter{After: "garbage"}) {
		if !errors.Is(err, usersessions.ErrNotFound) || sess != nil {
			t.Fatalf("bad cursor: %v, %v", sess, err)
		}
	}
}

func testClosed(e *env) {
	t := e.t
	sess := e.create("alice", clientA)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, ctx := e.s, e.ctx
	calls := map[string]error{}
	_, calls["Create"] = s.Create(ctx, "a", clientA)
	_, calls["Load"] = s.Load(ctx, sess.Token)
	_, calls["LoadTouch"] = s.LoadTouch(ctx, sess.Token, clientA)
	_, calls["Get"] = s.Get(ctx, sess.ID)
	calls["Save"] = s.Save(ctx, sess)
	calls["Touch"] = s.Touch(ctx, sess.ID, clientA)
	_, calls["Rotate"] = s.Rotate(ctx, sess.Token)
	calls["End"] = s.End(ctx, sess.ID, usersessions.EndOptions{})
	calls["EndForUser"] = s.EndForUser(ctx, "alice", sess.ID, usersessions.EndOptions{})
	_, calls["ListByUser"] = s.ListByUser(ctx, "alice")
	_, calls["EndUser"] = s.EndUser(ctx, "alice", "", usersessions.EndOptions{})
	_, calls["History"] = s.History(ctx, "alice")
	_, calls["ClearExpired"] = s.ClearExpired(ctx)
	_, calls["Count"] = s.Count(ctx)
	calls["Check"] = s.Check(ctx)
	calls["Flush"] = s.Flush(ctx)
	for _, err := range s.All(ctx, usersessions.Filter{}) {
		calls["All"] = err
	}
	for name, err := range calls {
		if !errors.Is(err, usersessions.ErrClosed) {
			t.Errorf("%s on a closed store = %v, want ErrClosed", name, err)
		}
	}
}

// testRevokedNeverServed races loads against revocation (End, EndUser,
// Rotate): once the revoking call has returned, no Load may succeed, cache
// or not (the cache-aside race of memcache.go).
func testRevokedNeverServed(e *env) {
	revokers := []struct {
		name   string
		revoke func(sess *usersessions.Session) error
	}{
		{"End", func(sess *usersessions.Session) error { return e.s.End(e.ctx, sess.ID, usersessions.EndOptions{}) }},
		{"EndUser", func(sess *usersessions.Session) error {
			_, err := e.s.EndUser(e.ctx, "alice", "", usersessions.EndOptions{})
			return err
		}},
		{"Rotate", func(sess *usersessions.Session) error { _, err := e.s.Rotate(e.ctx, sess.Token); return err }},
	}
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	for _, r := range revokers {
		for round := range rounds {
			if !e.revokeRound(r.name, round, r.revoke) {
				return
			}
		}
	}
}

// revokeRound is one round of testRevokedNeverServed: four goroutines load
// a fresh session's token while revoke runs. It reports whether the round
// passed.
func (e *env) revokeRound(name string, round int, revoke func(*usersessions.Session) error) bool {
	t := e.t
	sess := e.create("alice", clientA)
	e.warm(sess.Token)
	var revoked, stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for !stop.Load() {
				after := revoked.Load()
				var err error
				if g%2 == 0 { // both load paths: with and without a touch
					_, err = e.s.Load(e.ctx, sess.Token)
				} else {
					_, err = e.s.LoadTouch(e.ctx, sess.Token, clientA)
				}
				if after && err == nil {
					t.Errorf("%s, round %d: a load that started after the revocation returned succeeded", name, round)
					return
				}
				if err != nil && !errors.Is(err, usersessions.ErrNotFound) {
					t.Errorf("%s, round %d: %v", name, round, err)
					return
				}
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := revoke(sess); err != nil {
		t.Error(err)
	}
	revoked.Store(true)
	time.Sleep(2 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if name != "Rotate" {
		if err := e.s.Touch(e.ctx, sess.ID, clientA); !errors.Is(err, usersessions.ErrNotFound) {
			t.Errorf("%s, round %d: Touch after the revocation = %v", name, round, err)
		}
	}
	return !t.Failed()
}

// testExtremeLifetime: "no absolute limit" (math.MaxInt64) and "no idle
// limit" saturate instead of wrapping into the past.
func testExtremeLifetime(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) {
		o.Lifetime = math.MaxInt64
		o.IdleTimeout = math.MaxInt64
	})
	sess, err := s.Create(e.ctx, "alice", clientA)
	if err != nil {
		t.Fatal(err)
	}
	far := e.clock.Now().Add(200 * 365 * 24 * time.Hour)
	got, err := s.LoadTouch(e.ctx, sess.Token, clientB)
	if err != nil || !got.ExpiresAt.After(far) || !got.Deadline().After(far) {
		t.Fatalf("LoadTouch = %+v, %v", got, err)
	}
	if n, err := s.ClearExpired(e.ctx); n != 0 || err != nil {
		t.Fatalf("ClearExpired = %d, %v", n, err)
	}
	in, err := s.RotateUser(e.ctx, sess.Token, "bob")
	if err != nil || !in.ExpiresAt.After(far) {
		t.Fatalf("RotateUser = %+v, %v", in, err)
	}
	if l, err := s.ListByUser(e.ctx, "bob"); len(l) != 1 || err != nil {
		t.Fatalf("ListByUser = %v, %v", l, err)
	}
}
