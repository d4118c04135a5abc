package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// The Backend suite: the promises of a SharedBackend's methods (backend.go),
// checked one method at a time, below the Store: round trips, LastSeen
// never moving back, owners, unreadable records removed too, cleanup with
// its grace, veto and limit from several instances at once, scans and
// filters, the idle timeout's re-index, and the change feed's notices.
//
//	storetest.RunBackend(t, storetest.SharedBackendSuite{Open: ..., Damage: ..., Deadline: ...})

// SharedBackendSuite describes a shared backend for RunBackend.
type SharedBackendSuite struct {
	// Open returns a function that opens Backends on one fresh, empty
	// space of the storage (a table, a key prefix): each call is one more
	// instance, already Opened (Backend.Open) with the idle timeout given,
	// and closed when t ends.
	Open func(t *testing.T) func(idle time.Duration) backend.SharedBackend
	// Damage makes r's stored record unreadable (a hash of the wrong
	// length), leaving its user and indexes as they are.
	Damage func(t *testing.T, b backend.SharedBackend, r *backend.Record)
	// Deadline returns the deadline the storage keeps for r.
	Deadline func(t *testing.T, b backend.SharedBackend, r *backend.Record) int64
	// Retries, when set, returns how many calls b has run again after a
	// conflict between instances (a deadlock, a serialization failure).
	// Touches from two instances in opposite orders must cause none: a
	// retry waits for the storage to find the conflict (PostgreSQL's
	// deadlock_timeout, 1 s), so rows are to be locked in one order.
	Retries func(b backend.SharedBackend) int64
}

// Base is the moment NewRecord's times count from.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// Discard is a logger that drops everything, for Backend.Open.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FeedEvent is one call a FeedRecorder received.
type FeedEvent struct {
	Kind string // "changed", "lost", "restored"
	IDs  []backend.ID
	At   time.Time
}

// FeedRecorder is a ChangeFeed that queues what it receives.
type FeedRecorder struct{ events chan FeedEvent }

// NewFeedRecorder returns an empty FeedRecorder.
func NewFeedRecorder() *FeedRecorder { return &FeedRecorder{events: make(chan FeedEvent, 10000)} }

// Changed queues a "changed" event.
func (r *FeedRecorder) Changed(ids []backend.ID) {
	r.events <- FeedEvent{Kind: "changed", IDs: slices.Clone(ids), At: time.Now()}
}

// Lost queues a "lost" event.
func (r *FeedRecorder) Lost() { r.events <- FeedEvent{Kind: "lost", At: time.Now()} }

// Restored queues a "restored" event.
func (r *FeedRecorder) Restored() { r.events <- FeedEvent{Kind: "restored", At: time.Now()} }

// Next waits up to d for the next event.
func (r *FeedRecorder) Next(d time.Duration) (FeedEvent, bool) {
	select {
	case ev := <-r.events:
		return ev, true
	case <-time.After(d):
		return FeedEvent{}, false
	}
}

// Wait waits up to d for an event of kind, skipping others, and fails t
// when none comes.
func (r *FeedRecorder) Wait(t testing.TB, kind string, d time.Duration) FeedEvent {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ev, ok := r.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("no %q event within %v", kind, d)
		}
		if ev.Kind == kind {
			return ev
		}
	}
}

// Subscribe subscribes a new FeedRecorder to b.
func Subscribe(t testing.TB, b backend.SharedBackend) *FeedRecorder {
	t.Helper()
	r := NewFeedRecorder()
	if err := b.Subscribe(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// Percentile returns the p-th percentile (0..100) of sorted ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[int(float64(len(ds)-1)*p/100)]
}

// sharedBackendEnv is one test's space of the storage.
type sharedBackendEnv struct {
	t    *testing.T
	s    SharedBackendSuite
	ctx  context.Context
	open func(idle time.Duration) backend.SharedBackend
}

func (e *sharedBackendEnv) create(b backend.Backend, rs ...*backend.Record) {
	e.t.Helper()
	for _, r := range rs {
		if _, err := b.Create(e.ctx, r, nil); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *sharedBackendEnv) get(b backend.Backend, id backend.ID) (backend.Record, error) {
	var r backend.Record
	err := b.Get(e.ctx, id, &r, true)
	return r, err
}

func (e *sharedBackendEnv) check(b backend.Backend) {
	e.t.Helper()
	if err := b.Check(e.ctx); err != nil {
		e.t.Fatalf("Check: %v", err)
	}
}

// RunSharedBackend runs the shared-backend suite.
func RunSharedBackend(t *testing.T, s SharedBackendSuite) {
	tests := []struct {
		name string
		fn   func(e *sharedBackendEnv)
	}{
		{"TouchFromTwoAtOnce", testTouchFromTwo},
		{"DeleteExpiredFromTwoAtOnce", testDeleteExpiredFromTwo},
		{"FeedDeliversOthersChangesOnly", testFeedOthersOnly},
		{"FeedLatency", testFeedLatency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&sharedBackendEnv{t: t, s: s, ctx: context.Background(), open: s.Open(t)})
		})
	}
}

func testTouchFromTwo(e *sharedBackendEnv) {
	t := e.t
	a, b := e.open(time.Hour), e.open(time.Hour)
	var rs []*backend.Record
	for i := range 60 {
		rs = append(rs, NewRecord([]string{"u", ""}[i%2], time.Duration(i), 24*time.Hour))
	}
	e.create(a, rs...)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for k, be := range []backend.Backend{a, b} {
		wg.Go(func() {
			for round := range 30 {
				acts := make([]backend.Activity, len(rs))
				for i, r := range rs {
					acts[i] = backend.Activity{ID: r.ID, LastSeen: r.LastSeen + int64(round*2+k), UserAgent: fmt.Sprint(k)}
				}
				if k == 1 {
					slices.Reverse(acts) // opposite orders must not deadlock
				}
				if err := be.Touch(e.ctx, acts); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Touch: %v", err)
	}
	if e.s.Retries != nil {
		if n := e.s.Retries(a) + e.s.Retries(b); n > 0 {
			t.Fatalf("%d Touches ran again after a conflict: the two orders deadlocked", n)
		}
	}
	for _, r := range rs {
		got, err := e.get(a, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastSeen != r.LastSeen+int64(29*2+1) || got.UserAgent != "1" {
			t.Fatalf("after both: last seen +%d by %q, want the newest (+59 by 1)", got.LastSeen-r.LastSeen, got.UserAgent)
		}
	}
	e.check(a)
}

func testDeleteExpiredFromTwo(e *sharedBackendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	const n = 400
	ours := map[backend.ID]bool{}
	var rs []*backend.Record
	for i := range n {
		r := NewRecord([]string{"u", "", "v", "w"}[i%4], time.Duration(i)*time.Millisecond, time.Minute)
		rs = append(rs, r)
		ours[r.ID] = true
	}
	e.create(a, rs...)
	var mu sync.Mutex
	seen := map[backend.ID]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, be := range []backend.Backend{a, b} {
		wg.Go(func() {
			for range 100 {
				removed, more, err := be.DeleteExpired(e.ctx, backend.ExpiredQuery{Now: Base + int64(time.Hour), Limit: 15})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, r := range removed {
					seen[r.ID]++
				}
				mu.Unlock()
				if !more {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("removed %d distinct of %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 || !ours[id] {
			t.Fatalf("%v removed %d times (ours: %v)", id, c, ours[id])
		}
	}
	if c, _ := a.Count(e.ctx); c != 0 {
		t.Fatalf("Count = %d", c)
	}
}

func testFeedOthersOnly(e *sharedBackendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	fa, fb := Subscribe(t, a), Subscribe(t, b)
	if err := b.Subscribe(e.ctx, NewFeedRecorder()); err == nil {
		t.Fatal("second Subscribe accepted")
	}
	changed := func(f *FeedRecorder, what string, want ...backend.ID) {
		t.Helper()
		var got []backend.ID
		for len(got) < len(want) {
			got = append(got, f.Wait(t, "changed", 5*time.Second).IDs...)
		}
		slices.SortFunc(got, func(x, y backend.ID) int { return bytes.Compare(x[:], y[:]) })
		slices.SortFunc(want, func(x, y backend.ID) int { return bytes.Compare(x[:], y[:]) })
		if !slices.Equal(got, want) {
			t.Fatalf("%s's notices: %v, want %v", what, got, want)
		}
	}
	// Create and Touch send nothing.
	r := NewRecord("alice", 0, time.Hour)
	e.create(a, r)
	if err := a.Touch(e.ctx, []backend.Activity{{ID: r.ID, LastSeen: r.LastSeen + 1}}); err != nil {
		t.Fatal(err)
	}
	// Update (in place, or to another user), Delete, DeleteByUser and
	// DeleteExpired do, once each.
	for _, user := range []string{"alice", "bob"} {
		if _, err := a.Update(e.ctx, r.ID, func(x *backend.Record) error { x.UserAgent, x.UserID = "x", user; return nil }, nil); err != nil {
			t.Fatal(err)
		}
		changed(fb, "Update", r.ID)
	}
	if _, err := a.Delete(e.ctx, r.ID, nil, backend.Ending{}); err != nil {
		t.Fatal(err)
	}
	changed(fb, "Delete", r.ID)
	var many []*backend.Record
	for i := range 230 { // more than one notice's worth
		many = append(many, NewRecord("bob", time.Duration(i), time.Minute))
	}
	e.create(a, many...)
	removed, err := a.DeleteByUser(e.ctx, "bob", backend.ID{}, backend.Ending{})
	if err != nil || len(removed) != 230 {
		t.Fatalf("DeleteByUser: %d, %v", len(removed), err)
	}
	changed(fb, "DeleteByUser", sortedIDs(removed)...)
	x := NewRecord("carol", 0, time.Minute)
	e.create(b, x)
	if expired, _, err := b.DeleteExpired(e.ctx, backend.ExpiredQuery{Now: Base + int64(time.Hour), Limit: 10}); err != nil || len(expired) != 1 {
		t.Fatalf("DeleteExpired: %v %v", expired, err)
	}
	changed(fa, "DeleteExpired", x.ID)
	// A failed change and a no-op delete send nothing; nothing else is
	// pending on either side, and a's own changes never reached fa.
	_, _ = a.Update(e.ctx, x.ID, func(*backend.Record) error { return errors.New("no") }, nil)
	_, _ = a.Delete(e.ctx, x.ID, nil, backend.Ending{})
	if ev, ok := fb.Next(300 * time.Millisecond); ok {
		t.Fatalf("B got an unexpected %s %v", ev.Kind, ev.IDs)
	}
	if ev, ok := fa.Next(50 * time.Millisecond); ok {
		t.Fatalf("A got its own or an unexpected %s %v", ev.Kind, ev.IDs)
	}
}

func testFeedLatency(e *sharedBackendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	fb := Subscribe(t, b)
	r := NewRecord("alice", 0, time.Hour)
	e.create(a, r)
	const rounds = 300
	lat := make([]time.Duration, 0, rounds)
	for i := range rounds {
		start := time.Now()
		if _, err := a.Update(e.ctx, r.ID, func(x *backend.Record) error { x.UserAgent = "round"; return nil }, nil); err != nil {
			t.Fatal(err)
		}
		ev := fb.Wait(t, "changed", 5*time.Second)
		if len(ev.IDs) != 1 || ev.IDs[0] != r.ID {
			t.Fatalf("round %d: %v", i, ev.IDs)
		}
		lat = append(lat, ev.At.Sub(start))
	}
	slices.Sort(lat)
	t.Logf("change feed: Update on A started → Changed on B: p50 %v, p99 %v, max %v (%d rounds)",
		Percentile(lat, 50), Percentile(lat, 99), lat[len(lat)-1], rounds)
	if p99 := Percentile(lat, 99); p99 > time.Second {
		t.Fatalf("p99 delivery %v", p99)
	}
}
