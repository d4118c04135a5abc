package redisstore

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/redistest"
)

// do runs a raw command on e's server.
func (e env) do(t testing.TB, args ...string) string {
	t.Helper()
	return e.srv.Do(t, args...)
}

// recKey is the key of r's record under e's prefix.
func (e env) recKey(r *backend.Record) string { return recKey(&Backend{base: e.prefix + ":"}, r) }

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

// The same ID for another user (a collision) is refused, and the session
// that has it is untouched.
func TestCreateRefusesAnIDInAnotherGroup(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		e := sharedEnv(t)
		if cluster {
			e = ownEnv(t, redistest.Config{Cluster: true})
		}
		b := e.open(t, 0, nil)
		ctx := ctxT(t)
		r := rec("bob", 0, time.Hour)
		mustCreate(t, b, r)
		twin := *r
		twin.UserID, twin.Hash = "carol", [32]byte{7}
		if _, err := b.Create(ctx, &twin, nil); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("cluster %v: Create of an existing ID in another group: %v", cluster, err)
		}
		var got backend.Record
		if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != "bob" || got.Hash != r.Hash {
			t.Fatalf("cluster %v: the session with that ID after the refused twin: %+v, %v", cluster, got, err)
		}
		if n := 0; b.ListByUser(ctx, "carol", func(*backend.Record, error) { n++ }) != nil || n != 0 {
			t.Fatalf("cluster %v: the refused twin is listed for carol", cluster)
		}
		if err := b.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A record that moves to another user's group leaves its old one; and to
// the anonymous group and back.
func TestUpdateMovesBetweenGroups(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("alice", 0, time.Hour)
	mustCreate(t, b, r)
	for _, user := range []string{"carol", "", "dave"} {
		old := e.recKey(r)
		if err := update(b, ctx, r.ID, func(x *backend.Record) error { x.UserID = user; return nil }); err != nil {
			t.Fatal(err)
		}
		r.UserID = user
		if e.do(t, "EXISTS", old) != "0" || e.do(t, "EXISTS", e.recKey(r)) != "1" {
			t.Fatalf("after moving to %q: the record is not (only) in the new group", user)
		}
		var got backend.Record
		if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserID != user {
			t.Fatalf("after moving to %q: %+v, %v", user, got, err)
		}
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(ctxT(t), "unix://"+sock, nil)
	if !errors.Is(err, usersessions.ErrUnavailable) {
		t.Fatalf("Open on a missing server: %v, want ErrUnavailable", err)
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

// A Touch through a locator another instance changed since this one cached
// it still reaches the record.
func TestTouchFollowsAMovedSession(t *testing.T) {
	e := sharedEnv(t)
	a := e.open(t, 0, nil)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	r := rec("", 0, 24*time.Hour)
	mustCreate(t, a, r)
	var got backend.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil { // b caches the locator "a"
		t.Fatal(err)
	}
	if err := update(a, ctx, r.ID, func(x *backend.Record) error { x.UserID = "alice"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, []backend.Activity{{ID: r.ID, LastSeen: base + 5, UserAgent: "via b"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Get(ctx, r.ID, &got, false); err != nil || got.UserAgent != "via b" || got.UserID != "alice" {
		t.Fatalf("after b's Touch: %+v, %v", got, err)
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
	removed, _, err := b.DeleteExpired(ctx, backend.ExpiredQuery{Now: base + int64(2*time.Hour)})
	if err != nil || len(removed) != 0 {
		t.Fatalf("DeleteExpired = %v, %v; want nothing reported (Redis removed them)", removed, err)
	}
	if n, _ := b.Count(ctx); n != 1 {
		t.Fatalf("Count = %d, want 1: the vanished sessions' entries are gone", n)
	}
	for _, r := range []*backend.Record{user, anon} {
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
	if err := update(b, ctx, r.ID, func(x *backend.Record) error {
		x.UserID, x.Expires = "alice", base+int64(48*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	removed, _, err := b.DeleteExpired(ctx, backend.ExpiredQuery{Now: base + int64(2*time.Hour)})
	if err != nil || len(removed) != 0 {
		t.Fatalf("DeleteExpired = %v, %v", removed, err)
	}
	var got backend.Record
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

func TestCheckFindsProblems(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, time.Hour, nil)
	ctx := ctxT(t)
	rs := []*backend.Record{rec("a", 0, 2*time.Hour), rec("b", 0, 2*time.Hour), rec("c", 0, 2*time.Hour), rec("", 0, 2*time.Hour), rec("e", 0, 2*time.Hour)}
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
	moveLease = 1500 * time.Millisecond // long enough for the checks under the marker, under -race on a busy machine
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
		err := update(b, ctx, r.ID, func(x *backend.Record) error { x.UserID = "alice"; return nil })
		b.testMoveStep = nil
		if !errors.Is(err, died) {
			t.Fatalf("step %d: Update = %v", step, err)
		}
		// While the marker lives: the state before the move, or after.
		var got backend.Record
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
		if _, err := other.DeleteByUser(ctx, "alice", backend.ID{}, backend.Ending{}); err != nil {
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
	err := update(b, ctx, r.ID, func(x *backend.Record) error { x.UserID = "bob"; return nil })
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
	if err := update(b, ctx, r.ID, func(x *backend.Record) error { x.UserAgent = "after flush"; return nil }); err != nil {
		t.Fatal(err)
	}
	var got backend.Record
	if err := b.Get(ctx, r.ID, &got, false); err != nil || got.UserAgent != "after flush" {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", got, err)
	}
	e.do(t, "SCRIPT", "FLUSH")
	if _, err := b.DeleteByUser(ctx, "alice", backend.ID{}, backend.Ending{}); err != nil {
		t.Fatal(err)
	}
}
