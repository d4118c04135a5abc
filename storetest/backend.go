package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// The Backend suite: the promises of a SharedBackend's methods (backend.go),
// checked one method at a time, below the Store: round trips, LastSeen
// never moving back, owners, unreadable records removed too, cleanup with
// its grace, veto and limit from several instances at once, scans and
// filters, the idle timeout's re-index, and the change feed's notices.
//
//	storetest.RunBackend(t, storetest.BackendSuite{Open: ..., Damage: ..., Deadline: ...})

// BackendSuite describes a shared backend for RunBackend.
type BackendSuite struct {
	// Open returns a function that opens Backends on one fresh, empty
	// space of the storage (a table, a key prefix): each call is one more
	// instance, already Opened (Backend.Open) with the idle timeout given,
	// and closed when t ends.
	Open func(t *testing.T) func(idle time.Duration) usersessions.SharedBackend
	// Damage makes r's stored record unreadable (a hash of the wrong
	// length), leaving its user and indexes as they are.
	Damage func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record)
	// Deadline returns the deadline the storage keeps for r.
	Deadline func(t *testing.T, b usersessions.SharedBackend, r *usersessions.Record) int64
}

// Base is the moment NewRecord's times count from.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// NewRecord returns a record of user with a random ID, created at Base+at,
// expiring life later, as a Store would fill it.
func NewRecord(user string, at, life time.Duration) *usersessions.Record {
	r := &usersessions.Record{
		UserID:    user,
		IP:        netip.MustParseAddr("192.0.2.10"),
		UserAgent: "test agent",
		Created:   Base + int64(at),
		LastSeen:  Base + int64(at),
		Expires:   Base + int64(at+life),
		Identity:  1,
		Values:    []byte("values"),
	}
	_, _ = rand.Read(r.ID[:])
	r.Hash = sha256.Sum256(r.ID[:])
	return r
}

// Discard is a logger that drops everything, for Backend.Open.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FeedEvent is one call a FeedRecorder received.
type FeedEvent struct {
	Kind string // "changed", "lost", "restored"
	IDs  []usersessions.ID
	At   time.Time
}

// FeedRecorder is a ChangeFeed that queues what it receives.
type FeedRecorder struct{ events chan FeedEvent }

// NewFeedRecorder returns an empty FeedRecorder.
func NewFeedRecorder() *FeedRecorder { return &FeedRecorder{events: make(chan FeedEvent, 10000)} }

// Changed queues a "changed" event.
func (r *FeedRecorder) Changed(ids []usersessions.ID) {
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
func Subscribe(t testing.TB, b usersessions.SharedBackend) *FeedRecorder {
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

// backendEnv is one test's space of the storage.
type backendEnv struct {
	t    *testing.T
	s    BackendSuite
	ctx  context.Context
	open func(idle time.Duration) usersessions.SharedBackend
}

func (e *backendEnv) create(b usersessions.Backend, rs ...*usersessions.Record) {
	e.t.Helper()
	for _, r := range rs {
		if _, err := b.Create(e.ctx, r, nil); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *backendEnv) get(b usersessions.Backend, id usersessions.ID) (usersessions.Record, error) {
	var r usersessions.Record
	err := b.Get(e.ctx, id, &r, true)
	return r, err
}

func (e *backendEnv) check(b usersessions.Backend) {
	e.t.Helper()
	if err := b.Check(e.ctx); err != nil {
		e.t.Fatalf("Check: %v", err)
	}
}

// RunBackend runs the Backend suite.
func RunBackend(t *testing.T, s BackendSuite) {
	tests := []struct {
		name string
		fn   func(e *backendEnv)
	}{
		{"RoundTrip", testRoundTrip},
		{"Update", testBackendUpdate},
		{"TouchNeverResurrectsNorGoesBack", testTouchNeverResurrects},
		{"TouchFromTwoAtOnce", testTouchFromTwo},
		{"DeleteOwnerAndUnreadable", testDeleteOwner},
		{"DeleteByUser", testBackendDeleteByUser},
		{"DeleteExpiredGraceKeepLimit", testDeleteExpiredGrace},
		{"DeleteExpiredFromTwoAtOnce", testDeleteExpiredFromTwo},
		{"ScanFilters", testScanFilters},
		{"ListByUserReportsUnreadable", testListUnreadable},
		{"IdleChangeReindexes", testIdleChange},
		{"Closed", testBackendClosed},
		{"FeedDeliversOthersChangesOnly", testFeedOthersOnly},
		{"FeedLatency", testFeedLatency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&backendEnv{t: t, s: s, ctx: context.Background(), open: s.Open(t)})
		})
	}
}

func testRoundTrip(e *backendEnv) {
	t := e.t
	b := e.open(0)
	v6 := NewRecord("alice", 0, time.Hour)
	v6.IP = netip.MustParseAddr("2001:db8::1")
	v6.Identity = 1<<63 + 5 // above int64
	noIP := NewRecord("", time.Second, time.Hour)
	noIP.IP = netip.Addr{}
	noIP.Values = nil
	v4 := NewRecord("bob", 2*time.Second, time.Hour)
	odd := NewRecord("wëird {user} : tagged", 3*time.Second, time.Hour)
	odd.Values = []byte{0, 0xff, '{', '}', ':', 0}
	e.create(b, v6, noIP, v4, odd)
	for _, want := range []*usersessions.Record{v6, noIP, v4, odd} {
		got, err := e.get(b, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Hash != want.Hash || got.UserID != want.UserID || got.IP != want.IP ||
			got.UserAgent != want.UserAgent || got.Created != want.Created || got.LastSeen != want.LastSeen ||
			got.Expires != want.Expires || got.Identity != want.Identity || string(got.Values) != string(want.Values) {
			t.Errorf("Get = %+v\nwant  %+v", got, *want)
		}
		if err := b.Get(e.ctx, want.ID, &got, false); err != nil || got.Values != nil || got.Hash != want.Hash {
			t.Errorf("Get without values: %v, values %q", err, got.Values)
		}
	}
	if _, err := e.get(b, usersessions.ID{1}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Get of a missing ID: %v", err)
	}
	if _, err := b.Create(e.ctx, v4, nil); err == nil {
		t.Fatal("Create of an existing ID succeeded")
	}
	if n, err := b.Count(e.ctx); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	e.check(b)
}

func testBackendUpdate(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	r := NewRecord("alice", 0, 24*time.Hour)
	e.create(b, r)
	_, err := b.Update(e.ctx, r.ID, func(x *usersessions.Record) error {
		if x.UserID != "alice" || string(x.Values) != "values" {
			t.Errorf("change got %+v", *x)
		}
		x.UserID, x.Values, x.LastSeen, x.Identity = "carol", []byte("new"), Base+int64(3*time.Hour), 2
		x.Hash[0] ^= 1
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.get(b, r.ID)
	if err != nil || got.UserID != "carol" || string(got.Values) != "new" || got.Identity != 2 || got.Hash[0] != r.Hash[0]^1 {
		t.Fatalf("after Update: %+v, %v", got, err)
	}
	if d := e.s.Deadline(t, b, &got); d != Base+int64(4*time.Hour) {
		t.Fatalf("deadline = %d, want last seen + idle = %d", d, Base+int64(4*time.Hour))
	}
	// The user index moved with it.
	for user, want := range map[string]int{"carol": 1, "alice": 0} {
		n := 0
		if err := b.ListByUser(e.ctx, user, func(x *usersessions.Record, err error) { n++ }); err != nil || n != want {
			t.Fatalf("ListByUser(%s) lists %d, %v; want %d", user, n, err, want)
		}
	}
	boom := errors.New("boom")
	if _, err := b.Update(e.ctx, r.ID, func(x *usersessions.Record) error { x.UserID = "mallory"; return boom }, nil); err != boom {
		t.Fatalf("Update with failing change: %v", err)
	}
	if got, err := e.get(b, r.ID); err != nil || got.UserID != "carol" {
		t.Fatalf("failed change stored something: %+v, %v", got, err)
	}
	called := false
	if _, err := b.Update(e.ctx, usersessions.ID{9}, func(*usersessions.Record) error { called = true; return nil }, nil); !errors.Is(err, usersessions.ErrNotFound) || called {
		t.Fatalf("Update of a missing ID: %v, change called %v", err, called)
	}
	e.check(b)
}

func testTouchNeverResurrects(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	r, other := NewRecord("alice", 0, 24*time.Hour), NewRecord("", 0, 24*time.Hour)
	e.create(b, r, other)
	gone := NewRecord("ghost", 0, 24*time.Hour) // never created
	later := Base + int64(2*time.Hour)
	acts := []usersessions.Activity{
		{ID: r.ID, LastSeen: later - 1, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: "older dup"},
		{ID: r.ID, LastSeen: later, IP: netip.MustParseAddr("198.51.100.2"), UserAgent: "newest"},
		{ID: gone.ID, LastSeen: later, UserAgent: "ghost"},
		{ID: other.ID, LastSeen: later, IP: netip.MustParseAddr("2001:db8::7%eth0"), UserAgent: "v6"},
	}
	if err := b.Touch(e.ctx, acts); err != nil {
		t.Fatal(err)
	}
	got, err := e.get(b, r.ID)
	if err != nil || got.LastSeen != later || got.UserAgent != "newest" || got.IP != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("after Touch: %+v, %v", got, err)
	}
	if got, err := e.get(b, other.ID); err != nil || got.IP != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("v6 touch: %+v %v", got, err)
	}
	if _, err := e.get(b, gone.ID); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch resurrected a missing record: %v", err)
	}
	if d := e.s.Deadline(t, b, r); d != later+int64(idle) {
		t.Fatalf("deadline after Touch = %d, want %d", d, later+int64(idle))
	}
	// Older activity moves nothing back, the client included.
	if err := b.Touch(e.ctx, []usersessions.Activity{{ID: r.ID, LastSeen: Base, UserAgent: "stale"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.get(b, r.ID); err != nil || got.LastSeen != later || got.UserAgent != "newest" {
		t.Fatalf("stale Touch moved things back: %+v, %v", got, err)
	}
	// A deleted record stays deleted.
	if _, err := b.Delete(e.ctx, r.ID, nil, usersessions.Ending{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(e.ctx, []usersessions.Activity{{ID: r.ID, LastSeen: later + 1}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(e.ctx); n != 1 {
		t.Fatalf("Count = %d after delete and touch, want 1", n)
	}
	if err := b.Touch(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.check(b)
}

func testTouchFromTwo(e *backendEnv) {
	t := e.t
	a, b := e.open(time.Hour), e.open(time.Hour)
	var rs []*usersessions.Record
	for i := range 60 {
		rs = append(rs, NewRecord([]string{"u", ""}[i%2], time.Duration(i), 24*time.Hour))
	}
	e.create(a, rs...)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for k, be := range []usersessions.Backend{a, b} {
		wg.Go(func() {
			for round := range 30 {
				acts := make([]usersessions.Activity, len(rs))
				for i, r := range rs {
					acts[i] = usersessions.Activity{ID: r.ID, LastSeen: r.LastSeen + int64(round*2+k), UserAgent: fmt.Sprint(k)}
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

func testDeleteOwner(e *backendEnv) {
	t := e.t
	b := e.open(0)
	r, bad := NewRecord("alice", 0, time.Hour), NewRecord("alice", 0, time.Hour)
	e.create(b, r, bad)
	e.s.Damage(t, b, bad)
	if _, err := e.get(b, bad.ID); !errors.Is(err, usersessions.ErrCorrupt) {
		t.Fatalf("Get of a damaged record: %v, want ErrCorrupt", err)
	}
	mallory, alice := "mallory", "alice"
	if _, err := b.Delete(e.ctx, r.ID, &mallory, usersessions.Ending{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Delete by the wrong owner: %v", err)
	}
	if _, err := e.get(b, r.ID); err != nil {
		t.Fatalf("wrong owner removed the record: %v", err)
	}
	for _, id := range []usersessions.ID{r.ID, bad.ID} {
		if _, err := b.Delete(e.ctx, id, &alice, usersessions.Ending{}); err != nil {
			t.Fatalf("Delete by the owner: %v", err)
		}
	}
	if _, err := b.Delete(e.ctx, r.ID, nil, usersessions.Ending{}); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if n, _ := b.Count(e.ctx); n != 0 {
		t.Fatalf("Count = %d", n)
	}
	e.check(b)
}

func idsOf(recs []usersessions.Record) []usersessions.ID {
	ids := make([]usersessions.ID, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	slices.SortFunc(ids, func(x, y usersessions.ID) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

func sortedIDs(rs ...*usersessions.Record) []usersessions.ID {
	recs := make([]usersessions.Record, len(rs))
	for i, r := range rs {
		recs[i] = *r
	}
	return idsOf(recs)
}

func testBackendDeleteByUser(e *backendEnv) {
	t := e.t
	b := e.open(0)
	var alice []*usersessions.Record
	for i := range 5 {
		alice = append(alice, NewRecord("alice", time.Duration(i), time.Hour))
	}
	e.create(b, alice...)
	e.create(b, NewRecord("bob", 0, time.Hour))
	e.s.Damage(t, b, alice[1]) // unreadable, removed too
	removed, err := b.DeleteByUser(e.ctx, "alice", alice[0].ID, usersessions.Ending{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(removed), sortedIDs(alice[1:]...); !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if n, _ := b.Count(e.ctx); n != 2 {
		t.Fatalf("Count = %d, want alice's kept one and bob's", n)
	}
	removed, err = b.DeleteByUser(e.ctx, "alice", usersessions.ID{}, usersessions.Ending{})
	if err != nil || len(removed) != 1 || removed[0].ID != alice[0].ID {
		t.Fatalf("DeleteByUser without keep: %v, %v", removed, err)
	}
	if removed, err = b.DeleteByUser(e.ctx, "nobody", usersessions.ID{}, usersessions.Ending{}); err != nil || len(removed) != 0 {
		t.Fatalf("DeleteByUser(nobody): %v, %v", removed, err)
	}
	for _, a := range alice {
		if _, err := e.get(b, a.ID); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("a removed session still loads: %v", err)
		}
	}
	e.check(b)
}

func testDeleteExpiredGrace(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	now := Base + int64(10*time.Hour)
	absolute := NewRecord("a", 0, time.Hour)             // expired 9h ago (absolute)
	idleLong := NewRecord("", 8*time.Hour, 24*time.Hour) // idle deadline 9h: 1h past, beyond grace
	idleRecent := NewRecord("c", 9*time.Hour-5*time.Minute, 24*time.Hour)
	idleRecent.LastSeen = now - int64(idle) - int64(5*time.Minute)   // idle deadline 5 min ago: within grace
	live := NewRecord("d", 9*time.Hour+30*time.Minute, 24*time.Hour) // idle deadline in 30 min
	kept := NewRecord("e", 0, time.Hour)                             // expired, vetoed by Keep
	e.create(b, absolute, idleLong, idleRecent, live, kept)
	keep := func(id usersessions.ID) bool { return id == kept.ID }
	removed, more, err := b.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: now, IdleGrace: 10 * time.Minute, Limit: 100, Keep: keep})
	if got, want := idsOf(removed), sortedIDs(absolute, idleLong); err != nil || !slices.Equal(got, want) || more {
		t.Fatalf("removed %v more %v err %v, want %v", got, more, err, want)
	}
	// Without grace, the recent idle one goes too.
	removed, _, err = b.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: now, Limit: 100, Keep: keep})
	if err != nil || len(removed) != 1 || removed[0].ID != idleRecent.ID {
		t.Fatalf("without grace: %v, %v", removed, err)
	}
	// Limit and more, with vetoed records at the front not stalling it.
	var batch []*usersessions.Record
	for i := range 25 {
		batch = append(batch, NewRecord([]string{"f", "", "g"}[i%3], time.Duration(i)*time.Second, time.Hour))
	}
	e.create(b, batch...)
	total := 0
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("DeleteExpired never finished")
		}
		removed, more, err := b.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: now, Limit: 10, Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) > 10 {
			t.Fatalf("removed %d with Limit 10", len(removed))
		}
		total += len(removed)
		if !more {
			break
		}
	}
	if total != 25 {
		t.Fatalf("removed %d of 25 in batches", total)
	}
	if n, _ := b.Count(e.ctx); n != 2 {
		t.Fatalf("Count = %d, want live and kept", n)
	}
	e.check(b)
}

func testDeleteExpiredFromTwo(e *backendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	const n = 400
	ours := map[usersessions.ID]bool{}
	var rs []*usersessions.Record
	for i := range n {
		r := NewRecord([]string{"u", "", "v", "w"}[i%4], time.Duration(i)*time.Millisecond, time.Minute)
		rs = append(rs, r)
		ours[r.ID] = true
	}
	e.create(a, rs...)
	var mu sync.Mutex
	seen := map[usersessions.ID]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, be := range []usersessions.Backend{a, b} {
		wg.Go(func() {
			for range 100 {
				removed, more, err := be.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: Base + int64(time.Hour), Limit: 15})
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

func testScanFilters(e *backendEnv) {
	t := e.t
	b := e.open(0)
	var all []*usersessions.Record
	for i := range 12 {
		r := NewRecord([]string{"alice", "bob", ""}[i%3], time.Duration(i)*time.Millisecond, time.Hour)
		r.IP = []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("2001:db8:1::5"), {}}[i%4]
		all = append(all, r)
	}
	e.create(b, all...)
	collect := func(f usersessions.ScanFilter, limit int) []usersessions.ID {
		t.Helper()
		var ids []usersessions.ID
		var after usersessions.ID
		for range 100 {
			last, done, err := b.Scan(e.ctx, f, after, limit, func(r *usersessions.Record, err error) {
				if err != nil {
					t.Errorf("scan error: %v", err)
					return
				}
				// The Store applies the whole filter; a Backend may not.
				if (!f.IPPrefix.IsValid() || f.IPPrefix.Masked().Contains(r.IP)) && (!f.Anonymous || r.UserID == "") {
					ids = append(ids, r.ID)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if done {
				return ids
			}
			if last == after {
				t.Fatal("Scan made no progress")
			}
			after = last
		}
		t.Fatal("Scan never done")
		return nil
	}
	want := func(keep func(r *usersessions.Record) bool) []usersessions.ID {
		var rs []*usersessions.Record
		for _, r := range all {
			if keep(r) {
				rs = append(rs, r)
			}
		}
		return sortedIDs(rs...)
	}
	for _, c := range []struct {
		name string
		f    usersessions.ScanFilter
		keep func(r *usersessions.Record) bool
	}{
		{"all", usersessions.ScanFilter{}, func(*usersessions.Record) bool { return true }},
		{"user", usersessions.ScanFilter{UserID: "bob"}, func(r *usersessions.Record) bool { return r.UserID == "bob" }},
		{"anonymous", usersessions.ScanFilter{Anonymous: true}, func(r *usersessions.Record) bool { return r.UserID == "" }},
		{"ipv4 /16", usersessions.ScanFilter{IPPrefix: netip.MustParsePrefix("10.1.0.0/16")}, func(r *usersessions.Record) bool { return r.IP == netip.MustParseAddr("10.1.2.3") }},
		{"ipv4 /8 unmasked", usersessions.ScanFilter{IPPrefix: netip.MustParsePrefix("10.200.3.4/8")}, func(r *usersessions.Record) bool { return r.IP.Is4() }},
		{"ipv6", usersessions.ScanFilter{IPPrefix: netip.MustParsePrefix("2001:db8::/32")}, func(r *usersessions.Record) bool { return r.IP.Is6() }},
		{"user and ip", usersessions.ScanFilter{UserID: "alice", IPPrefix: netip.MustParsePrefix("10.0.0.0/8")}, func(r *usersessions.Record) bool { return r.UserID == "alice" && r.IP.Is4() }},
	} {
		for _, limit := range []int{1, 5, 100} {
			if got, w := collect(c.f, limit), want(c.keep); !slices.Equal(got, w) {
				t.Errorf("%s, limit %d: got %d IDs, want %d\n%v\n%v", c.name, limit, len(got), len(w), got, w)
			}
		}
	}
}

func testListUnreadable(e *backendEnv) {
	t := e.t
	b := e.open(0)
	good, bad := NewRecord("alice", 0, time.Hour), NewRecord("alice", 1, time.Hour)
	e.create(b, good, bad)
	e.s.Damage(t, b, bad)
	var ok, corrupt []usersessions.ID
	err := b.ListByUser(e.ctx, "alice", func(r *usersessions.Record, err error) {
		if err != nil {
			if !errors.Is(err, usersessions.ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			corrupt = append(corrupt, r.ID)
			return
		}
		ok = append(ok, r.ID)
	})
	if err != nil || len(ok) != 1 || ok[0] != good.ID || len(corrupt) != 1 || corrupt[0] != bad.ID {
		t.Fatalf("ok %v corrupt %v err %v", ok, corrupt, err)
	}
}

func testIdleChange(e *backendEnv) {
	t := e.t
	b := e.open(0)
	r := NewRecord("a", 0, 10*time.Hour)
	e.create(b, r)
	if d := e.s.Deadline(t, b, r); d != r.Expires {
		t.Fatalf("deadline without idle = %d, want expires %d", d, r.Expires)
	}
	b2 := e.open(time.Hour)
	if d := e.s.Deadline(t, b2, r); d != r.LastSeen+int64(time.Hour) {
		t.Fatalf("deadline after idle 1h = %d, want %d", d, r.LastSeen+int64(time.Hour))
	}
	e.check(b2)
	// Expired under the new idle timeout: DeleteExpired finds it by index.
	removed, _, err := b2.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: r.LastSeen + int64(2*time.Hour), Limit: 10})
	if err != nil || len(removed) != 1 {
		t.Fatalf("DeleteExpired under the new idle: %v, %v", removed, err)
	}
	// A tool opening with UseStoredIdleTimeout gets 1h.
	b3 := e.open(usersessions.UseStoredIdleTimeout)
	if got, err := b3.Open(e.ctx, usersessions.UseStoredIdleTimeout, Discard()); err != nil || got != time.Hour {
		t.Fatalf("stored idle = %v, %v; want 1h", got, err)
	}
	// A huge idle timeout saturates instead of overflowing.
	big := NewRecord("a", 0, 10*time.Hour)
	e.create(b3, big)
	b4 := e.open(time.Duration(1 << 62))
	e.check(b4)
	if d := e.s.Deadline(t, b4, big); d != big.Expires {
		t.Fatalf("deadline with a huge idle = %d, want expires", d)
	}
}

func testBackendClosed(e *backendEnv) {
	t := e.t
	b := e.open(0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.get(b, usersessions.ID{}); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := b.Subscribe(e.ctx, NewFeedRecorder()); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func testFeedOthersOnly(e *backendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	fa, fb := Subscribe(t, a), Subscribe(t, b)
	if err := b.Subscribe(e.ctx, NewFeedRecorder()); err == nil {
		t.Fatal("second Subscribe accepted")
	}
	changed := func(f *FeedRecorder, what string, want ...usersessions.ID) {
		t.Helper()
		var got []usersessions.ID
		for len(got) < len(want) {
			got = append(got, f.Wait(t, "changed", 5*time.Second).IDs...)
		}
		slices.SortFunc(got, func(x, y usersessions.ID) int { return bytes.Compare(x[:], y[:]) })
		slices.SortFunc(want, func(x, y usersessions.ID) int { return bytes.Compare(x[:], y[:]) })
		if !slices.Equal(got, want) {
			t.Fatalf("%s's notices: %v, want %v", what, got, want)
		}
	}
	// Create and Touch send nothing.
	r := NewRecord("alice", 0, time.Hour)
	e.create(a, r)
	if err := a.Touch(e.ctx, []usersessions.Activity{{ID: r.ID, LastSeen: r.LastSeen + 1}}); err != nil {
		t.Fatal(err)
	}
	// Update (in place, or to another user), Delete, DeleteByUser and
	// DeleteExpired do, once each.
	for _, user := range []string{"alice", "bob"} {
		if _, err := a.Update(e.ctx, r.ID, func(x *usersessions.Record) error { x.UserAgent, x.UserID = "x", user; return nil }, nil); err != nil {
			t.Fatal(err)
		}
		changed(fb, "Update", r.ID)
	}
	if _, err := a.Delete(e.ctx, r.ID, nil, usersessions.Ending{}); err != nil {
		t.Fatal(err)
	}
	changed(fb, "Delete", r.ID)
	var many []*usersessions.Record
	for i := range 230 { // more than one notice's worth
		many = append(many, NewRecord("bob", time.Duration(i), time.Minute))
	}
	e.create(a, many...)
	removed, err := a.DeleteByUser(e.ctx, "bob", usersessions.ID{}, usersessions.Ending{})
	if err != nil || len(removed) != 230 {
		t.Fatalf("DeleteByUser: %d, %v", len(removed), err)
	}
	changed(fb, "DeleteByUser", idsOf(removed)...)
	x := NewRecord("carol", 0, time.Minute)
	e.create(b, x)
	if expired, _, err := b.DeleteExpired(e.ctx, usersessions.ExpiredQuery{Now: Base + int64(time.Hour), Limit: 10}); err != nil || len(expired) != 1 {
		t.Fatalf("DeleteExpired: %v %v", expired, err)
	}
	changed(fa, "DeleteExpired", x.ID)
	// A failed change and a no-op delete send nothing; nothing else is
	// pending on either side, and a's own changes never reached fa.
	_, _ = a.Update(e.ctx, x.ID, func(*usersessions.Record) error { return errors.New("no") }, nil)
	_, _ = a.Delete(e.ctx, x.ID, nil, usersessions.Ending{})
	if ev, ok := fb.Next(300 * time.Millisecond); ok {
		t.Fatalf("B got an unexpected %s %v", ev.Kind, ev.IDs)
	}
	if ev, ok := fa.Next(50 * time.Millisecond); ok {
		t.Fatalf("A got its own or an unexpected %s %v", ev.Kind, ev.IDs)
	}
}

func testFeedLatency(e *backendEnv) {
	t := e.t
	a, b := e.open(0), e.open(0)
	fb := Subscribe(t, b)
	r := NewRecord("alice", 0, time.Hour)
	e.create(a, r)
	const rounds = 300
	lat := make([]time.Duration, 0, rounds)
	for i := range rounds {
		start := time.Now()
		if _, err := a.Update(e.ctx, r.ID, func(x *usersessions.Record) error { x.UserAgent = "round"; return nil }, nil); err != nil {
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
