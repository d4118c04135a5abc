package usersessions

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	uaSafariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	uaChromeWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// hookLog records hook calls.
type hookLog struct {
	mu      sync.Mutex
	created []string // "user/ID/newDevice"
	ended   map[string]EndReason
}

func (h *hookLog) hooks(s **Store, t *testing.T) Hooks {
	h.ended = map[string]EndReason{}
	return Hooks{
		Created: func(ctx context.Context, sess *Session, newDevice bool) {
			if sess.Token != "" {
				t.Error("a hook saw a token")
			}
			// Durable before the hook: the session can be read.
			if _, err := (*s).Get(ctx, sess.ID); err != nil {
				t.Errorf("Created hook: the session is not there yet: %v", err)
			}
			h.mu.Lock()
			nd := "old"
			if newDevice {
				nd = "new"
			}
			h.created = append(h.created, sess.UserID+"/"+nd)
			h.mu.Unlock()
		},
		Ended: func(ctx context.Context, sess *Session, reason EndReason) {
			if _, err := (*s).Get(ctx, sess.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Ended hook: the session is still there: %v", err)
			}
			h.mu.Lock()
			h.ended[sess.ID] = reason
			h.mu.Unlock()
		},
	}
}

func (h *hookLog) reason(id string) EndReason {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ended[id]
}

func TestMaxPerUserEndsLeastRecentlyActive(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		clock := newFakeClock()
		var s *Store
		var h hookLog
		s = openTest(t, cached, &Options{Now: clock.Now, MaxPerUser: 3, History: time.Hour, Hooks: h.hooks(&s, t)})
		var list []*Session
		for range 3 {
			list = append(list, mustCreate(t, s, "alice", clientA))
			clock.Advance(time.Minute)
		}
		// The oldest becomes the most recent by activity in memory only.
		if _, err := s.LoadTouch(ctx, list[0].Token, clientA); err != nil {
			t.Fatal(err)
		}
		for _, sess := range list {
			s.Load(ctx, sess.Token)
		}
		settle(s)
		fourth := mustCreate(t, s, "alice", clientB)
		if _, err := s.Load(ctx, list[1].Token); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the least recently active session still loads: %v", err)
		}
		for _, sess := range []*Session{list[0], list[2], fourth} {
			if _, err := s.Load(ctx, sess.Token); err != nil {
				t.Fatalf("a more recent session was evicted: %v", err)
			}
		}
		if r := h.reason(list[1].ID); r != EndLimit {
			t.Fatalf("Ended hook reason %q, want limit", r)
		}
		past, err := s.History(ctx, "alice")
		if err != nil || len(past) != 1 || past[0].ID != list[1].ID || past[0].Reason != EndLimit || past[0].By != fourth.ID {
			t.Fatalf("History = %+v, %v", past, err)
		}
		// A sign-in by RotateUser and a Save that sets the user count too.
		anon := mustCreate(t, s, "", clientA)
		if _, err := s.RotateUser(ctx, anon.Token, "alice"); err != nil {
			t.Fatal(err)
		}
		other := mustCreate(t, s, "", clientA)
		loaded, _ := s.Load(ctx, other.Token)
		loaded.UserID = "alice"
		if err := s.Save(ctx, loaded); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.ListByUser(ctx, "alice"); len(l) != 3 {
			t.Fatalf("alice has %d live sessions, want 3", len(l))
		}
		if got := len(h.created); got != 6 {
			t.Fatalf("Created hook ran %d times, want 6 (4 creates, a sign-in, a save)", got)
		}
	})
}

// Concurrent sign-ins never leave a user with more than MaxPerUser live
// sessions, not even for a moment.
func TestMaxPerUserConcurrent(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, &Options{MaxPerUser: 3})
		stop := make(chan struct{})
		var worst atomic.Int64
		var watch sync.WaitGroup
		watch.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				l, _ := s.ListByUser(ctx, "alice")
				if n := int64(len(l)); n > worst.Load() {
					worst.Store(n)
				}
			}
		})
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 8 {
					if _, err := s.Create(ctx, "alice", clientA); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		watch.Wait()
		l, _ := s.ListByUser(ctx, "alice")
		if len(l) != 3 || worst.Load() > 3 {
			t.Fatalf("alice has %d sessions at the end, %d at worst; want 3 and at most 3", len(l), worst.Load())
		}
	})
}

func TestPrivacyKeepsNoFullAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	s, err := Open(path, &Options{CleanupInterval: -1, History: time.Hour,
		Privacy: Privacy{IPPrefixV4: 24, IPPrefixV6: 48, NoUserAgent: true}})
	if err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParseAddr("81.2.69.142")
	v6 := netip.MustParseAddr("2001:db8:abcd:1234:5678:9abc:def0:1234")
	a, err := s.Create(ctx, "alice", Client{IP: v4, UserAgent: uaSafariIPhone})
	if err != nil {
		t.Fatal(err)
	}
	if a.IP != netip.MustParseAddr("81.2.69.0") || a.UserAgent != "Safari on iPhone" {
		t.Fatalf("Create kept %v, %q", a.IP, a.UserAgent)
	}
	b, _ := s.Create(ctx, "alice", Client{IP: v4, UserAgent: uaChromeWin})
	got, err := s.LoadTouch(ctx, a.Token, Client{IP: v6, UserAgent: uaChromeWin})
	if err != nil || got.IP != netip.MustParseAddr("2001:db8:abcd::") || got.UserAgent != "Chrome on Windows" {
		t.Fatalf("LoadTouch = %+v, %v", got, err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b.ID); err != nil { // into the history
		t.Fatal(err)
	}
	if past, _ := s.History(ctx, "alice"); len(past) != 1 || past[0].IP != netip.MustParseAddr("81.2.69.0") {
		t.Fatalf("History = %+v", past)
	}
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v4b, v6b := v4.As4(), v6.As16()
	for what, b := range map[string][]byte{
		"the IPv4 address": v4b[:], "the IPv6 address": v6b[:],
		"a user agent": []byte("Mozilla/5.0"), "a user agent's version": []byte("AppleWebKit"),
	} {
		if bytes.Contains(data, b) {
			t.Errorf("the database file holds %s", what)
		}
	}
	if !bytes.Contains(data, []byte("Chrome on Windows")) {
		t.Error("the device name was not kept")
	}
}

func TestPrivacyRejectsBadPrefixes(t *testing.T) {
	for _, p := range []Privacy{{IPPrefixV4: 33}, {IPPrefixV6: 129}, {IPPrefixV4: -1}} {
		if _, err := Open(filepath.Join(t.TempDir(), "db"), &Options{Privacy: p}); err == nil {
			t.Errorf("Open with %+v succeeded", p)
		}
	}
}

func TestHistoryRecordsEveryEnd(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		clock := newFakeClock()
		var s *Store
		var h hookLog
		s = openTest(t, cached, &Options{Now: clock.Now, Lifetime: 10 * time.Hour, IdleTimeout: 2 * time.Hour,
			History: 24 * time.Hour, Hooks: h.hooks(&s, t)})
		me := mustCreate(t, s, "alice", clientA)
		revoked := mustCreate(t, s, "alice", clientA)
		other := mustCreate(t, s, "alice", clientA)
		admin := mustCreate(t, s, "alice", clientA)
		if err := s.DeleteForUser(ctx, "alice", revoked.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if err := s.End(ctx, admin.ID, EndOptions{Reason: EndAdmin, By: "admin:root"}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if n, err := s.DeleteByUser(ctx, "alice", me.ID); n != 1 || err != nil {
			t.Fatalf("DeleteByUser = %d, %v", n, err)
		}
		clock.Advance(time.Second)
		idle := mustCreate(t, s, "alice", clientA)
		clock.Advance(time.Hour)
		if _, err := s.LoadTouch(ctx, me.Token, clientA); err != nil { // me stays active
			t.Fatal(err)
		}
		clock.Advance(90 * time.Minute) // idle's 2h idle timeout passes
		if n, err := s.ClearExpired(ctx); n != 1 || err != nil {
			t.Fatalf("ClearExpired = %d, %v", n, err)
		}
		past, err := s.History(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range past {
			got = append(got, string(e.Reason)+" by "+e.By)
			if _, err := s.Get(ctx, e.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("an ended session loads: %v", err)
			}
		}
		want := []string{"idle by ", "others by " + me.ID, "admin by admin:root", "revoked by "}
		if !slices.Equal(got, want) {
			t.Fatalf("History = %q, want %q (most recent first)", got, want)
		}
		for id, reason := range map[string]EndReason{revoked.ID: EndRevoked, admin.ID: EndAdmin, other.ID: EndOthers, idle.ID: EndIdle} {
			if h.reason(id) != reason {
				t.Errorf("Ended hook for %s: %q, want %q", id, h.reason(id), reason)
			}
		}
		// History goes with age, in cleanup; me expires meanwhile.
		clock.Advance(25 * time.Hour)
		s.ClearExpired(ctx)
		if past, _ := s.History(ctx, "alice"); len(past) != 1 || past[0].ID != me.ID || past[0].Reason != EndExpired {
			t.Fatalf("History = %+v; want only me's end, by expiry: the rest is past Options.History", past)
		}
	})
}

func TestHookPanicIsRecovered(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	s := openTest(t, true, &Options{Logger: logger, Hooks: Hooks{
		Created: func(context.Context, *Session, bool) { panic("boom in Created") },
		Ended:   func(context.Context, *Session, EndReason) { panic("boom in Ended") },
	}})
	sess, err := s.Create(ctx, "alice", clientA)
	if err != nil {
		t.Fatalf("Create with a panicking hook: %v", err)
	}
	if err := s.Delete(ctx, sess.ID); err != nil {
		t.Fatalf("Delete with a panicking hook: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"boom in Created", "boom in Ended"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("the panic %q was not logged", want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNewDevice(t *testing.T) {
	var s *Store
	var h hookLog
	s = openTest(t, false, &Options{History: time.Hour, Hooks: h.hooks(&s, t)})
	first := mustCreate(t, s, "alice", Client{UserAgent: uaSafariIPhone})
	mustCreate(t, s, "alice", Client{UserAgent: uaSafariIPhone})
	if err := s.Delete(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "alice", Client{UserAgent: uaChromeWin})
	mustCreate(t, s, "bob", Client{UserAgent: uaChromeWin})
	want := []string{"alice/new", "alice/old", "alice/new", "bob/new"}
	if !slices.Equal(h.created, want) {
		t.Fatalf("Created(newDevice) = %v, want %v", h.created, want)
	}
}

func TestCredentialsChanged(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, &Options{History: time.Hour})
		me := mustCreate(t, s, "alice", clientA)
		var others []*Session
		for range 3 {
			o := mustCreate(t, s, "alice", clientB)
			s.Load(ctx, o.Token)
			others = append(others, o)
		}
		settle(s)
		bob := mustCreate(t, s, "bob", clientB)
		fresh, n, err := s.CredentialsChanged(ctx, me.Token)
		if err != nil || n != 3 || fresh.ID != me.ID || fresh.Token == me.Token {
			t.Fatalf("CredentialsChanged = %+v, %d, %v", fresh, n, err)
		}
		if _, err := s.Load(ctx, me.Token); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the old token still loads: %v", err)
		}
		for _, o := range others {
			if _, err := s.Load(ctx, o.Token); !errors.Is(err, ErrNotFound) {
				t.Fatalf("another session survived a credential change: %v", err)
			}
		}
		if _, err := s.Load(ctx, bob.Token); err != nil {
			t.Fatal(err)
		}
		past, _ := s.History(ctx, "alice")
		for _, e := range past {
			if e.Reason != EndCredentials || e.By != me.ID {
				t.Fatalf("history entry %+v", e)
			}
		}
		if len(past) != 3 {
			t.Fatalf("%d history entries, want 3", len(past))
		}
	})
}
