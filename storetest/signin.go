package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/geotest"
)

// The sign-in check (Options.SignInCheck): what it knows of a user comes
// from the Backend's live sessions and History, so each Backend must keep
// what the rules read.

// signInTests join Run's list.
var signInTests = []struct {
	name string
	fn   func(e *env)
}{
	{"SignInNewDevice", testSignInNewDevice},
	{"SignInTravel", testSignInTravel},
	{"SignInMinDistance", testSignInMinDistance},
	{"SignInPrivacy", testSignInPrivacy},
	{"SignInRetention", testSignInRetention},
	{"SignInConcurrent", testSignInConcurrent},
	{"SignInOff", testSignInOff},
	{"SignInReport", testSignInReport},
}

// Addresses in places of a made-up GeoIP database: Amsterdam and Rotterdam
// are 57 km apart, Lisbon is about 1,860 km from Amsterdam.
var (
	inAmsterdam = netip.MustParseAddr("192.0.2.10")
	inRotterdam = netip.MustParseAddr("198.51.100.10")
	inLisbon    = netip.MustParseAddr("203.0.113.77")
)

// signInGeo opens that database.
func signInGeo(e *env) *usersessions.Geo {
	data := geotest.Build(e.t, "GeoIP2-City", map[string]geotest.Entry{
		"192.0.2.0/24": {City: "Amsterdam", Country: "Netherlands", CountryCode: "NL",
			Latitude: 52.37, Longitude: 4.89},
		"198.51.100.0/24": {City: "Rotterdam", Country: "Netherlands", CountryCode: "NL",
			Latitude: 51.92, Longitude: 4.48},
		"203.0.113.0/24": {City: "Lisbon", Country: "Portugal", CountryCode: "PT",
			Latitude: 38.72, Longitude: -9.14},
	})
	g, err := usersessions.OpenGeoBytes(data, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { g.Close() })
	return g
}

// markLog records Hooks.Suspicious calls.
type markLog struct {
	mu    sync.Mutex
	marks map[string][]usersessions.SignInMark
}

func (m *markLog) hook(ctx context.Context, sess *usersessions.Session, mark usersessions.SignInMark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[string][]usersessions.SignInMark{}
	}
	m.marks[sess.ID] = append(m.marks[sess.ID], mark)
}

func (m *markLog) calls(id string) []usersessions.SignInMark {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.marks[id]
}

// signInStore opens a Store with the check on, a long lifetime (a trip
// takes days) and a day of History.
func signInStore(e *env, log *markLog, change func(*usersessions.Options)) *usersessions.Store {
	return e.with(func(o *usersessions.Options) {
		o.Lifetime, o.History = 30*24*time.Hour, 24*time.Hour
		o.SignInCheck = &usersessions.SignInCheck{Geo: signInGeo(e)}
		o.Hooks.Suspicious = log.hook
		if change != nil {
			change(o)
		}
	})
}

// signIn creates a session of user from ip with ua.
func signIn(e *env, s *usersessions.Store, user string, ip netip.Addr, ua string) *usersessions.Session {
	e.t.Helper()
	return e.createIn(s, user, usersessions.Client{IP: ip, UserAgent: ua})
}

// wantMark checks the mark of sess: on the returned copy, on what the
// Store loads (so every instance sees it), in the hook (once), and its
// reasons; none means no mark at all.
func wantMark(e *env, s *usersessions.Store, log *markLog, sess *usersessions.Session, reasons ...usersessions.SignInReason) usersessions.SignInMark {
	e.t.Helper()
	stored, err := s.Get(e.ctx, sess.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	got, ok := sess.Suspicious()
	loaded, lok := stored.Suspicious()
	calls := log.calls(sess.ID)
	if len(reasons) == 0 {
		if ok || lok || len(calls) != 0 {
			e.t.Fatalf("sign-in marked %+v (stored %+v, hook %+v), want no mark", got, loaded, calls)
		}
		return got
	}
	if !ok || !lok || !slices.Equal(got.Reasons, reasons) || !slices.Equal(loaded.Reasons, reasons) {
		e.t.Fatalf("mark %+v (%v), stored %+v (%v), want reasons %q", got, ok, loaded, lok, reasons)
	}
	if len(calls) != 1 || !slices.Equal(calls[0].Reasons, reasons) {
		e.t.Fatalf("Suspicious hook calls %+v, want one with %q", calls, reasons)
	}
	if sess.Modified() {
		e.t.Fatal("the mark left the session modified: the middleware would write it again")
	}
	return got
}

func testSignInNewDevice(e *env) {
	var log markLog
	s := signInStore(e, &log, func(o *usersessions.Options) { o.SignInCheck.Geo = nil })
	// Sign-ins at one moment are ordered by ID (see eachEarlier in security.go): a
	// minute between them keeps the order of the calls.
	first := signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	wantMark(e, s, &log, first) // nothing to compare with: never marked
	e.clock.Advance(time.Minute)
	wantMark(e, s, &log, signIn(e, s, "alice", inLisbon, clientA.UserAgent))
	e.clock.Advance(time.Minute)
	phone := signIn(e, s, "alice", inAmsterdam, uaIPhone)
	m := wantMark(e, s, &log, phone, usersessions.SignInNewDevice)
	if m.Place != "" || !m.At.Equal(e.clock.Now()) {
		t := e.t
		t.Fatalf("mark without Geo: %+v", m)
	}
	// A sign-in by RotateUser and one by Save are checked too.
	e.clock.Advance(time.Minute)
	anon := signIn(e, s, "", inAmsterdam, clientB.UserAgent)
	rotated, err := s.RotateUser(e.ctx, anon.Token, "alice")
	if err != nil {
		e.t.Fatal(err)
	}
	wantMark(e, s, &log, rotated, usersessions.SignInNewDevice)
	e.clock.Advance(time.Minute)
	anon = signIn(e, s, "", inAmsterdam, uaIPhone+" x")
	anon.UserID = "bob"
	if err := s.Save(e.ctx, anon); err != nil {
		e.t.Fatal(err)
	}
	wantMark(e, s, &log, anon) // bob's first session
	// The marked session keeps its mark through a Save of its values.
	rotated.Set("cart", 3)
	if err := s.Save(e.ctx, rotated); err != nil {
		e.t.Fatal(err)
	}
	if got, _ := s.Get(e.ctx, rotated.ID); !hasMark(got) {
		e.t.Fatal("a Save of the returned session dropped the mark")
	}
}

func hasMark(s *usersessions.Session) bool {
	_, ok := s.Suspicious()
	return ok
}

func testSignInTravel(e *env) {
	t := e.t
	var log markLog
	s := signInStore(e, &log, nil)
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(time.Hour)
	lisbon := signIn(e, s, "alice", inLisbon, clientA.UserAgent)
	m := wantMark(e, s, &log, lisbon, usersessions.SignInNewCountry, usersessions.SignInImpossibleTravel)
	if m.Place != "Lisbon, Portugal" || m.CountryCode != "PT" || m.Previous != "Amsterdam, Netherlands" ||
		m.Since != time.Hour || m.DistanceKm < 1800 || m.DistanceKm > 1900 {
		t.Fatalf("mark %+v", m)
	}
	// Two days apart the trip is possible: only the country is new.
	signIn(e, s, "bob", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(48 * time.Hour)
	trip := signIn(e, s, "bob", inLisbon, clientA.UserAgent)
	m = wantMark(e, s, &log, trip, usersessions.SignInNewCountry)
	if m.Since != 48*time.Hour || m.Previous != "Amsterdam, Netherlands" {
		t.Fatalf("mark %+v", m)
	}
	// Back in Lisbon later: the country is known and the last session
	// was there.
	e.clock.Advance(time.Hour)
	wantMark(e, s, &log, signIn(e, s, "bob", inLisbon, clientA.UserAgent))
}

func testSignInMinDistance(e *env) {
	var log markLog
	s := signInStore(e, &log, nil)
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	// 57 km in a minute is 3,400 km/h, but under the minimum distance:
	// GeoIP places are that approximate.
	e.clock.Advance(time.Minute)
	wantMark(e, s, &log, signIn(e, s, "alice", inRotterdam, clientA.UserAgent))
	// A lower minimum makes it travel.
	var log2 markLog
	s2 := signInStore(e, &log2, func(o *usersessions.Options) { o.SignInCheck.MinDistanceKm = 10 })
	signIn(e, s2, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(time.Minute)
	wantMark(e, s2, &log2, signIn(e, s2, "alice", inRotterdam, clientA.UserAgent), usersessions.SignInImpossibleTravel)
}

func testSignInPrivacy(e *env) {
	t := e.t
	var log markLog
	s := signInStore(e, &log, func(o *usersessions.Options) { o.Privacy.IPPrefixV4 = 24 })
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(time.Hour)
	lisbon := signIn(e, s, "alice", inLisbon, clientA.UserAgent)
	m := wantMark(e, s, &log, lisbon, usersessions.SignInNewCountry, usersessions.SignInImpossibleTravel)
	if m.Place != "Lisbon, Portugal" {
		t.Fatalf("the truncated address did not resolve: %+v", m)
	}
	stored, _ := s.Get(e.ctx, lisbon.ID)
	if stored.IP != netip.MustParseAddr("203.0.113.0") {
		t.Fatalf("stored IP %v, want the /24", stored.IP)
	}
	for _, k := range stored.Keys() {
		v, _ := stored.Get(k)
		if text := fmt.Sprintf("%+v", v); strings.Contains(text, inLisbon.String()) {
			t.Fatalf("value %q keeps the exact address: %s", k, text)
		}
	}
}

func testSignInRetention(e *env) {
	t := e.t
	var log markLog
	s := signInStore(e, &log, nil)
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent) // stays live
	e.clock.Advance(48 * time.Hour)
	trip := signIn(e, s, "alice", inLisbon, clientA.UserAgent)
	wantMark(e, s, &log, trip, usersessions.SignInNewCountry)
	if err := s.End(e.ctx, trip.ID, usersessions.EndOptions{Reason: usersessions.EndLogout}); err != nil {
		t.Fatal(err)
	}
	// Ended, but in History: Portugal is known.
	e.clock.Advance(time.Hour)
	again := signIn(e, s, "alice", inLisbon, clientA.UserAgent)
	wantMark(e, s, &log, again)
	if err := s.End(e.ctx, again.ID, usersessions.EndOptions{Reason: usersessions.EndLogout}); err != nil {
		t.Fatal(err)
	}
	// Past History's retention, Portugal is forgotten.
	e.clock.Advance(25 * time.Hour)
	if _, err := s.ClearExpired(e.ctx); err != nil {
		t.Fatal(err)
	}
	if past, _ := s.History(e.ctx, "alice"); len(past) != 0 {
		t.Fatalf("History still holds %d entries", len(past))
	}
	wantMark(e, s, &log, signIn(e, s, "alice", inLisbon, clientA.UserAgent), usersessions.SignInNewCountry)
}

func testSignInConcurrent(e *env) {
	t := e.t
	var log markLog
	s := signInStore(e, &log, nil)
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(48 * time.Hour)
	const n = 4
	sessions := make([]*usersessions.Session, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sess, err := s.Create(e.ctx, "alice", usersessions.Client{IP: inLisbon, UserAgent: clientA.UserAgent})
			if err != nil {
				t.Error(err)
				return
			}
			sessions[i] = sess
		})
	}
	wg.Wait()
	marked := 0
	for _, sess := range sessions {
		if sess == nil {
			t.FailNow()
		}
		if hasMark(sess) {
			marked++
			wantMark(e, s, &log, sess, usersessions.SignInNewCountry)
		}
	}
	if marked == 0 {
		t.Fatalf("none of %d simultaneous sign-ins from a new country was marked", n)
	}
}

func testSignInOff(e *env) {
	var log markLog
	s := e.with(func(o *usersessions.Options) { o.Hooks.Suspicious = log.hook })
	signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(time.Minute)
	wantMark(e, s, &log, signIn(e, s, "alice", inLisbon, uaIPhone))
}

func testSignInReport(e *env) {
	t := e.t
	var log markLog
	var h hookLog
	var s *usersessions.Store
	s = signInStore(e, &log, func(o *usersessions.Options) { o.Hooks.Ended = h.hooks(e, &s).Ended })
	mine := signIn(e, s, "alice", inAmsterdam, clientA.UserAgent)
	e.clock.Advance(time.Hour)
	theirs := signIn(e, s, "alice", inLisbon, uaIPhone)
	wantMark(e, s, &log, theirs, usersessions.SignInNewDevice, usersessions.SignInNewCountry, usersessions.SignInImpossibleTravel)
	// Bob cannot end alice's session by naming it.
	e.clock.Advance(time.Minute)
	signIn(e, s, "bob", inAmsterdam, clientA.UserAgent)
	if err := s.EndForUser(e.ctx, "bob", theirs.ID, usersessions.EndOptions{Reason: usersessions.EndReported}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("another user's report: %v, want ErrNotFound", err)
	}
	if _, err := s.Load(e.ctx, theirs.Token); err != nil {
		t.Fatalf("another user's report ended the session: %v", err)
	}
	if err := s.EndForUser(e.ctx, "alice", theirs.ID, usersessions.EndOptions{Reason: usersessions.EndReported, By: mine.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(e.ctx, theirs.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("reported session still loads: %v", err)
	}
	if r := h.reason(theirs.ID); r != usersessions.EndReported {
		t.Fatalf("Ended hook reason %q, want reported", r)
	}
	past, err := s.History(e.ctx, "alice")
	if err != nil || len(past) != 1 || past[0].Reason != usersessions.EndReported || past[0].By != mine.ID {
		t.Fatalf("History = %+v, %v", past, err)
	}
}
