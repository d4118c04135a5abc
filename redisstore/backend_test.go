package redisstore

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// do runs a raw command on e's server.
func (e env) do(t testing.TB, args ...string) string {
	t.Helper()
	return e.srv.Do(t, args...)
}

// recKey is the key of r's record under e's prefix.
func (e env) recKey(r *usersessions.Record) string {
	b := &Backend{base: e.prefix + ":"}
	return b.groupOf(r.UserID, r.ID).rec(r.ID)
}

func cmpID(x, y usersessions.ID) int { return bytes.Compare(x[:], y[:]) }

func TestOpenRejectsBadPrefixesAndURLs(t *testing.T) {
	for _, p := range []string{"a b", "x{y}", "é", strings.Repeat("a", 65), "a\nb"} {
		if _, err := Open(ctxT(t), "redis://127.0.0.1:1", &Options{Prefix: p}); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("prefix %q: err %v, want a prefix error", p, err)
		}
	}
	for _, u := range []string{"postgres://h/db", "sessions.db", "http://h", "redis://:s3cret@h:notaport/"} {
		_, err := Open(ctxT(t), u, nil)
		if err == nil {
			t.Errorf("Open(%q) accepted", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): the password is in the error: %v", u, err)
		}
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(ctxT(t), "unix://"+sock, nil)
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
	odd := rec("wëird {user} : with\x00bytes", 3*time.Second, time.Hour)
	odd.Values = []byte{0, 0xff, '{', '}', ':', 0}
	mustCreate(t, b, v6, noIP, v4, odd)

	for _, want := range []*usersessions.Record{v6, noIP, v4, odd} {
		var got usersessions.Record
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
	var r usersessions.Record
	if err := b.Get(ctx, usersessions.ID{1}, &r, true); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Get of a missing ID: %v", err)
	}
	if _, err := b.Create(ctx, v4, nil); err == nil {
		t.Fatal("Create of an existing ID succeeded")
	}
	// The same ID for another user (a collision): refused, and the
	// session that has it is untouched.
	twin := *v4
	twin.UserID, twin.Hash = "carol", [32]byte{7}
	if _, err := b.Create(ctx, &twin, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Create of an existing ID in another group: %v", err)
	}
	if err := b.Get(ctx, v4.ID, &r, false); err != nil || r.UserID != "bob" || r.Hash != v4.Hash {
		t.Fatalf("the session with that ID after the refused twin: %+v, %v", r, err)
	}
	if n := 0; b.ListByUser(ctx, "carol", func(*usersessions.Record, error) { n++ }) != nil || n != 0 {
		t.Fatalf("the refused twin is listed for carol")
	}
	if n, err := b.Count(ctx); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// A record's key in Redis carries its user's hash tag, and Redis's own
// expiry is set a day past its absolute lifetime, on the record and on its
// locator.
func TestLayoutAndRedisExpiry(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	r := rec("alice", 0, 2*time.Hour)
	mustCreate(t, b, r)
	key := e.recKey(r)
	if !strings.Contains(key, "{u"+"YWxpY2U"+"}") {
		t.Fatalf("record key %q lacks alice's hash tag", key)
	}
	want := (2*time.Hour + expiryMargin).Milliseconds()
	for _, k := range []string{key, b.loc(r.ID)} {
		pttl, _ := strconv.ParseInt(e.do(t, "PTTL", k), 10, 64)
		if pttl > want || pttl < want-60_000 {
			t.Errorf("PTTL of %s = %d ms, want about %d", k, pttl, want)
		}
	}
	forever := rec("bob", 0, 0)
	forever.Expires = 1<<63 - 1
	mustCreate(t, b, forever)
	if pttl := e.do(t, "PTTL", e.recKey(forever)); pttl != "-1" {
		t.Fatalf("a record without an absolute limit has PTTL %s, want none", pttl)
	}
}

func TestUpdate(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, 24*time.Hour)
	mustCreate(t, b, r)

	err := update(b, ctx, r.ID, func(x *usersessions.Record) error {
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
	var got usersessions.Record
	if err := b.Get(ctx, r.ID, &got, true); err != nil {
		t.Fatal(err)
	}
	if got.UserID != "carol" || string(got.Values) != "new" || got.Identity != 2 || got.Hash[0] != r.Hash[0]^1 {
		t.Fatalf("after Update: %+v", got)
	}
	moved := *r
	moved.UserID = "carol"
	if d := e.do(t, "HGET", e.recKey(&moved), "d"); d != timeText(base+int64(4*time.Hour)) {
		t.Fatalf("deadline = %s, want last seen + idle", d)
	}
	// The record moved to carol's group, with her index.
	var listed []usersessions.ID
	if err := b.ListByUser(ctx, "carol", func(x *usersessions.Record, err error) { listed = append(listed, x.ID) }); err != nil || len(listed) != 1 || listed[0] != r.ID {
		t.Fatalf("ListByUser(carol) = %v, %v", listed, err)
	}
	listed = nil
	_ = b.ListByUser(ctx, "alice", func(x *usersessions.Record, err error) { listed = append(listed, x.ID) })
	if len(listed) != 0 {
		t.Fatalf("ListByUser(alice) still lists %v", listed)
	}
	if n := e.do(t, "EXISTS", e.recKey(r)); n != "0" {
		t.Fatal("the record stayed in alice's group too")
	}

	boom := errors.New("boom")
	if err := update(b, ctx, r.ID, func(x *usersessions.Record) error { x.UserID = "mallory"; return boom }); err != boom {
		t.Fatalf("Update with failing change: %v", err)
	}
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != "carol" {
		t.Fatalf("failed change stored something: %+v, %v", got, err)
	}
	// Out to anonymous and back to a user.
	for _, user := range []string{"", "dave"} {
		if err := update(b, ctx, r.ID, func(x *usersessions.Record) error { x.UserID = user; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != user {
			t.Fatalf("after moving to %q: %+v, %v", user, got, err)
		}
	}
	called := false
	if err := update(b, ctx, usersessions.ID{9}, func(*usersessions.Record) error { called = true; return nil }); !errors.Is(err, usersessions.ErrNotFound) || called {
		t.Fatalf("Update of a missing ID: %v, change called %v", err, called)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTouchNeverResurrectsNorGoesBack(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, 24*time.Hour)
	other := rec("", 0, 24*time.Hour)
	mustCreate(t, b, r, other)
	gone := rec("ghost", 0, 24*time.Hour) // never created

	later := base + int64(2*time.Hour)
	acts := []usersessions.Activity{
		{ID: r.ID, LastSeen: later - 1, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: "older dup"},
		{ID: r.ID, LastSeen: later, IP: netip.MustParseAddr("198.51.100.2"), UserAgent: "newest"},
		{ID: gone.ID, LastSeen: later, UserAgent: "ghost"},
		{ID: other.ID, LastSeen: later, IP: netip.MustParseAddr("2001:db8::7%eth0"), UserAgent: "v6"},
	}
	if err := b.Touch(ctx, acts); err != nil {
		t.Fatal(err)
	}
	var got usersessions.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil {
		t.Fatal(err)
	}
	if got.LastSeen != later || got.UserAgent != "newest" || got.IP != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("after Touch: %+v", got)
	}
	if err := b.Get(ctx, other.ID, &got, false); err != nil || got.IP != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("v6 touch of an anonymous session: %+v %v", got, err)
	}
	if err := b.Get(ctx, gone.ID, &got, false); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("Touch resurrected a missing record: %v", err)
	}
	if d := e.do(t, "HGET", e.recKey(r), "d"); d != timeText(later+int64(idle)) {
		t.Fatalf("deadline after Touch = %s, want %s", d, timeText(later+int64(idle)))
	}
	// Older activity moves nothing back, the client included.
	if err := b.Touch(ctx, []usersessions.Activity{{ID: r.ID, LastSeen: base, UserAgent: "stale"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.LastSeen != later || got.UserAgent != "newest" {
		t.Fatalf("stale Touch moved things back: %+v, %v", got, err)
	}
	// A deleted record stays deleted.
	if err := del(b, ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, []usersessions.Activity{{ID: r.ID, LastSeen: later + 1}}); err != nil {
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

// A Touch through a locator another instance changed since this one cached
// it still reaches the record.
func TestTouchFollowsAMovedSession(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("", 0, 24*time.Hour)
	mustCreate(t, a, r)
	var got usersessions.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil { // b caches the locator "a"
		t.Fatal(err)
	}
	if err := update(a, ctx, r.ID, func(x *usersessions.Record) error { x.UserID = "alice"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, []usersessions.Activity{{ID: r.ID, LastSeen: base + 5, UserAgent: "via b"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Get(ctx, r.ID, &got, false); err != nil || got.UserAgent != "via b" || got.UserID != "alice" {
		t.Fatalf("after b's Touch: %+v, %v", got, err)
	}
}

func TestDeleteOwnerAndUnreadable(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, time.Hour)
	bad := rec("alice", 0, time.Hour)
	mustCreate(t, b, r, bad)
	e.do(t, "HSET", e.recKey(bad), "h", "\x01\x02")
	var got usersessions.Record
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
	for _, id := range []usersessions.ID{r.ID, bad.ID} {
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
	if err := b.Check(ctx); err != nil {
		t.Fatalf("leftovers after the deletes: %v", err)
	}
}

func TestDeleteByUser(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	var alice []*usersessions.Record
	for i := range 5 {
		alice = append(alice, rec("alice", time.Duration(i), time.Hour))
	}
	bob := rec("bob", 0, time.Hour)
	mustCreate(t, b, alice...)
	mustCreate(t, b, bob)
	e.do(t, "HSET", e.recKey(alice[1]), "h", "") // unreadable, removed too

	removed, err := b.DeleteByUser(ctx, "alice", alice[0].ID, usersessions.Ending{})
	if err != nil {
		t.Fatal(err)
	}
	got := idsOf(removed)
	want := []usersessions.ID{alice[1].ID, alice[2].ID, alice[3].ID, alice[4].ID}
	slices.SortFunc(got, cmpID)
	slices.SortFunc(want, cmpID)
	if !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if n, _ := b.Count(ctx); n != 2 {
		t.Fatalf("Count = %d, want alice's kept one and bob's", n)
	}
	removed, err = b.DeleteByUser(ctx, "alice", usersessions.ID{}, usersessions.Ending{})
	if err != nil || len(removed) != 1 || removed[0].ID != alice[0].ID {
		t.Fatalf("DeleteByUser without keep: %v, %v", removed, err)
	}
	if removed, err = b.DeleteByUser(ctx, "nobody", usersessions.ID{}, usersessions.Ending{}); err != nil || len(removed) != 0 {
		t.Fatalf("DeleteByUser(nobody): %v, %v", removed, err)
	}
	var r usersessions.Record
	for _, a := range alice {
		if err := b.Get(ctx, a.ID, &r, false); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("a removed session still loads: %v", err)
		}
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("leftovers: %v", err)
	}
}

func TestDeleteExpiredGraceKeepLimit(t *testing.T) {
	e := sharedEnv(t)
	idle := time.Hour
	b := e.open(t, idle, nil)
	ctx := ctxT(t)
	now := base + int64(10*time.Hour)
	grace := 10 * time.Minute

	absolute := rec("a", 0, time.Hour)             // expired 9h ago (absolute)
	idleLong := rec("", 8*time.Hour, 24*time.Hour) // idle deadline 9h: 1h past, beyond grace
	idleRecent := rec("c", 9*time.Hour-5*time.Minute, 24*time.Hour)
	idleRecent.LastSeen = now - int64(idle) - int64(5*time.Minute) // idle deadline 5 min ago: within grace
	live := rec("d", 9*time.Hour+30*time.Minute, 24*time.Hour)     // idle deadline in 30 min
	kept := rec("e", 0, time.Hour)                                 // expired, vetoed by Keep
	mustCreate(t, b, absolute, idleLong, idleRecent, live, kept)

	keep := func(id usersessions.ID) bool { return id == kept.ID }
	removed, more, err := b.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: now, IdleGrace: grace, Limit: 100, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	got := idsOf(removed)
	slices.SortFunc(got, cmpID)
	want := []usersessions.ID{absolute.ID, idleLong.ID}
	slices.SortFunc(want, cmpID)
	if !slices.Equal(got, want) || more {
		t.Fatalf("removed %v more %v, want %v", got, more, want)
	}
	// Without grace, the recent idle one goes too.
	removed, _, err = b.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: now, Limit: 100, Keep: keep})
	if err != nil || len(removed) != 1 || removed[0].ID != idleRecent.ID {
		t.Fatalf("without grace: %v, %v", removed, err)
	}
	if n, _ := b.Count(ctx); n != 2 {
		t.Fatalf("Count = %d, want live and kept", n)
	}

	// Limit and more, with vetoed records at the front not stalling it.
	var batch []*usersessions.Record
	for i := range 25 {
		batch = append(batch, rec([]string{"f", "", "g"}[i%3], time.Duration(i)*time.Second, time.Hour))
	}
	mustCreate(t, b, batch...)
	total := 0
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("DeleteExpired never finished")
		}
		removed, more, err := b.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: now, Limit: 10, Keep: keep})
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
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteExpiredFromTwoBackendsAtOnce(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, nil)
	const n = 400
	all := map[usersessions.ID]bool{}
	var rs []*usersessions.Record
	for i := range n {
		r := rec([]string{"u", "", "v", "w"}[i%4], time.Duration(i)*time.Millisecond, time.Minute)
		rs = append(rs, r)
		all[r.ID] = true
	}
	mustCreate(t, a, rs...)
	now := base + int64(time.Hour)
	var mu sync.Mutex
	seen := map[usersessions.ID]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, be := range []*Backend{a, b} {
		wg.Go(func() {
			for range 100 {
				removed, more, err := be.DeleteExpired(ctxT(t), usersessions.ExpiredQuery{Now: now, Limit: 15})
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
		if c != 1 || !all[id] {
			t.Fatalf("%v removed %d times (ours: %v)", id, c, all[id])
		}
	}
	if c, _ := a.Count(ctxT(t)); c != 0 {
		t.Fatalf("Count = %d", c)
	}
	if due := e.do(t, "ZCARD", a.dueKey()); due != "0" {
		t.Fatalf("the cleanup index still holds %s groups with nothing left", due)
	}
}

// Records Redis's own expiry removed (here: DEL, as the expiry would) leave
// index entries, locators and P:all entries behind; the next cleanup drops
// them, reading only what is due.
func TestDeleteExpiredDropsWhatRedisExpired(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	user, anon, live := rec("alice", 0, time.Hour), rec("", 0, time.Hour), rec("alice", 0, 48*time.Hour)
	mustCreate(t, b, user, anon, live)
	e.do(t, "DEL", e.recKey(user), e.recKey(anon))
	removed, _, err := b.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: base + int64(2*time.Hour)})
	if err != nil || len(removed) != 0 {
		t.Fatalf("DeleteExpired = %v, %v; want nothing reported (Redis removed them)", removed, err)
	}
	if n, _ := b.Count(ctx); n != 1 {
		t.Fatalf("Count = %d, want 1: the vanished sessions' entries are gone", n)
	}
	for _, r := range []*usersessions.Record{user, anon} {
		if e.do(t, "EXISTS", b.loc(r.ID)) != "0" {
			t.Fatalf("a vanished session's locator is still there")
		}
	}
	if score := e.do(t, "ZSCORE", b.userGroup("alice").idx(), user.ID.String()); score != "" {
		t.Fatalf("alice's index still holds the vanished session (score %s)", score)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// An anonymous session that signed in leaves its old group in the cleanup
// index; cleanup drops that entry and never the moved session's.
func TestDeleteExpiredAfterASignIn(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("", 0, time.Hour)
	mustCreate(t, b, r)
	if err := update(b, ctx, r.ID, func(x *usersessions.Record) error {
		x.UserID, x.Expires = "alice", base+int64(48*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	removed, _, err := b.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: base + int64(2*time.Hour)})
	if err != nil || len(removed) != 0 {
		t.Fatalf("DeleteExpired = %v, %v", removed, err)
	}
	var got usersessions.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != "alice" {
		t.Fatalf("the signed-in session after cleanup: %+v, %v", got, err)
	}
	if n, _ := b.Count(ctx); n != 1 {
		t.Fatalf("Count = %d", n)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestScanFilters(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	var all []*usersessions.Record
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
	collect := func(f usersessions.ScanFilter, limit int) []usersessions.ID {
		t.Helper()
		var ids []usersessions.ID
		var after usersessions.ID
		for range 100 {
			last, done, err := b.Scan(ctx, f, after, limit, func(r *usersessions.Record, err error) {
				if err != nil {
					t.Errorf("scan error: %v", err)
					return
				}
				// The Store applies the IP prefix; the Backend may not.
				if !f.IPPrefix.IsValid() || f.IPPrefix.Masked().Contains(r.IP) {
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
		var ids []usersessions.ID
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
		f    usersessions.ScanFilter
		keep func(r *usersessions.Record) bool
	}{
		{"all", usersessions.ScanFilter{}, func(*usersessions.Record) bool { return true }},
		{"user", usersessions.ScanFilter{UserID: "bob"}, func(r *usersessions.Record) bool { return r.UserID == "bob" }},
		{"anonymous", usersessions.ScanFilter{Anonymous: true}, func(r *usersessions.Record) bool { return r.UserID == "" }},
		{"ipv4 /16", usersessions.ScanFilter{IPPrefix: netip.MustParsePrefix("10.1.0.0/16")}, func(r *usersessions.Record) bool { return r.IP == netip.MustParseAddr("10.1.2.3") }},
		{"user and ip", usersessions.ScanFilter{UserID: "alice", IPPrefix: netip.MustParsePrefix("10.0.0.0/8")}, func(r *usersessions.Record) bool { return r.UserID == "alice" && r.IP.Is4() }},
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
	e.do(t, "HSET", e.recKey(bad), "h", "\x00")
	var ok, corrupt []usersessions.ID
	err := b.ListByUser(ctxT(t), "alice", func(r *usersessions.Record, err error) {
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
	rs := []*usersessions.Record{rec("a", 0, 2*time.Hour), rec("b", 0, 2*time.Hour), rec("c", 0, 2*time.Hour), rec("", 0, 2*time.Hour), rec("e", 0, 2*time.Hour)}
	mustCreate(t, b, rs...)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of sound data: %v", err)
	}
	e.do(t, "HSET", e.recKey(rs[0]), "h", "\x01")
	e.do(t, "HSET", e.recKey(rs[1]), "d", timeText(base+1))
	e.do(t, "DEL", b.loc(rs[2].ID))
	e.do(t, "DEL", e.recKey(rs[3]))
	e.do(t, "ZADD", b.userGroup("e").idx(), "5", "AAAAAAAAAAAAAAAAAAAAAA")
	err := b.Check(ctx)
	if !errors.Is(err, usersessions.ErrCorrupt) {
		t.Fatalf("Check: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{
		rs[0].ID.String() + ": hash of 1 bytes",
		rs[1].ID.String() + ": deadline",
		rs[2].ID.String() + ": in P:all without a readable locator",
		rs[3].ID.String() + ": its locator leads to no record",
		`index entry "AAAAAAAAAAAAAAAAAAAAAA" leads to no record`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check's report lacks %q:\n%v", want, err)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Errorf("Check reported %d problems, want 5:\n%v", n, err)
	}
}

func TestIdleChangeReindexes(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("a", 0, 10*time.Hour)
	mustCreate(t, b, r)
	deadline := func() string { return e.do(t, "HGET", e.recKey(r), "d") }
	if d := deadline(); d != timeText(r.Expires) {
		t.Fatalf("deadline without idle = %s, want expires", d)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := e.open(t, time.Hour, nil)
	if d := deadline(); d != timeText(r.LastSeen+int64(time.Hour)) {
		t.Fatalf("deadline after idle 1h = %s, want last seen + 1h", d)
	}
	if err := b2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Expired under the new idle timeout: DeleteExpired finds it by index.
	removed, _, err := b2.DeleteExpired(ctx, usersessions.ExpiredQuery{Now: r.LastSeen + int64(2*time.Hour), Limit: 10})
	if err != nil || len(removed) != 1 {
		t.Fatalf("DeleteExpired under the new idle: %v, %v", removed, err)
	}

	// A tool opening with UseStoredIdleTimeout gets 1h.
	b3 := e.backend(t, nil)
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
	if d := e.do(t, "HGET", e.recKey(big), "d"); d != timeText(big.Expires) {
		t.Fatalf("deadline with a huge idle = %s, want expires", d)
	}
}

func TestOpenConcurrently(t *testing.T) {
	e := sharedEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			b := e.backend(t, nil)
			if _, err := b.Open(ctxT(t), time.Duration(i)*time.Minute, discard()); err != nil {
				errs <- err
			}
		})
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
	var r usersessions.Record
	if err := b.Get(ctxT(t), usersessions.ID{}, &r, false); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := b.Subscribe(ctxT(t), newRecorder()); !errors.Is(err, usersessions.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestTouchFromTwoBackendsAtOnce(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, time.Hour, nil)
	b := e.open(t, time.Hour, nil)
	var rs []*usersessions.Record
	for i := range 60 {
		rs = append(rs, rec([]string{"u", ""}[i%2], time.Duration(i), 24*time.Hour))
	}
	mustCreate(t, a, rs...)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for k, be := range []*Backend{a, b} {
		wg.Go(func() {
			for round := range 30 {
				acts := make([]usersessions.Activity, len(rs))
				for i, r := range rs {
					acts[i] = usersessions.Activity{ID: r.ID, LastSeen: r.LastSeen + int64(round*2+k), UserAgent: fmt.Sprint(k)}
				}
				if err := be.Touch(ctxT(t), acts); err != nil {
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
		var got usersessions.Record
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
	b := e.open(t, 0, nil)
	e.do(t, "HSET", b.settingsKey(), "schema", "99")
	b2 := e.backend(t, nil)
	if _, err := b2.Open(ctxT(t), 0, discard()); !errors.Is(err, usersessions.ErrSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchema", err)
	}
}

// A mover that dies (the hook stops it after a step, as a crash would)
// never leaves two live copies, nor a session that waits forever: Loads
// serve the state before or after the move, and when the marker's lease
// runs out the session is gone (signed out), never duplicated.
func TestMoveInterrupted(t *testing.T) {
	lease := moveLease
	moveLease = 300 * time.Millisecond
	t.Cleanup(func() { moveLease = lease })
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	other := e.open(t, 0, nil)
	ctx := ctxT(t)
	died := errors.New("the process died")
	for step := 1; step <= 3; step++ {
		r := rec("", 0, time.Hour)
		mustCreate(t, b, r)
		b.testMoveStep = func(n int) error {
			if n == step {
				return died
			}
			return nil
		}
		err := update(b, ctx, r.ID, func(x *usersessions.Record) error { x.UserID = "alice"; return nil })
		b.testMoveStep = nil
		if !errors.Is(err, died) {
			t.Fatalf("step %d: Update = %v", step, err)
		}
		// While the marker lives: the state before the move, or after.
		var got usersessions.Record
		err = other.Get(ctx, r.ID, &got, false)
		switch {
		case step == 1 && (err != nil || got.UserID != ""):
			t.Fatalf("step 1 (nothing moved yet): Get = %+v, %v", got, err)
		case step == 2 && !errors.Is(err, usersessions.ErrNotFound):
			t.Fatalf("step 2 (in neither group; the lease ran out): Get = %+v, %v", got, err)
		case step == 3 && (err != nil || got.UserID != "alice"):
			t.Fatalf("step 3 (moved, locator not written): Get = %+v, %v", got, err)
		}
		time.Sleep(moveLease)
		if err := other.Get(ctx, r.ID, &got, false); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("step %d: after the lease: Get = %+v, %v; want the session gone", step, got, err)
		}
		if err := del(other, ctx, r.ID, nil); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatalf("step %d: Delete after the lease: %v", step, err)
		}
		// A copy left in alice's group is hers to end.
		if _, err := other.DeleteByUser(ctx, "alice", usersessions.ID{}, usersessions.Ending{}); err != nil {
			t.Fatal(err)
		}
		if e.do(t, "EXISTS", b.userGroup("alice").rec(r.ID)) != "0" {
			t.Fatalf("step %d: DeleteByUser left the copy", step)
		}
	}

	// A mover slower than its lease takes its copy back.
	r := rec("", 0, time.Hour)
	mustCreate(t, b, r)
	b.testMoveStep = func(n int) error {
		if n == 3 {
			time.Sleep(moveLease + 100*time.Millisecond)
		}
		return nil
	}
	err := update(b, ctx, r.ID, func(x *usersessions.Record) error { x.UserID = "bob"; return nil })
	b.testMoveStep = nil
	if !errors.Is(err, usersessions.ErrUnavailable) {
		t.Fatalf("a move past its lease: %v, want ErrUnavailable", err)
	}
	if e.do(t, "EXISTS", b.userGroup("bob").rec(r.ID)) != "0" {
		t.Fatal("a move past its lease left its copy in bob's group")
	}
}

// A server that forgot the scripts (SCRIPT FLUSH, as after a restart or on
// a new cluster node) is sent their source again.
func TestScriptsAfterScriptFlush(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, time.Hour)
	mustCreate(t, b, r)
	e.do(t, "SCRIPT", "FLUSH")
	if err := update(b, ctx, r.ID, func(x *usersessions.Record) error { x.UserAgent = "after flush"; return nil }); err != nil {
		t.Fatal(err)
	}
	var got usersessions.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserAgent != "after flush" {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", got, err)
	}
	e.do(t, "SCRIPT", "FLUSH")
	if _, err := b.DeleteByUser(ctx, "alice", usersessions.ID{}, usersessions.Ending{}); err != nil {
		t.Fatal(err)
	}
}
