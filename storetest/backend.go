package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Backend describes a Backend under test for RunBackend.
type Backend struct {
	// Open returns a Backend on fresh, empty storage, closed when the
	// test ends. The suite calls its Open method.
	Open func(t *testing.T) backend.Backend

	// Reopen closes b and returns another Backend on the same storage,
	// closed when the test ends. The suite calls its Open method.
	Reopen func(t *testing.T, b backend.Backend) backend.Backend

	// Corrupt makes the stored record of id unreadable, as damage would:
	// Get must then fail with ErrCorrupt, while the record stays listed
	// under its user.
	Corrupt func(t *testing.T, b backend.Backend, id backend.ID)

	// ExactScan says that Scan applies every ScanFilter field, so the
	// suite checks that it returns the matches and nothing else. (A
	// Backend may ignore fields: the Store filters again.)
	ExactScan bool
}

// RunBackend runs the backend-level contract: the promises of each
// Backend method (package backend), checked by calling the methods
// directly, without a Store. Run checks the same Backend under a Store.
func RunBackend(t *testing.T, h Backend) {
	tests := []struct {
		name string
		fn   func(*backendEnv)
	}{
		{"CreateGet", testBackendCreateGet},
		{"Update", testBackendUpdate},
		{"TouchNeverResurrects", testBackendTouch},
		{"DeleteOwnerAndUnreadable", testBackendDelete},
		{"DeleteByUser", testBackendDeleteByUser},
		{"DeleteExpiredGraceKeepLimit", testBackendDeleteExpired},
		{"ScanFilters", testBackendScan},
		{"ListByUserReportsUnreadable", testBackendListUnreadable},
		{"IdleChangeReindexes", testBackendIdleChange},
		{"Closed", testBackendClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.fn(&backendEnv{t: t, h: h, ctx: ctx})
		})
	}
}

// backendEnv is one backend-level test.
type backendEnv struct {
	t   *testing.T
	h   Backend
	ctx context.Context
}

// RecordBase is the time, in Unix nanoseconds, that NewRecord's records
// start at.
var RecordBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// sampleValues are two values sections in the Store's encoding (one value,
// nil, under key "a" or "b"): opaque to a Backend, but the embedded one
// checks that they decode.
var sampleValues = [][]byte{{1, 1, 'a', 1}, {1, 1, 'b', 1}}

// NewRecord returns a new record of user with a random ID, created at
// RecordBase+at and expiring life later, with a values section the Store
// could have written: for a backend's own tests, beside RunBackend.
func NewRecord(user string, at, life time.Duration) *backend.Record {
	r := &backend.Record{
		UserID:    user,
		IP:        netip.MustParseAddr("192.0.2.10"),
		UserAgent: "test agent",
		Created:   RecordBase + int64(at),
		LastSeen:  RecordBase + int64(at),
		Expires:   RecordBase + int64(at+life),
		Identity:  1,
		Values:    sampleValues[0],
	}
	_, _ = rand.Read(r.ID[:])
	r.Hash = sha256.Sum256(r.ID[:])
	return r
}

// open opens a fresh Backend with the idle timeout idle.
func (e *backendEnv) open(idle time.Duration) backend.Backend {
	e.t.Helper()
	return e.start(e.h.Open(e.t), idle)
}

// reopen closes b and opens its storage again with idle.
func (e *backendEnv) reopen(b backend.Backend, idle time.Duration) backend.Backend {
	e.t.Helper()
	return e.start(e.h.Reopen(e.t, b), idle)
}

// start calls b's Open with idle and checks the idle timeout in force.
func (e *backendEnv) start(b backend.Backend, idle time.Duration) backend.Backend {
	e.t.Helper()
	got, err := b.Open(e.ctx, idle, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatalf("Open(%v): %v", idle, err)
	}
	if idle >= 0 && got != idle {
		e.t.Fatalf("Open(%v) says the idle timeout in force is %v", idle, got)
	}
	return b
}

func (e *backendEnv) create(b backend.Backend, rs ...*backend.Record) {
	e.t.Helper()
	for _, r := range rs {
		if _, err := b.Create(e.ctx, r, nil); err != nil {
			e.t.Fatalf("Create: %v", err)
		}
	}
}

func (e *backendEnv) get(b backend.Backend, id backend.ID) (backend.Record, error) {
	var r backend.Record
	err := b.Get(e.ctx, id, &r, true)
	return r, err
}

func (e *backendEnv) count(b backend.Backend) int {
	e.t.Helper()
	n, err := b.Count(e.ctx)
	if err != nil {
		e.t.Fatalf("Count: %v", err)
	}
	return n
}

func (e *backendEnv) check(b backend.Backend) {
	e.t.Helper()
	if err := b.Check(e.ctx); err != nil {
		e.t.Fatalf("Check: %v", err)
	}
}

// expired returns the IDs DeleteExpired removes with q, sorted.
func (e *backendEnv) expired(b backend.Backend, q backend.ExpiredQuery) ([]backend.ID, bool) {
	e.t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	removed, more, err := b.DeleteExpired(e.ctx, q)
	if err != nil {
		e.t.Fatalf("DeleteExpired: %v", err)
	}
	return sortedIDs(removed), more
}

// dueAt checks that the record of id is indexed by deadline at exactly
// deadline: DeleteExpired just before it leaves the record, at it removes
// it. The record is gone afterwards.
func (e *backendEnv) dueAt(b backend.Backend, id backend.ID, deadline int64) {
	e.t.Helper()
	if got, _ := e.expired(b, backend.ExpiredQuery{Now: deadline - 1}); slices.Contains(got, id) {
		e.t.Fatalf("DeleteExpired removed the record 1ns before its deadline %d", deadline)
	}
	if got, _ := e.expired(b, backend.ExpiredQuery{Now: deadline}); !slices.Contains(got, id) {
		e.t.Fatalf("DeleteExpired at the deadline %d did not remove the record (removed %v)", deadline, got)
	}
}

func sortedIDs(rs []backend.Record) []backend.ID {
	ids := make([]backend.ID, 0, len(rs))
	for i := range rs {
		ids = append(ids, rs[i].ID)
	}
	slices.SortFunc(ids, cmpID)
	return ids
}

func cmpID(x, y backend.ID) int { return strings.Compare(string(x[:]), string(y[:])) }

func sameRecord(a, b *backend.Record) bool {
	return a.ID == b.ID && a.Hash == b.Hash && a.UserID == b.UserID && a.IP == b.IP &&
		a.UserAgent == b.UserAgent && a.Created == b.Created && a.LastSeen == b.LastSeen &&
		a.Expires == b.Expires && a.Identity == b.Identity && string(a.Values) == string(b.Values)
}

func testBackendCreateGet(e *backendEnv) {
	t := e.t
	b := e.open(0)
	v6 := NewRecord("alice", 0, time.Hour)
	v6.IP = netip.MustParseAddr("2001:db8::1")
	v6.Identity = 1<<63 + 5 // above int64
	noIP := NewRecord("", time.Second, time.Hour)
	noIP.IP = netip.Addr{}
	noIP.Values = nil
	v4 := NewRecord("bob", 2*time.Second, time.Hour)
	e.create(b, v6, noIP, v4)

	for _, want := range []*backend.Record{v6, noIP, v4} {
		got, err := e.get(b, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRecord(&got, want) {
			t.Errorf("Get = %+v\nwant  %+v", got, *want)
		}
		var head backend.Record
		if err := b.Get(e.ctx, want.ID, &head, false); err != nil || head.Hash != want.Hash || head.UserID != want.UserID {
			t.Errorf("Get without values: %+v, %v", head, err)
		}
	}
	if _, err := e.get(b, backend.ID{1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get of a missing ID: %v, want ErrNotFound", err)
	}
	if _, err := b.Create(e.ctx, v4, nil); err == nil {
		t.Fatal("Create of an existing ID succeeded")
	}
	if n := e.count(b); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	e.check(b)
}

func testBackendUpdate(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	r := NewRecord("alice", 0, 24*time.Hour)
	e.create(b, r)

	_, err := b.Update(e.ctx, r.ID, func(x *backend.Record) error {
		if x.UserID != "alice" || string(x.Values) != string(sampleValues[0]) {
			t.Errorf("change got %+v", *x)
		}
		x.UserID, x.Values, x.LastSeen, x.Identity = "carol", sampleValues[1], RecordBase+int64(3*time.Hour), 2
		x.Hash[0] ^= 1
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.get(b, r.ID)
	if err != nil || got.UserID != "carol" || string(got.Values) != string(sampleValues[1]) || got.Identity != 2 || got.Hash[0] != r.Hash[0]^1 {
		t.Fatalf("after Update: %+v, %v", got, err)
	}
	// The user index moved with it.
	if ids := e.listed(b, "carol"); len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("ListByUser(carol) = %v", ids)
	}
	if ids := e.listed(b, "alice"); len(ids) != 0 {
		t.Fatalf("ListByUser(alice) still lists %v", ids)
	}

	boom := errors.New("boom")
	if _, err := b.Update(e.ctx, r.ID, func(x *backend.Record) error { x.UserID = "mallory"; return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("Update with failing change: %v, want its error", err)
	}
	if got, err := e.get(b, r.ID); err != nil || got.UserID != "carol" {
		t.Fatalf("failed change stored something: %+v, %v", got, err)
	}
	called := false
	if _, err := b.Update(e.ctx, backend.ID{9}, func(*backend.Record) error { called = true; return nil }, nil); !errors.Is(err, backend.ErrNotFound) || called {
		t.Fatalf("Update of a missing ID: %v, change called %v", err, called)
	}
	e.check(b)
	// The deadline index moved too: last seen + idle.
	e.dueAt(b, r.ID, RecordBase+int64(4*time.Hour))
}

// listed returns the IDs ListByUser gives for user, failing on errors.
func (e *backendEnv) listed(b backend.Backend, user string) []backend.ID {
	e.t.Helper()
	var ids []backend.ID
	err := b.ListByUser(e.ctx, user, func(r *backend.Record, err error) {
		if err != nil {
			e.t.Errorf("ListByUser(%q): %v", user, err)
			return
		}
		ids = append(ids, r.ID)
	})
	if err != nil {
		e.t.Fatalf("ListByUser(%q): %v", user, err)
	}
	return ids
}

func testBackendTouch(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	r := NewRecord("alice", 0, 24*time.Hour)
	other := NewRecord("bob", 0, 24*time.Hour)
	e.create(b, r, other)
	gone := NewRecord("ghost", 0, 24*time.Hour) // never created

	later := RecordBase + int64(2*time.Hour)
	acts := []backend.Activity{
		{ID: r.ID, LastSeen: later - 1, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: "older dup"},
		{ID: r.ID, LastSeen: later, IP: netip.MustParseAddr("198.51.100.2"), UserAgent: "newest"},
		{ID: gone.ID, LastSeen: later, UserAgent: "ghost"},
		{ID: other.ID, LastSeen: later, IP: netip.MustParseAddr("2001:db8::7%eth0"), UserAgent: "v6"}, // the zone is not kept
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
	if _, err := e.get(b, gone.ID); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Touch resurrected a missing record: %v", err)
	}
	// Older activity moves nothing back, the client included.
	if err := b.Touch(e.ctx, []backend.Activity{{ID: r.ID, LastSeen: RecordBase, UserAgent: "stale"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.get(b, r.ID); err != nil || got.LastSeen != later || got.UserAgent != "newest" {
		t.Fatalf("stale Touch moved things back: %+v, %v", got, err)
	}
	if err := b.Touch(e.ctx, nil); err != nil {
		t.Fatalf("Touch of nothing: %v", err)
	}
	// A removed record stays removed.
	if _, err := b.Delete(e.ctx, other.ID, nil, backend.Ending{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(e.ctx, []backend.Activity{{ID: other.ID, LastSeen: later + 1}}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(b); n != 1 {
		t.Fatalf("Count = %d after removal and touch, want 1", n)
	}
	e.check(b)
	// The deadline index followed the activity.
	e.dueAt(b, r.ID, later+int64(idle))
}

func testBackendDelete(e *backendEnv) {
	t := e.t
	b := e.open(0)
	r := NewRecord("alice", 0, time.Hour)
	bad := NewRecord("alice", 0, time.Hour)
	e.create(b, r, bad)
	e.h.Corrupt(t, b, bad.ID)
	if _, err := e.get(b, bad.ID); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("Get of a corrupted record: %v, want ErrCorrupt", err)
	}

	mallory := "mallory"
	if _, err := b.Delete(e.ctx, r.ID, &mallory, backend.Ending{}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Delete by the wrong owner: %v, want ErrNotFound", err)
	}
	if _, err := b.Delete(e.ctx, bad.ID, &mallory, backend.Ending{}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Delete of an unreadable record by the wrong owner: %v, want ErrNotFound", err)
	}
	if _, err := e.get(b, r.ID); err != nil {
		t.Fatalf("the wrong owner removed the record: %v", err)
	}
	alice := "alice"
	got, err := b.Delete(e.ctx, r.ID, &alice, backend.Ending{})
	if err != nil || !sameRecord(&got, r) {
		t.Fatalf("Delete by the owner = %+v, %v; want the record", got, err)
	}
	if got, err := b.Delete(e.ctx, bad.ID, &alice, backend.Ending{}); err != nil || got.ID != bad.ID {
		t.Fatalf("Delete of an unreadable record by the owner = %v, %v", got.ID, err)
	}
	if _, err := b.Delete(e.ctx, r.ID, nil, backend.Ending{}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if n := e.count(b); n != 0 {
		t.Fatalf("Count = %d, want 0", n)
	}
	e.check(b)
}

func testBackendDeleteByUser(e *backendEnv) {
	t := e.t
	b := e.open(0)
	var alice []*backend.Record
	for i := range 5 {
		alice = append(alice, NewRecord("alice", time.Duration(i), time.Hour))
	}
	bob := NewRecord("bob", 0, time.Hour)
	e.create(b, alice...)
	e.create(b, bob)
	e.h.Corrupt(t, b, alice[1].ID) // unreadable: removed too

	removed, err := b.DeleteByUser(e.ctx, "alice", alice[0].ID, backend.Ending{})
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.ID{alice[1].ID, alice[2].ID, alice[3].ID, alice[4].ID}
	slices.SortFunc(want, cmpID)
	if got := sortedIDs(removed); !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if n := e.count(b); n != 2 {
		t.Fatalf("Count = %d, want alice's kept one and bob's", n)
	}
	removed, err = b.DeleteByUser(e.ctx, "alice", backend.ID{}, backend.Ending{})
	if err != nil || len(removed) != 1 || removed[0].ID != alice[0].ID {
		t.Fatalf("DeleteByUser without keep: %v, %v", sortedIDs(removed), err)
	}
	if removed, err = b.DeleteByUser(e.ctx, "nobody", backend.ID{}, backend.Ending{}); err != nil || len(removed) != 0 {
		t.Fatalf("DeleteByUser(nobody): %v, %v", sortedIDs(removed), err)
	}
	e.check(b)
}

func testBackendDeleteExpired(e *backendEnv) {
	t := e.t
	idle := time.Hour
	b := e.open(idle)
	now := RecordBase + int64(10*time.Hour)
	grace := 10 * time.Minute

	absolute := NewRecord("a", 0, time.Hour)              // expired 9h ago (absolute)
	idleLong := NewRecord("b", 8*time.Hour, 24*time.Hour) // idle deadline 9h: 1h past, beyond grace
	idleRecent := NewRecord("c", 9*time.Hour-5*time.Minute, 24*time.Hour)
	idleRecent.LastSeen = now - int64(idle) - int64(5*time.Minute)   // idle deadline 5 min ago: within grace
	live := NewRecord("d", 9*time.Hour+30*time.Minute, 24*time.Hour) // idle deadline in 30 min
	kept := NewRecord("e", 0, time.Hour)                             // expired, vetoed by Keep
	e.create(b, absolute, idleLong, idleRecent, live, kept)

	keep := func(id backend.ID) bool { return id == kept.ID }
	removed, more := e.expired(b, backend.ExpiredQuery{Now: now, IdleGrace: grace, Keep: keep})
	want := []backend.ID{absolute.ID, idleLong.ID}
	slices.SortFunc(want, cmpID)
	if !slices.Equal(removed, want) || more {
		t.Fatalf("removed %v more %v, want %v", removed, more, want)
	}
	// Without grace, the recent idle one goes too.
	if removed, _ := e.expired(b, backend.ExpiredQuery{Now: now, Keep: keep}); len(removed) != 1 || removed[0] != idleRecent.ID {
		t.Fatalf("without grace: %v", removed)
	}
	if n := e.count(b); n != 2 {
		t.Fatalf("Count = %d, want live and kept", n)
	}

	// Limit and more, with vetoed records at the front not stalling it.
	var batch []*backend.Record
	for i := range 25 {
		batch = append(batch, NewRecord("f", time.Duration(i)*time.Second, time.Hour))
	}
	e.create(b, batch...)
	total := 0
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("DeleteExpired never finished")
		}
		removed, more := e.expired(b, backend.ExpiredQuery{Now: now, Limit: 10, Keep: keep})
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
	if n := e.count(b); n != 2 {
		t.Fatalf("Count = %d at the end, want 2", n)
	}
	// Limit 0 means the Backend's default, not "none".
	due := NewRecord("g", 0, time.Hour)
	e.create(b, due)
	gone, _, err := b.DeleteExpired(e.ctx, backend.ExpiredQuery{Now: now, Keep: keep})
	if err != nil || len(gone) != 1 || gone[0].ID != due.ID {
		t.Fatalf("DeleteExpired with Limit 0 = %v, %v; want the due record", sortedIDs(gone), err)
	}
	e.check(b)
}

func testBackendScan(e *backendEnv) {
	t := e.t
	b := e.open(0)
	var all []*backend.Record
	for i := range 12 {
		r := NewRecord([]string{"alice", "bob", ""}[i%3], time.Duration(i)*time.Millisecond, time.Hour)
		r.IP = []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("2001:db8:1::5"), {}}[i%4]
		all = append(all, r)
	}
	e.create(b, all...)
	cases := []struct {
		name string
		f    backend.ScanFilter
		keep func(r *backend.Record) bool
	}{
		{"all", backend.ScanFilter{}, func(*backend.Record) bool { return true }},
		{"user", backend.ScanFilter{UserID: "bob"}, func(r *backend.Record) bool { return r.UserID == "bob" }},
		{"anonymous", backend.ScanFilter{Anonymous: true}, func(r *backend.Record) bool { return r.UserID == "" }},
		{"ipv4 /16", backend.ScanFilter{IPPrefix: netip.MustParsePrefix("10.1.0.0/16")}, func(r *backend.Record) bool { return r.IP == netip.MustParseAddr("10.1.2.3") }},
		{"ipv4 /8 unmasked", backend.ScanFilter{IPPrefix: netip.MustParsePrefix("10.200.3.4/8")}, func(r *backend.Record) bool { return r.IP.Is4() }},
		{"ipv6", backend.ScanFilter{IPPrefix: netip.MustParsePrefix("2001:db8::/32")}, func(r *backend.Record) bool { return r.IP.Is6() }},
		{"user and ip", backend.ScanFilter{UserID: "alice", IPPrefix: netip.MustParsePrefix("10.0.0.0/8")}, func(r *backend.Record) bool { return r.UserID == "alice" && r.IP.Is4() }},
	}
	for _, c := range cases {
		for _, limit := range []int{1, 5, 100} {
			got := e.scan(b, c.f, limit)
			// A Backend may ignore the filter (the Store applies it
			// again), so what it returns must include every match, in ID
			// order, each once.
			var want []backend.ID
			for _, r := range all {
				if c.keep(r) {
					want = append(want, r.ID)
				}
			}
			slices.SortFunc(want, cmpID)
			var matching []backend.ID
			for _, id := range got {
				if i := slices.IndexFunc(all, func(r *backend.Record) bool { return r.ID == id }); i >= 0 && c.keep(all[i]) {
					matching = append(matching, id)
				}
			}
			if e.h.ExactScan && !slices.Equal(got, want) {
				t.Errorf("%s, limit %d: got %v, want exactly %v", c.name, limit, got, want)
			}
			if !slices.IsSortedFunc(got, cmpID) || len(slices.Compact(slices.Clone(got))) != len(got) || !slices.Equal(matching, want) {
				t.Errorf("%s, limit %d: got %v, want (at least, in ID order, once each) %v", c.name, limit, got, want)
			}
		}
	}
}

// scan pages through Scan with limit and returns the IDs it visited.
func (e *backendEnv) scan(b backend.Backend, f backend.ScanFilter, limit int) []backend.ID {
	e.t.Helper()
	var ids []backend.ID
	var after backend.ID
	for range 100 {
		last, done, err := b.Scan(e.ctx, f, after, limit, func(r *backend.Record, err error) {
			if err != nil {
				e.t.Errorf("Scan: %v", err)
				return
			}
			ids = append(ids, r.ID)
		})
		if err != nil {
			e.t.Fatal(err)
		}
		if done {
			return ids
		}
		if last == after {
			e.t.Fatal("Scan made no progress")
		}
		after = last
	}
	e.t.Fatal("Scan never done")
	return nil
}

func testBackendListUnreadable(e *backendEnv) {
	t := e.t
	b := e.open(0)
	good, bad := NewRecord("alice", 0, time.Hour), NewRecord("alice", 1, time.Hour)
	e.create(b, good, bad)
	e.h.Corrupt(t, b, bad.ID)
	var ok, corrupt []backend.ID
	err := b.ListByUser(e.ctx, "alice", func(r *backend.Record, err error) {
		if err != nil {
			if !errors.Is(err, backend.ErrCorrupt) {
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

func testBackendIdleChange(e *backendEnv) {
	t := e.t
	b := e.open(0)
	r := NewRecord("a", 0, 10*time.Hour)
	late := NewRecord("b", 0, 10*time.Hour)
	late.LastSeen = RecordBase + int64(9*time.Hour+30*time.Minute)
	e.create(b, r, late)

	// Under idle 1h the deadline is last seen + 1h: found by the index.
	b = e.reopen(b, time.Hour)
	e.check(b)
	e.dueAt(b, r.ID, r.LastSeen+int64(time.Hour))

	// A tool opening with UseStoredIdleTimeout gets 1h.
	b = e.h.Reopen(t, b)
	if got, err := b.Open(e.ctx, backend.UseStoredIdleTimeout, slog.New(slog.DiscardHandler)); err != nil || got != time.Hour {
		t.Fatalf("stored idle = %v, %v; want 1h", got, err)
	}
	// A huge idle timeout saturates instead of overflowing: the deadline
	// is the absolute one.
	b = e.reopen(b, time.Duration(1<<62))
	e.check(b)
	e.dueAt(b, late.ID, late.Expires)
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
	if _, err := e.get(b, backend.ID{}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Create(e.ctx, NewRecord("a", 0, time.Hour), nil); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}
	if sb, ok := b.(backend.SharedBackend); ok {
		if err := sb.Subscribe(e.ctx, nopFeed{}); !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
		}
	}
}

// nopFeed is a ChangeFeed that ignores what it hears.
type nopFeed struct{}

func (nopFeed) Changed([]backend.ID) {}
func (nopFeed) Lost()                {}
func (nopFeed) Restored()            {}
