package storetest

import (
	"errors"
	"slices"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Client input that reaches storage: text PostgreSQL's text columns refuse
// (bytes that are not UTF-8, which HTTP headers may carry, and NUL), and
// the empty user ID of anonymous sessions.

// A user agent with bytes that are not UTF-8 (obs-text, legal in a
// header), and what every backend keeps of it.
const (
	badUA       = "Mozilla/5.0 \xff\xfe"
	badUAStored = "Mozilla/5.0 \uFFFD"
)

// stored reads id's record straight from the Store's Backend: what a flush
// wrote, with no in-memory activity on top.
func (e *env) stored(s *usersessions.Store, id string) backend.Record {
	e.t.Helper()
	sid, ok := backend.ParseID(id)
	if !ok {
		e.t.Fatalf("bad ID %q", id)
	}
	var r backend.Record
	if err := s.Backend().Get(e.ctx, sid, &r, false); err != nil {
		e.t.Fatalf("Backend().Get(%s): %v", id, err)
	}
	return r
}

// testInvalidText: every client-supplied string is made valid UTF-8 (each
// run of bad bytes and each NUL becoming U+FFFD) before it reaches storage, the
// same on every backend. A browser with such a user agent signs in, its
// activity is written with everyone else's, cleanup runs, and a user ID or
// a value's key finds what it named in either form.
func testInvalidText(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) { o.History = time.Hour })
	bad, err := s.Create(e.ctx, "bob\xff", usersessions.Client{IP: clientA.IP, UserAgent: badUA})
	if err != nil {
		t.Fatalf("Create with a user agent that is not UTF-8: %v", err)
	}
	if bad.UserID != "bob\uFFFD" || bad.UserAgent != badUAStored {
		t.Fatalf("Create kept %q, %q; want %q, %q", bad.UserID, bad.UserAgent, "bob\uFFFD", badUAStored)
	}
	anon := e.createIn(s, "", clientA)
	signedIn, err := s.RotateUser(e.ctx, anon.Token, "bob\xff")
	if err != nil || signedIn.UserID != "bob\uFFFD" {
		t.Fatalf("RotateUser(bob\\xff) = %+v, %v", signedIn, err)
	}
	good, err := s.Create(e.ctx, "alice", clientA)
	if err != nil {
		t.Fatal(err)
	}
	good.UserID = "carol\x00"
	if err := s.Save(e.ctx, good); err != nil || good.UserID != "carol\uFFFD" {
		t.Fatalf("Save(UserID carol\\x00) = %v, UserID %q", err, good.UserID)
	}

	// One flush writes the bad client's activity and everyone else's.
	e.clock.Advance(time.Minute)
	touches := map[string]string{good.ID: clientB.UserAgent, bad.ID: "curl \uFFFD\uFFFD", signedIn.ID: badUAStored}
	for _, c := range []struct {
		token, ua string
	}{{good.Token, clientB.UserAgent}, {bad.Token, "curl \xc0\x00"}, {signedIn.Token, badUA}} {
		if _, err := s.LoadTouch(e.ctx, c.token, usersessions.Client{UserAgent: c.ua}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(e.ctx); err != nil {
		t.Fatalf("Flush with a user agent that is not UTF-8: %v", err)
	}
	for id, ua := range touches {
		if r := e.stored(s, id); r.LastSeen != e.clock.Now().UnixNano() || r.UserAgent != ua {
			t.Errorf("stored after Flush: LastSeen %v, user agent %q; want %v, %q", time.Unix(0, r.LastSeen), r.UserAgent, e.clock.Now(), ua)
		}
	}

	// The user ID finds its sessions in either form.
	for _, user := range []string{"bob\xff", "bob\uFFFD"} {
		if l, err := s.ListByUser(e.ctx, user); err != nil || len(l) != 2 {
			t.Errorf("ListByUser(%q) = %d sessions, %v; want 2", user, len(l), err)
		}
		n := 0
		for _, err := range s.All(e.ctx, usersessions.Filter{UserID: user}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 2 {
			t.Errorf("All(UserID %q) = %d sessions, want 2", user, n)
		}
	}

	// So does a value's key.
	bad.Set("k\xff", 1)
	if keys := bad.Keys(); !slices.Equal(keys, []string{"k\uFFFD"}) {
		t.Fatalf("Keys = %q", keys)
	}
	if err := s.Save(e.ctx, bad); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load(e.ctx, bad.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k\xff", "k\uFFFD"} {
		if v, ok := loaded.Get(k); !ok || v != 1 {
			t.Errorf("Get(%q) after Load = %v, %v", k, v, ok)
		}
	}
	loaded.Delete("k\xfe")
	if len(loaded.Keys()) != 0 {
		t.Errorf("End(k\\xfe) left %q", loaded.Keys())
	}

	// Ending them: whose session, why and by whom.
	if err := s.EndForUser(e.ctx, "bob\xff", signedIn.ID, usersessions.EndOptions{}); err != nil {
		t.Fatalf("EndForUser(bob\\xff) = %v", err)
	}
	e.clock.Advance(time.Second)
	if err := s.End(e.ctx, bad.ID, usersessions.EndOptions{Reason: "gone\xff", By: "admin:\xfe\x00"}); err != nil {
		t.Fatalf("End with a reason and By that are not UTF-8: %v", err)
	}
	past, err := s.History(e.ctx, "bob\xff")
	if err != nil || len(past) != 2 {
		t.Fatalf("History(bob\\xff) = %d entries, %v; want 2", len(past), err)
	}
	if p := past[0]; p.UserID != "bob\uFFFD" || p.Reason != "gone\uFFFD" || p.By != "admin:\uFFFD\uFFFD" || p.UserAgent != "curl \uFFFD\uFFFD" {
		t.Fatalf("History kept user %q, reason %q, by %q, user agent %q", p.UserID, p.Reason, p.By, p.UserAgent)
	}
	if n, err := s.EndUser(e.ctx, "carol\x00", "", usersessions.EndOptions{By: "\xff"}); n != 1 || err != nil {
		t.Fatalf("EndUser(carol\\x00) = %d, %v; want 1", n, err)
	}

	// Cleanup runs.
	e.createIn(s, "dave", usersessions.Client{UserAgent: badUA})
	e.clock.Advance(10 * time.Hour)
	if n, err := s.ClearExpired(e.ctx); n != 1 || err != nil {
		t.Fatalf("ClearExpired = %d, %v; want 1", n, err)
	}
}

// testEmptyUser: the empty user ID is no owner. Anonymous sessions are
// nobody's, so no call naming "" as the user lists, ends or reports them.
func testEmptyUser(e *env) {
	t := e.t
	s := e.s
	anon, other := e.create("", clientA), e.create("", clientB)
	e.warm(anon.Token)
	if err := s.EndForUser(e.ctx, "", anon.ID, usersessions.EndOptions{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf(`EndForUser("", an anonymous session) = %v, want ErrNotFound`, err)
	}
	if err := s.EndForUser(e.ctx, "", anon.ID, usersessions.EndOptions{Reason: usersessions.EndLogout}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf(`EndForUser("", an anonymous session) = %v, want ErrNotFound`, err)
	}
	if n, err := s.EndUser(e.ctx, "", "", usersessions.EndOptions{}); n != 0 || err != nil {
		t.Errorf(`EndUser("") = %d, %v; want 0`, n, err)
	}
	if n, err := s.EndUser(e.ctx, "", anon.ID, usersessions.EndOptions{}); n != 0 || err != nil {
		t.Errorf(`EndUser("") = %d, %v; want 0`, n, err)
	}
	if l, err := s.ListByUser(e.ctx, ""); len(l) != 0 || err != nil {
		t.Errorf(`ListByUser("") = %d sessions, %v`, len(l), err)
	}
	if _, n, err := s.CredentialsChanged(e.ctx, anon.Token); n != 0 || err != nil {
		t.Errorf("CredentialsChanged(an anonymous session) ended %d, %v; want 0", n, err)
	}
	if past, err := s.History(e.ctx, ""); len(past) != 0 || err != nil {
		t.Errorf(`History("") = %d entries, %v`, len(past), err)
	}
	if _, err := s.Load(e.ctx, other.Token); err != nil {
		t.Fatalf("another visitor's anonymous session died: %v", err)
	}
	if _, err := s.Get(e.ctx, anon.ID); err != nil {
		t.Fatalf("the anonymous session died: %v", err)
	}
}
