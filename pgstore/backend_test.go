package pgstore

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

func TestOpenRejectsUnsafeTableNames(t *testing.T) {
	for _, name := range []string{"Users", "a-b", "x; DROP TABLE y", "1abc", `"q"`, strings.Repeat("a", 41)} {
		if _, err := Open(ctxT(t), "host=/nonexistent", &Options{Table: name}); err == nil || !strings.Contains(err.Error(), "table name") {
			t.Errorf("table %q: err %v, want a table name error", name, err)
		}
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(ctxT(t), "host="+dir+" port=5432 user=postgres connect_timeout=2", nil)
	if !errors.Is(err, usersessions.ErrUnavailable) {
		t.Fatalf("Open on a missing server: %v, want ErrUnavailable", err)
	}
}

func TestCreateGetRoundTrip(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	v6 := rec("alice", 0, time.Hour)
	v6.IP = netip.MustParseAddr("2001:db8::1")
	v6.Identity = 1<<63 + 5 // above int64
	noIP := rec("", time.Second, time.Hour)
	noIP.IP = netip.Addr{}
	noIP.Values = nil
	v4 := rec("bob", 2*time.Second, time.Hour)
	mustCreate(t, b, v6, noIP, v4)

	for _, want := range []*backend.Record{v6, noIP, v4} {
		var got backend.Record
		if err := b.Get(ctx, want.ID, &got, true); err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Hash != want.Hash || got.UserID != want.UserID || got.IP != want.IP ||
			got.UserAgent != want.UserAgent || got.Created != want.Created || got.LastSeen != want.LastSeen ||
			got.Expires != want.Expires || got.Identity != want.Identity || string(got.Values) != string(want.Values) {
			t.Errorf("Get = %+v\nwant  %+v", got, *want)
		}
		if err := b.Get(ctx, want.ID, &got, false); err != nil || got.Values != nil || got.Hash != want.Hash {
			t.Errorf("Get without values: %v, values %q", err, got.Values)
		}
	}
	var r backend.Record
	if err := b.Get(ctx, backend.ID{1}, &r, true); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Get of a missing ID: %v", err)
	}
	if err := create(b, ctx, v4); err == nil {
		t.Fatal("Create of an existing ID succeeded")
	}
	if n, err := b.Count(ctx); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, 24*time.Hour)
	mustCreate(t, b, r)

	err := update(b, ctx, r.ID, func(x *backend.Record) error {
		if x.UserID != "alice" || string(x.Values) != "values" {
			t.Errorf("change got %+v", *x)
		}
		x.UserID, x.Values, x.LastSeen, x.Identity = "carol", []byte("new"), base+int64(3*time.Hour), 2
		x.Hash[0] ^= 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got backend.Record
	if err := b.Get(ctx, r.ID, &got, true); err != nil {
		t.Fatal(err)
	}
	if got.UserID != "carol" || string(got.Values) != "new" || got.Identity != 2 || got.Hash[0] != r.Hash[0]^1 {
		t.Fatalf("after Update: %+v", got)
	}
	if d := e.queryInt64(t, "SELECT deadline FROM "+e.quoted()+" WHERE id = $1", r.ID[:]); d != base+int64(4*time.Hour) {
		t.Fatalf("deadline = %d, want last_seen + idle = %d", d, base+int64(4*time.Hour))
	}
	// The user index moved with it.
	var listed []backend.ID
	if err := b.ListByUser(ctx, "carol", func(x *backend.Record, err error) { listed = append(listed, x.ID) }); err != nil || len(listed) != 1 || listed[0] != r.ID {
		t.Fatalf("ListByUser(carol) = %v, %v", listed, err)
	}
	listed = nil
	_ = b.ListByUser(ctx, "alice", func(x *backend.Record, err error) { listed = append(listed, x.ID) })
	if len(listed) != 0 {
		t.Fatalf("ListByUser(alice) still lists %v", listed)
	}

	boom := errors.New("boom")
	if err := update(b, ctx, r.ID, func(x *backend.Record) error { x.UserID = "mallory"; return boom }); err != boom {
		t.Fatalf("Update with failing change: %v", err)
	}
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != "carol" {
		t.Fatalf("failed change stored something: %+v, %v", got, err)
	}
	called := false
	if err := update(b, ctx, backend.ID{9}, func(*backend.Record) error { called = true; return nil }); !errors.Is(err, usersessions.ErrNotFound) || called {
		t.Fatalf("Update of a missing ID: %v, change called %v", err, called)
	}
}

func TestTouchNeverResurrectsNorGoesBack(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, 24*time.Hour)
	other := rec("bob", 0, 24*time.Hour)
	mustCreate(t, b, r, other)
	gone := rec("ghost", 0, 24*time.Hour) // never created

	later := base + int64(2*time.Hour)
	acts := []backend.Activity{
		{ID: r.ID, LastSeen: later - 1, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: "older dup"},
		{ID: r.ID, LastSeen: later, IP: netip.MustParseAddr("198.51.100.2"), UserAgent: "newest"},
		{ID: gone.ID, LastSeen: later, UserAgent: "ghost"},
		{ID: other.ID, LastSeen: later, IP: netip.MustParseAddr("2001:db8::7%eth0"), UserAgent: "v6"},
	}
	if err := b.Touch(ctx, acts); err != nil {
		t.Fatal(err)
	}
	var got backend.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil {
		t.Fatal(err)
	}
	if got.LastSeen != later || got.UserAgent != "newest" || got.IP != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("after Touch: %+v", got)
	}
	if err := b.Get(ctx, other.ID, &got, false); err != nil || got.IP != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("v6 touch: %+v %v", got, err)
	}
	if err := b.Get(ctx, gone.ID, &got, false); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch resurrected a missing record: %v", err)
	}
	if d := e.queryInt64(t, "SELECT deadline FROM "+e.quoted()+" WHERE id = $1", r.ID[:]); d != later+int64(idle) {
		t.Fatalf("deadline after Touch = %d, want %d", d, later+int64(idle))
	}
	// Older activity moves nothing back, the client included.
	if err := b.Touch(ctx, []backend.Activity{{ID: r.ID, LastSeen: base, UserAgent: "stale"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.LastSeen != later || got.UserAgent != "newest" {
		t.Fatalf("stale Touch moved things back: %+v, %v", got, err)
	}
	// A deleted record stays deleted.
	if err := del(b, ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, []backend.Activity{{ID: r.ID, LastSeen: later + 1}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(ctx); n != 1 {
		t.Fatalf("Count = %d after delete and touch, want 1", n)
	}
	if err := b.Touch(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteOwnerAndUnreadable(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, time.Hour)
	bad := rec("alice", 0, time.Hour)
	mustCreate(t, b, r, bad)
	e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x0102' WHERE id = $1", bad.ID[:])
	var got backend.Record
	if err := b.Get(ctx, bad.ID, &got, true); !errors.Is(err, usersessions.ErrCorrupt) {
		t.Fatalf("Get of a bad hash: %v, want ErrCorrupt", err)
	}

	mallory := "mallory"
	if err := del(b, ctx, r.ID, &mallory); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Delete by the wrong owner: %v", err)
	}
	if err := b.Get(ctx, r.ID, &got, false); err != nil {
		t.Fatalf("wrong owner removed the record: %v", err)
	}
	alice := "alice"
	for _, id := range []backend.ID{r.ID, bad.ID} {
		if err := del(b, ctx, id, &alice); err != nil {
			t.Fatalf("Delete by the owner: %v", err)
		}
	}
	if err := del(b, ctx, r.ID, nil); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if n, _ := b.Count(ctx); n != 0 {
		t.Fatalf("Count = %d", n)
	}
}

func TestDeleteByUser(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	var alice []*backend.Record
	for i := range 5 {
		alice = append(alice, rec("alice", time.Duration(i), time.Hour))
	}
	bob := rec("bob", 0, time.Hour)
	mustCreate(t, b, alice...)
	mustCreate(t, b, bob)
	e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x' WHERE id = $1", alice[1].ID[:]) // unreadable, removed too

	removed, err := delByUser(b, ctx, "alice", alice[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.ID{alice[1].ID, alice[2].ID, alice[3].ID, alice[4].ID}
	slices.SortFunc(removed, cmpID)
	slices.SortFunc(want, cmpID)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if n, _ := b.Count(ctx); n != 2 {
		t.Fatalf("Count = %d, want alice's kept one and bob's", n)
	}
	removed, err = delByUser(b, ctx, "alice", backend.ID{})
	if err != nil || len(removed) != 1 || removed[0] != alice[0].ID {
		t.Fatalf("DeleteByUser without keep: %v, %v", removed, err)
	}
	if removed, err = delByUser(b, ctx, "nobody", backend.ID{}); err != nil || len(removed) != 0 {
		t.Fatalf("DeleteByUser(nobody): %v, %v", removed, err)
	}
}

func cmpID(x, y backend.ID) int { return strings.Compare(string(x[:]), string(y[:])) }

func TestDeleteExpiredGraceKeepLimit(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	now := base + int64(10*time.Hour)
	grace := 10 * time.Minute

	absolute := rec("a", 0, time.Hour)              // expired 9h ago (absolute)
	idleLong := rec("b", 8*time.Hour, 24*time.Hour) // idle deadline 9h: 1h past, beyond grace
	idleRecent := rec("c", 9*time.Hour-5*time.Minute, 24*time.Hour)
	idleRecent.LastSeen = now - int64(idle) - int64(5*time.Minute) // idle deadline 5 min ago: within grace
	live := rec("d", 9*time.Hour+30*time.Minute, 24*time.Hour)     // idle deadline in 30 min
	kept := rec("e", 0, time.Hour)                                 // expired, vetoed by Keep
	mustCreate(t, b, absolute, idleLong, idleRecent, live, kept)

	keep := func(id backend.ID) bool { return id == kept.ID }
	removed, more, err := delExpired(b, ctx, backend.ExpiredQuery{Now: now, IdleGrace: grace, Limit: 100, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(removed, cmpID)
	want := []backend.ID{absolute.ID, idleLong.ID}
	slices.SortFunc(want, cmpID)
	if !slices.Equal(removed, want) || more {
		t.Fatalf("removed %v more %v, want %v", removed, more, want)
	}
	// Without grace, the recent idle one goes too.
	removed, _, err = delExpired(b, ctx, backend.ExpiredQuery{Now: now, Limit: 100, Keep: keep})
	if err != nil || len(removed) != 1 || removed[0] != idleRecent.ID {
		t.Fatalf("without grace: %v, %v", removed, err)
	}
	if n, _ := b.Count(ctx); n != 2 {
		t.Fatalf("Count = %d, want live and kept", n)
	}

	// Limit and more, with vetoed records at the front not stalling it.
	var batch []*backend.Record
	for i := range 25 {
		batch = append(batch, rec("f", time.Duration(i)*time.Second, time.Hour))
	}
	mustCreate(t, b, batch...)
	total := 0
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("DeleteExpired never finished")
		}
		removed, more, err := delExpired(b, ctx, backend.ExpiredQuery{Now: now, Limit: 10, Keep: keep})
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
	if n, _ := b.Count(ctx); n != 2 {
		t.Fatalf("Count = %d at the end", n)
	}
}

func TestDeleteExpiredFromTwoBackendsAtOnce(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, nil)
	const n = 400
	all := map[backend.ID]bool{}
	var rs []*backend.Record
	for i := range n {
		r := rec("u", time.Duration(i)*time.Millisecond, time.Minute)
		rs = append(rs, r)
		all[r.ID] = true
	}
	mustCreate(t, a, rs...)
	now := base + int64(time.Hour)
	var mu sync.Mutex
	seen := map[backend.ID]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, be := range []*Backend{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				removed, more, err := delExpired(be, ctxT(t), backend.ExpiredQuery{Now: now, Limit: 15})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, id := range removed {
					seen[id]++
				}
				mu.Unlock()
				if !more {
					return
				}
			}
		}()
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
		if c != 1 || !all[id] {
			t.Fatalf("%v removed %d times (ours: %v)", id, c, all[id])
		}
	}
	if c, _ := a.Count(ctxT(t)); c != 0 {
		t.Fatalf("Count = %d", c)
	}
}

func TestScanFilters(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	var all []*backend.Record
	for i := range 12 {
		user := []string{"alice", "bob", ""}[i%3]
		r := rec(user, time.Duration(i)*time.Millisecond, time.Hour)
		switch i % 4 {
		case 0:
			r.IP = netip.MustParseAddr("10.1.2.3")
		case 1:
			r.IP = netip.MustParseAddr("10.9.0.1")
		case 2:
			r.IP = netip.MustParseAddr("2001:db8:1::5")
		case 3:
			r.IP = netip.Addr{}
		}
		all = append(all, r)
	}
	mustCreate(t, b, all...)
	collect := func(f backend.ScanFilter, limit int) []backend.ID {
		t.Helper()
		var ids []backend.ID
		var after backend.ID
		for range 100 {
			last, done, err := b.Scan(ctx, f, after, limit, func(r *backend.Record, err error) {
				if err != nil {
					t.Errorf("scan error: %v", err)
					return
				}
				ids = append(ids, r.ID)
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
	want := func(keep func(r *backend.Record) bool) []backend.ID {
		var ids []backend.ID
		for _, r := range all {
			if keep(r) {
				ids = append(ids, r.ID)
			}
		}
		slices.SortFunc(ids, cmpID)
		return ids
	}
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
			got := collect(c.f, limit)
			if w := want(c.keep); !slices.Equal(got, w) {
				t.Errorf("%s, limit %d: got %d IDs, want %d\n%v\n%v", c.name, limit, len(got), len(w), got, w)
			}
		}
	}
}

func TestListByUserReportsUnreadable(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	good, bad := rec("alice", 0, time.Hour), rec("alice", 1, time.Hour)
	mustCreate(t, b, good, bad)
	e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x00' WHERE id = $1", bad.ID[:])
	var ok, corrupt []backend.ID
	err := b.ListByUser(ctxT(t), "alice", func(r *backend.Record, err error) {
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

func TestCheckFindsProblems(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, time.Hour, nil)
	ctx := ctxT(t)
	rs := []*backend.Record{rec("a", 0, 2*time.Hour), rec("b", 0, 2*time.Hour), rec("c", 0, 2*time.Hour), rec("d", 0, 2*time.Hour)}
	mustCreate(t, b, rs...)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of a sound table: %v", err)
	}
	e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x01' WHERE id = $1", rs[0].ID[:])
	e.exec(t, "UPDATE "+e.quoted()+" SET deadline = deadline + 1 WHERE id = $1", rs[1].ID[:])
	e.exec(t, "UPDATE "+e.quoted()+" SET id = '\\x0102' WHERE id = $1", rs[2].ID[:])
	err := b.Check(ctx)
	if !errors.Is(err, usersessions.ErrCorrupt) {
		t.Fatalf("Check: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{
		fmt.Sprintf("%x: hash is not 32", rs[0].ID[:]),
		fmt.Sprintf("%x: deadline disagrees", rs[1].ID[:]),
		"0102: id is not 16",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check's report lacks %q:\n%v", want, err)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Errorf("Check reported %d problems, want 3:\n%v", n, err)
	}
}

func TestIdleChangeReindexes(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("a", 0, 10*time.Hour)
	mustCreate(t, b, r)
	deadline := func() int64 { return e.queryInt64(t, "SELECT deadline FROM "+e.quoted()+" WHERE id = $1", r.ID[:]) }
	if d := deadline(); d != r.Expires {
		t.Fatalf("deadline without idle = %d, want expires %d", d, r.Expires)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := e.open(t, time.Hour, nil)
	if d := deadline(); d != r.LastSeen+int64(time.Hour) {
		t.Fatalf("deadline after idle 1h = %d, want %d", d, r.LastSeen+int64(time.Hour))
	}
	if err := b2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Expired under the new idle timeout: DeleteExpired finds it by index.
	removed, _, err := delExpired(b2, ctx, backend.ExpiredQuery{Now: r.LastSeen + int64(2*time.Hour), Limit: 10})
	if err != nil || len(removed) != 1 {
		t.Fatalf("DeleteExpired under the new idle: %v, %v", removed, err)
	}

	// A tool opening with UseStoredIdleTimeout gets 1h.
	b3, err := Open(ctx, e.dsn, &Options{Table: e.table})
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if got, err := b3.Open(ctx, usersessions.UseStoredIdleTimeout, discard()); err != nil || got != time.Hour {
		t.Fatalf("stored idle = %v, %v; want 1h", got, err)
	}
	// A huge idle timeout saturates instead of overflowing.
	big := rec("a", 0, 10*time.Hour)
	mustCreate(t, b3, big)
	b4 := e.open(t, time.Duration(1<<62), nil)
	if err := b4.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.queryInt64(t, "SELECT deadline FROM "+e.quoted()+" WHERE id = $1", big.ID[:]); d != big.Expires {
		t.Fatalf("deadline with a huge idle = %d, want expires", d)
	}
}

func TestOpenConcurrently(t *testing.T) {
	e := sharedEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Open(ctxT(t), e.dsn, &Options{Table: e.table})
			if err != nil {
				errs <- err
				return
			}
			defer b.Close()
			if _, err := b.Open(ctxT(t), time.Duration(i)*time.Minute, discard()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Open: %v", err)
	}
}

func TestClosedBackend(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var r backend.Record
	if err := b.Get(ctxT(t), backend.ID{}, &r, false); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := b.Subscribe(ctxT(t), newRecorder()); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestTouchFromTwoBackendsInOppositeOrders(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, time.Hour, nil)
	b := e.open(t, time.Hour, nil)
	var rs []*backend.Record
	for i := range 60 {
		rs = append(rs, rec("u", time.Duration(i), 24*time.Hour))
	}
	mustCreate(t, a, rs...)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	start := time.Now()
	for k, be := range []*Backend{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 30 {
				acts := make([]backend.Activity, len(rs))
				for i, r := range rs {
					acts[i] = backend.Activity{ID: r.ID, LastSeen: r.LastSeen + int64(round*2+k), UserAgent: fmt.Sprint(k)}
				}
				if k == 1 {
					slices.Reverse(acts)
				}
				if err := be.Touch(ctxT(t), acts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Touch: %v", err)
	}
	// A deadlock is retried, but only after deadlock_timeout (1 s): the
	// rows must be locked in one order so that none happens.
	if n := a.retries.Load() + b.retries.Load(); n > 0 {
		t.Fatalf("%d Touches ran again after a deadlock (took %v)", n, time.Since(start))
	}
	for _, r := range rs {
		var got backend.Record
		if err := a.Get(ctxT(t), r.ID, &got, false); err != nil {
			t.Fatal(err)
		}
		if got.LastSeen != r.LastSeen+int64(29*2+1) || got.UserAgent != "1" {
			t.Fatalf("after both: last seen +%d by %q, want the newest (+59 by 1)", got.LastSeen-r.LastSeen, got.UserAgent)
		}
	}
	if err := a.Check(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	e := sharedEnv(t)
	e.open(t, 0, nil)
	e.exec(t, "UPDATE "+e.table+"_settings SET value = 99 WHERE name = 'schema_version'")
	b, err := Open(ctxT(t), e.dsn, &Options{Table: e.table})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Open(ctxT(t), 0, discard()); !errors.Is(err, usersessions.ErrSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchema", err)
	}
}
