package pgstore

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// PostgreSQL's text columns refuse bytes that are not UTF-8, and NUL
// (SQLSTATE 22021). The Store makes client text valid before it calls the
// Backend; the Backend does too, so that no caller's bad row can fail a
// batch of others: written straight through the Backend interface, such
// text is stored as U+FFFD, and the activity flush, group-committed
// Creates and cleanup go on for everyone.
func TestInvalidTextNeverFailsABatch(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, time.Hour, nil)
	ctx := ctxT(t)
	const badUser, cleanUser = "bob\xff\x00", "bob\uFFFD\uFFFD"
	good := rec("alice", 0, 24*time.Hour)
	bad := rec(badUser, 0, 24*time.Hour)
	bad.UserAgent = "Mozilla/5.0 \xff\xfe"
	mustCreate(t, b, good, bad)

	// Group commit: concurrent Creates, every fourth one bad, all stored.
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		r := rec("u", time.Duration(i), time.Hour)
		if i%4 == 0 {
			r.UserID, r.UserAgent = "u\xfe", "agent \x00\xc0"
		}
		wg.Go(func() { errs[i] = create(b, ctx, r) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create %d among concurrent ones: %v", i, err)
		}
	}

	// One activity flush with a bad user agent in it writes them all.
	later := base + int64(time.Minute)
	ip := netip.MustParseAddr("198.51.100.1")
	acts := []backend.Activity{
		{ID: good.ID, LastSeen: later, IP: ip, UserAgent: "fine"},
		{ID: bad.ID, LastSeen: later, IP: ip, UserAgent: "curl \xc0"},
	}
	if err := b.Touch(ctx, acts); err != nil {
		t.Fatalf("Touch with a user agent that is not UTF-8: %v", err)
	}
	for id, want := range map[backend.ID]string{good.ID: "fine", bad.ID: "curl \uFFFD"} {
		var got backend.Record
		if err := b.Get(ctx, id, &got, false); err != nil || got.LastSeen != later || got.UserAgent != want {
			t.Errorf("after Touch: LastSeen %d, user agent %q, %v; want %d, %q", got.LastSeen, got.UserAgent, err, later, want)
		}
	}
	var got backend.Record
	if err := b.Get(ctx, bad.ID, &got, false); err != nil || got.UserID != cleanUser {
		t.Fatalf("stored user %q, %v; want %q", got.UserID, err, cleanUser)
	}

	// An update, and lookups by the user ID in either form.
	err := update(b, ctx, good.ID, func(r *backend.Record) error {
		r.UserID, r.UserAgent = badUser, "\xfe"
		return nil
	})
	if err != nil {
		t.Fatalf("Update to text that is not UTF-8: %v", err)
	}
	for _, user := range []string{badUser, cleanUser} {
		count := 0
		if err := b.ListByUser(ctx, user, func(*backend.Record, error) { count++ }); err != nil || count != 2 {
			t.Errorf("ListByUser(%q) = %d records, %v; want 2", user, count, err)
		}
		count = 0
		if _, _, err := b.Scan(ctx, backend.ScanFilter{UserID: user}, backend.ID{}, 100, func(*backend.Record, error) { count++ }); err != nil || count != 2 {
			t.Errorf("Scan(UserID %q) = %d records, %v; want 2", user, count, err)
		}
	}

	// Ending: a history entry whose reason and ender are not UTF-8,
	// by an owner who is not either.
	owner := badUser
	end := backend.Ending{At: later, Reason: "gone\xff", By: "admin:\x00", Keep: time.Hour}
	if _, err := b.Delete(ctx, bad.ID, &owner, end); err != nil {
		t.Fatalf("Delete with an owner and ending that are not UTF-8: %v", err)
	}
	past, err := b.History(ctx, badUser)
	if err != nil || len(past) != 1 || past[0].Reason != "gone\uFFFD" || past[0].By != "admin:\uFFFD" {
		t.Fatalf("History = %+v, %v", past, err)
	}
	if removed, err := b.DeleteByUser(ctx, "u\xfe", backend.ID{}, end); err != nil || len(removed) != n/4 {
		t.Fatalf("DeleteByUser(u\\xfe) = %d records, %v; want %d", len(removed), err, n/4)
	}

	// Cleanup runs.
	removed, _, err := b.DeleteExpired(ctx, backend.ExpiredQuery{Now: base + int64(48*time.Hour), History: time.Hour})
	if err != nil || len(removed) != 1+n-n/4 {
		t.Fatalf("DeleteExpired = %d records, %v; want %d", len(removed), err, 1+n-n/4)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
