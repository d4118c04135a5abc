package usersessions

import (
	"errors"
	"testing"
	"time"

	"github.com/usersessions/usersessions/internal/clocktest"
)

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClockNowFor(t *testing.T) {
	c := newClock(nil)
	exact := c.now()
	stale := exact - int64(10*time.Second) // a tick ten seconds old
	c.coarse.Store(stale)

	if got := c.nowFor(exact + int64(time.Hour)); got != stale {
		t.Errorf("far deadline: nowFor = %d, want the coarse reading %d", got, stale)
	}
	if !c.used.Load() {
		t.Error("a reader took the coarse reading without marking it used")
	}
	// A deadline within coarseMargin of the coarse reading is decided on
	// the exact clock, even one that the coarse reading says is ahead.
	if got := c.nowFor(stale + int64(coarseMargin)/2); got < exact {
		t.Errorf("near deadline: nowFor = %d, want the exact time (at least %d)", got, exact)
	}
	if len(c.wake) != 0 {
		t.Error("a running ticker was woken")
	}

	// Stopped ticker: exact time, and only a reader it would serve wakes it.
	c.coarse.Store(0)
	if got := c.nowFor(c.now() + int64(coarseMargin)/2); got < exact || len(c.wake) != 0 {
		t.Errorf("near deadline, stopped ticker: nowFor = %d, woke = %v; want the exact time and no wake", got, len(c.wake) != 0)
	}
	if got := c.nowFor(c.now() + int64(time.Hour)); got < exact || len(c.wake) != 1 {
		t.Errorf("far deadline, stopped ticker: nowFor = %d, woke = %v; want the exact time and a wake", got, len(c.wake) != 0)
	}
}

func TestClockCustomIsAlwaysExact(t *testing.T) {
	clock := clocktest.New()
	c := newClock(clock.Now)
	for range 3 {
		want := clock.Now().UnixNano()
		if got := c.nowFor(want + int64(time.Hour)); got != want {
			t.Fatalf("nowFor = %d, want the custom clock's %d", got, want)
		}
		clock.Advance(time.Millisecond)
	}
	if len(c.wake) != 0 || c.coarse.Load() != 0 {
		t.Fatal("a custom clock started the coarse ticker")
	}
}

func TestClockTickerRunsOnlyWhileUsed(t *testing.T) {
	c := newClock(nil)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		c.run(quit)
		close(done)
	}()
	far := func() int64 { return c.now() + int64(time.Hour) }

	if c.coarse.Load() != 0 {
		t.Fatal("the ticker did not start stopped")
	}
	c.nowFor(far()) // wakes it
	waitFor(t, "the ticker to start", func() bool { return c.coarse.Load() != 0 })

	// While used, the reading advances and never runs ahead of the clock.
	first := c.coarse.Load()
	waitFor(t, "the coarse reading to advance", func() bool {
		got := c.nowFor(far())
		if now := c.now(); got > now {
			t.Fatalf("coarse reading %d is ahead of the clock %d", got, now)
		}
		return got > first
	})

	// Unused, it stops, and the next reader restarts it.
	waitFor(t, "the idle ticker to stop", func() bool { return c.coarse.Load() == 0 })
	c.nowFor(far())
	waitFor(t, "the ticker to restart", func() bool { return c.coarse.Load() != 0 })

	close(quit)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after quit")
	}
}

// TestSystemClockActivity runs Load and LoadTouch on the system clock, where
// the coarse reading serves them: LastSeen never goes backwards, never
// passes the real time, and moves on as time does.
func TestSystemClockActivity(t *testing.T) {
	s := openTest(t, true, nil)
	sess := mustCreate(t, s, "alice", clientA)
	settle(s)
	prev := sess.LastSeen
	waitFor(t, "LastSeen to move on", func() bool {
		got, err := s.LoadTouch(ctx, sess.Token, clientB)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastSeen.Before(prev) || got.LastSeen.After(time.Now()) {
			t.Fatalf("LastSeen = %v after %v, at %v", got.LastSeen, prev, time.Now())
		}
		if got.IP != clientB.IP {
			t.Fatalf("IP = %v, want %v", got.IP, clientB.IP)
		}
		moved := got.LastSeen.After(sess.CreatedAt)
		prev = got.LastSeen
		return moved
	})
	if got, err := s.Load(ctx, sess.Token); err != nil || got.LastSeen.Before(prev) {
		t.Fatalf("Load = %v, %v; want LastSeen at least %v", got, err, prev)
	}
}

// TestSystemClockExpiry runs a cached store on the system clock with the
// coarse ticker kept busy by a long-lived session, and checks that a
// session with a short lifetime stops loading the moment it expires: its
// deadline is near, so it is decided on the exact clock.
func TestSystemClockExpiry(t *testing.T) {
	const lifetime = 300 * time.Millisecond
	s := openTest(t, true, &Options{Lifetime: lifetime})
	short := mustCreate(t, s, "alice", clientA)
	settle(s)
	// A session whose deadline is far away keeps the coarse clock running;
	// the store's Lifetime applies to all, so make this one by hand.
	far := time.Now().Add(time.Hour).UnixNano()
	for range 3 {
		s.clock.nowFor(far)
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "the coarse clock to run", func() bool { s.clock.nowFor(far); return s.clock.coarse.Load() != 0 })

	for time.Since(short.CreatedAt) < lifetime-50*time.Millisecond {
		if _, err := s.Load(ctx, short.Token); err != nil {
			t.Fatalf("Load %v after Create: %v", time.Since(short.CreatedAt), err)
		}
		s.clock.nowFor(far)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Until(short.ExpiresAt))
	if s.clock.coarse.Load() == 0 {
		t.Fatal("the coarse clock stopped: the test must run with it")
	}
	if _, err := s.Load(ctx, short.Token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after ExpiresAt: %v, want ErrNotFound", err)
	}
	if _, err := s.LoadTouch(ctx, short.Token, clientB); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadTouch after ExpiresAt: %v, want ErrNotFound", err)
	}
}
