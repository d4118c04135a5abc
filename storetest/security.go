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
)

// The account-security rules (Options.MaxPerUser, Privacy, Hooks, History
// and CredentialsChanged) through the public API: each Backend keeps them
// in the transaction of the change.

const uaIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"

// hookLog records the Store's hook calls.
type hookLog struct {
	mu      sync.Mutex
	created []string
	ended   map[string]usersessions.EndReason
}

func (h *hookLog) hooks(e *env, s **usersessions.Store) usersessions.Hooks {
	h.ended = map[string]usersessions.EndReason{}
	return usersessions.Hooks{
		Created: func(ctx context.Context, sess *usersessions.Session, newDevice bool) {
			if _, err := (*s).Get(ctx, sess.ID); err != nil {
				e.t.Errorf("Created hook before the session is durable: %v", err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			d := "old"
			if newDevice {
				d = "new"
			}
			h.created = append(h.created, sess.UserID+"/"+d)
		},
		Ended: func(ctx context.Context, sess *usersessions.Session, reason usersessions.EndReason) {
			if _, err := (*s).Get(ctx, sess.ID); !errors.Is(err, usersessions.ErrNotFound) {
				e.t.Errorf("Ended hook while the session is still there: %v", err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.ended[sess.ID] = reason
		},
	}
}

func (h *hookLog) reason(id string) usersessions.EndReason {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ended[id]
}

func testMaxPerUser(e *env) {
	t := e.t
	var h hookLog
	var s *usersessions.Store
	s = e.with(func(o *usersessions.Options) {
		o.MaxPerUser, o.History, o.Hooks = 3, time.Hour, h.hooks(e, &s)
	})
	var list []*usersessions.Session
	for range 3 {
		sess, err := s.Create(e.ctx, "alice", clientA)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, sess)
		e.clock.Advance(time.Minute)
	}
	// The oldest becomes the most recent through activity in memory.
	if _, err := s.LoadTouch(e.ctx, list[0].Token, clientA); err != nil {
		t.Fatal(err)
	}
	fourth, err := s.Create(e.ctx, "alice", clientB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(e.ctx, list[1].Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("the least recently active session still loads: %v", err)
	}
	for _, sess := range []*usersessions.Session{list[0], list[2], fourth} {
		if _, err := s.Load(e.ctx, sess.Token); err != nil {
			t.Fatalf("a more recent session was evicted: %v", err)
		}
	}
	if r := h.reason(list[1].ID); r != usersessions.EndLimit {
		t.Fatalf("Ended hook: %q, want limit", r)
	}
	past, err := s.History(e.ctx, "alice")
	if err != nil || len(past) != 1 || past[0].ID != list[1].ID || past[0].Reason != usersessions.EndLimit || past[0].By != fourth.ID {
		t.Fatalf("History = %+v, %v", past, err)
	}
	// RotateUser gives alice one more session: the limit holds.
	anon, _ := s.Create(e.ctx, "", clientA)
	if _, err := s.RotateUser(e.ctx, anon.Token, "alice"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListByUser(e.ctx, "alice"); len(l) != 3 {
		t.Fatalf("alice has %d live sessions, want 3", len(l))
	}
	if len(h.created) != 5 {
		t.Fatalf("Created ran %d times, want 5", len(h.created))
	}
}

func testMaxPerUserConcurrent(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) { o.MaxPerUser = 3; o.Now = nil })
	worst := watchWorst(e.ctx, s, "alice")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 6 {
				if _, err := s.Create(e.ctx, "alice", clientA); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	most := worst()
	if l, _ := s.ListByUser(e.ctx, "alice"); len(l) != 3 || most > 3 {
		t.Fatalf("alice has %d sessions, %d at worst; want 3, never more", len(l), most)
	}
}

func testPrivacy(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) {
		o.History = time.Hour
		o.Privacy = usersessions.Privacy{IPPrefixV4: 24, IPPrefixV6: 48, NoUserAgent: true}
	})
	a, err := s.Create(e.ctx, "alice", usersessions.Client{IP: netip.MustParseAddr("81.2.69.142"), UserAgent: uaIPhone})
	if err != nil {
		t.Fatal(err)
	}
	if a.IP != netip.MustParseAddr("81.2.69.0") || a.UserAgent != "Safari on iPhone" {
		t.Fatalf("Create kept %v, %q", a.IP, a.UserAgent)
	}
	got, err := s.LoadTouch(e.ctx, a.Token, usersessions.Client{IP: netip.MustParseAddr("2001:db8:abcd:1234::9")})
	if err != nil || got.IP != netip.MustParseAddr("2001:db8:abcd::") {
		t.Fatalf("LoadTouch = %+v, %v", got, err)
	}
	if err := s.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.End(e.ctx, a.ID, usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	past, _ := s.History(e.ctx, "alice")
	if len(past) != 1 || past[0].IP != netip.MustParseAddr("2001:db8:abcd::") || past[0].UserAgent != "Safari on iPhone" {
		t.Fatalf("History = %+v", past)
	}
}

func testHistory(e *env) {
	t := e.t
	var h hookLog
	var s *usersessions.Store
	s = e.with(func(o *usersessions.Options) {
		o.IdleTimeout, o.History, o.Hooks = 2*time.Hour, 24*time.Hour, h.hooks(e, &s)
		o.TouchInterval = time.Minute // a shared backend's cleanup waits 2 intervals past an idle deadline
	})
	create := func() *usersessions.Session {
		sess, err := s.Create(e.ctx, "alice", clientA)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	me, revoked, other, admin := create(), create(), create(), create()
	steps := []func() error{
		func() error { return s.EndForUser(e.ctx, "alice", revoked.ID, usersessions.EndOptions{}) },
		func() error {
			return s.End(e.ctx, admin.ID, usersessions.EndOptions{Reason: usersessions.EndAdmin, By: "admin:root"})
		},
		func() error { _, err := s.EndUser(e.ctx, "alice", me.ID, usersessions.EndOptions{}); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	idle := create()
	e.clock.Advance(time.Hour)
	if _, err := s.LoadTouch(e.ctx, me.Token, clientA); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * time.Minute)
	if n, err := s.ClearExpired(e.ctx); n != 1 || err != nil {
		t.Fatalf("ClearExpired = %d, %v", n, err)
	}
	past, err := s.History(e.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range past {
		got = append(got, string(p.Reason)+" by "+p.By)
	}
	if want := []string{"idle by ", "others by " + me.ID, "admin by admin:root", "revoked by "}; !slices.Equal(got, want) {
		t.Fatalf("History = %q, want %q", got, want)
	}
	for id, r := range map[string]usersessions.EndReason{revoked.ID: usersessions.EndRevoked, admin.ID: usersessions.EndAdmin,
		other.ID: usersessions.EndOthers, idle.ID: usersessions.EndIdle} {
		if h.reason(id) != r {
			t.Errorf("Ended hook for %s: %q, want %q", id, h.reason(id), r)
		}
	}
	e.clock.Advance(25 * time.Hour)
	if _, err := s.ClearExpired(e.ctx); err != nil {
		t.Fatal(err)
	}
	if past, _ := s.History(e.ctx, "alice"); len(past) != 1 || past[0].ID != me.ID || past[0].Reason != usersessions.EndExpired {
		t.Fatalf("History after Options.History = %+v, want only me's expiry", past)
	}
}

func testCredentialsChanged(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) { o.History = time.Hour })
	me, _ := s.Create(e.ctx, "alice", clientA)
	var others []*usersessions.Session
	for range 2 {
		o, _ := s.Create(e.ctx, "alice", clientB)
		s.Load(e.ctx, o.Token)
		others = append(others, o)
	}
	fresh, n, err := s.CredentialsChanged(e.ctx, me.Token)
	if err != nil || n != 2 || fresh.ID != me.ID || fresh.Token == me.Token {
		t.Fatalf("CredentialsChanged = %+v, %d, %v", fresh, n, err)
	}
	for _, old := range append(others, me) {
		if _, err := s.Load(e.ctx, old.Token); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("an old token still loads: %v", err)
		}
	}
	if past, _ := s.History(e.ctx, "alice"); len(past) != 2 || past[0].Reason != usersessions.EndCredentials {
		t.Fatalf("History = %+v", past)
	}
}

// testNewDeviceConcurrent: sign-ins at the same moment from a device the
// user never used (Create and RotateUser, several at once, many rounds):
// at least one of them reports newDevice, so the "new sign-in" email is
// never suppressed. Each sees the others once they are durable; one that
// signed in after it must not count as earlier. (More than one may report
// it, when one lists the user's sessions before an earlier one is durable.)
func testNewDeviceConcurrent(e *env) {
	t := e.t
	var h hookLog
	var s *usersessions.Store
	s = e.with(func(o *usersessions.Options) { o.Hooks = h.hooks(e, &s) })
	const rounds, creates, rotates = 25, 3, 2
	for round := range rounds {
		user := fmt.Sprint("user", round)
		var anon []*usersessions.Session
		for range rotates {
			anon = append(anon, e.createIn(s, "", clientA))
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range creates {
			wg.Go(func() {
				<-start
				if _, err := s.Create(e.ctx, user, clientA); err != nil {
					t.Error(err)
				}
			})
		}
		for _, a := range anon {
			wg.Go(func() {
				<-start
				if _, err := s.RotateUser(e.ctx, a.Token, user); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		e.clock.Advance(time.Millisecond)
	}
	newDevices := map[string]int{}
	for _, c := range h.created {
		if strings.HasSuffix(c, "/new") {
			newDevices[strings.TrimSuffix(c, "/new")]++
		}
	}
	if len(h.created) != rounds*(creates+rotates) {
		t.Fatalf("Created ran %d times, want %d", len(h.created), rounds*(creates+rotates))
	}
	for round := range rounds {
		if n := newDevices[fmt.Sprint("user", round)]; n == 0 {
			t.Errorf("round %d: none of %d simultaneous sign-ins from a new device reported newDevice", round, creates+rotates)
		}
	}
}

// testPrivacyEmbeddedIPv4: IPPrefixV4 also applies to the IPv4 address
// inside an IPv6 one (6to4, Teredo, IPv4-mapped and -compatible; the one
// Geo.Location looks up), at every entry point: what is kept is that IPv4
// address's prefix, never the exact address.
func testPrivacyEmbeddedIPv4(e *env) {
	t := e.t
	s := e.with(func(o *usersessions.Options) { o.Privacy = usersessions.Privacy{IPPrefixV4: 24} })
	for _, c := range []struct{ in, want string }{
		{"2002:cb00:714d::1", "203.0.113.0"},                    // 6to4 of 203.0.113.77
		{"2002:cb00:714d:1:2:3:4:5", "203.0.113.0"},             // its host part goes too
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "65.54.227.0"}, // Teredo, server 65.54.227.120
		{"::ffff:203.0.113.77", "203.0.113.0"},                  // IPv4-mapped
		{"::cb00:714d", "203.0.113.0"},                          // IPv4-compatible
		{"2001:db8::1", "2001:db8::1"},                          // no IPv4 inside: IPPrefixV6 (0) applies
		{"::1", "::1"},                                          // loopback, not an IPv4 address
	} {
		client := usersessions.Client{IP: netip.MustParseAddr(c.in), UserAgent: "curl/8.5.0"}
		want := netip.MustParseAddr(c.want)
		sess, err := s.Create(e.ctx, "alice", client)
		if err != nil || sess.IP != want {
			t.Errorf("Create from %s kept %v, %v; want %v", c.in, sess.IP, err, want)
			continue
		}
		other, _ := s.Create(e.ctx, "alice", clientB)
		if got, err := s.LoadTouch(e.ctx, other.Token, client); err != nil || got.IP != want {
			t.Errorf("LoadTouch from %s kept %v, %v; want %v", c.in, got.IP, err, want)
		}
		third, _ := s.Create(e.ctx, "alice", clientB)
		if err := s.Touch(e.ctx, third.ID, client); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(e.ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{other.ID, third.ID} {
			if r := e.stored(s, id); r.IP != want {
				t.Errorf("Touch from %s stored %v, want %v", c.in, r.IP, want)
			}
		}
	}
}
