package usersessions

// Tests for the defects of issue 11 (found by adversarial testing). Each
// failed before its fix.

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/clocktest"
)

// damageFixture writes a closed database with enough sessions for branch
// pages, several users and values, and returns its path and bytes.
func damageFixture(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "good.db")
	s, err := Open(path, &Options{CleanupInterval: -1, IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		sess := mustCreate(t, s, []string{"alice", "bob", "", "carol"}[i%4], clientA)
		if i%3 == 0 {
			sess.Set("cart", strings.Repeat("x", i))
			if err := s.Save(ctx, sess); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// exercise runs every read and write path over a store opened on a damaged
// file. It asserts nothing but that they return: a panic or a fatal fault
// in a bbolt goroutine would end the test binary.
func exercise(s *Store) {
	s.Check(ctx)
	for _, u := range []string{"alice", "bob", "carol"} {
		s.ListByUser(ctx, u)
	}
	for range s.All(ctx, Filter{}) {
	}
	s.Count(ctx)
	s.ClearExpired(ctx)
	s.EndUser(ctx, "bob", "", EndOptions{})
	if sess, err := s.Create(ctx, "dave", clientA); err == nil {
		s.Load(ctx, sess.Token)
	}
}

// Item 2: a damaged or truncated file gives ErrCorrupt naming the file, or
// opens and works as far as it can, and never kills the process.
func TestDamagedFileNeverCrashes(t *testing.T) {
	_, good := damageFixture(t)
	const page = 4096
	if len(good) < 8*page {
		t.Fatalf("fixture too small for the test: %d bytes", len(good))
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 2))
	offsets := []int{}
	// Every page header, and random bytes everywhere past the meta pages.
	for p := 2; p*page < len(good); p++ {
		offsets = append(offsets, p*page, p*page+8, p*page+10, p*page+12, p*page+16+rng.IntN(64))
	}
	for range 150 {
		offsets = append(offsets, 2*page+rng.IntN(len(good)-2*page))
	}
	if testing.Short() {
		offsets = offsets[:len(offsets)/4]
	}
	opened, refused := 0, 0
	for i, off := range offsets {
		path := filepath.Join(dir, "damaged.db")
		data := bytes.Clone(good)
		data[off] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, &Options{CleanupInterval: -1, IdleTimeout: UseStoredIdleTimeout, Logger: discardLogger(), OpenTimeout: 50 * time.Millisecond})
		if err != nil {
			refused++
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), path) {
				t.Fatalf("case %d (byte %d): Open = %v, want ErrCorrupt or ErrSchema naming the file", i, off, err)
			}
			continue
		}
		opened++
		exercise(s)
		if err := s.Close(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("case %d (byte %d): Close = %v", i, off, err)
		}
	}
	t.Logf("%d damaged files opened, %d refused", opened, refused)
	if refused == 0 {
		t.Fatal("no damaged file was refused: the damage did not reach the structure")
	}
}

func TestTruncatedFileIsCorrupt(t *testing.T) {
	_, good := damageFixture(t)
	dir := t.TempDir()
	for _, size := range []int{len(good) - 4096, len(good) / 2, 3 * 4096, 2*4096 + 100, 4096, 100} {
		path := filepath.Join(dir, "truncated.db")
		if err := os.WriteFile(path, good[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, &Options{Logger: discardLogger(), OpenTimeout: 50 * time.Millisecond, IdleTimeout: UseStoredIdleTimeout})
		if err == nil {
			// Only bbolt's preallocated tail was cut: nothing may be lost.
			n, _ := s.Count(ctx)
			checkErr := s.Check(ctx)
			s.Close()
			if n != 300 || checkErr != nil {
				t.Fatalf("Open(truncated to %d of %d bytes) succeeded with %d sessions, Check %v", size, len(good), n, checkErr)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open(truncated to %d of %d bytes) = %v, want ErrCorrupt naming the file", size, len(good), err)
		}
	}
}

// Item 3: a failed Open releases the file, so a restored copy opens.
func TestFailedOpenReleasesFile(t *testing.T) {
	_, good := damageFixture(t)
	path := filepath.Join(t.TempDir(), "restore.db")
	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, &Options{Logger: discardLogger()}); err == nil {
		t.Fatal("Open of a truncated file succeeded")
	}
	// The operator restores a good copy in place.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, &Options{OpenTimeout: 200 * time.Millisecond, IdleTimeout: UseStoredIdleTimeout})
	if err != nil {
		t.Fatalf("Open after restoring a good copy: %v", err)
	}
	defer s.Close()
	if n, _ := s.Count(ctx); n != 300 {
		t.Fatalf("restored store counts %d sessions, want 300", n)
	}
}

// damageRecord overwrites the record of id behind the store's back.
func damageRecord(t *testing.T, path string, id string, data []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sid, _ := backend.ParseID(id)
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSessions).Put(sid[:], data) })
	if err != nil {
		t.Fatal(err)
	}
}

// Item 4: revocation works from the indexes alone, damaged records included.
func TestDeletesRemoveDamagedRecords(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		path := filepath.Join(t.TempDir(), "db")
		opts := &Options{NoCache: !cached, CleanupInterval: -1, Logger: discardLogger()}
		s, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		good := mustCreate(t, s, "alice", clientA)
		garbage := mustCreate(t, s, "alice", clientA) // header and all unreadable
		badValues := mustCreate(t, s, "alice", clientA)
		lone := mustCreate(t, s, "alice", clientA) // for End by ID
		other := mustCreate(t, s, "bob", clientA)
		s.Close()
		damageRecord(t, path, garbage.ID, []byte{recordVersion, 1, 2, 3})
		damageRecord(t, path, lone.ID, []byte{0xff, 0xff})
		sid, _ := backend.ParseID(badValues.ID)
		db, _ := bolt.Open(path, 0o600, nil)
		db.Update(func(tx *bolt.Tx) error {
			v := bytes.Clone(tx.Bucket(bucketSessions).Get(sid[:]))
			v[len(v)-1] = 0x7f // the values section: a count with no values
			return tx.Bucket(bucketSessions).Put(sid[:], v)
		})
		db.Close()

		s, err = Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.EndForUser(ctx, "bob", lone.ID, EndOptions{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("bob ending alice's damaged session = %v, want ErrNotFound", err)
		}
		if err := s.End(ctx, lone.ID, EndOptions{}); err != nil {
			t.Fatalf("End(damaged) = %v, want nil", err)
		}
		n, err := s.EndUser(ctx, "alice", "", EndOptions{})
		if err != nil || n != 3 {
			t.Fatalf("EndUser = %d, %v; want 3, nil (the damaged ones too)", n, err)
		}
		for _, sess := range []*Session{good, garbage, badValues, lone} {
			if _, err := s.Load(ctx, sess.Token); !errors.Is(err, ErrNotFound) {
				t.Errorf("session %s after revocation: %v, want ErrNotFound", sess.ID, err)
			}
		}
		if _, err := s.Load(ctx, other.Token); err != nil {
			t.Fatalf("bob's session suffered: %v", err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check after removing the damage: %v", err)
		}
		if c, _ := s.Count(ctx); c != 1 {
			t.Fatalf("Count = %d, want 1", c)
		}
	})
}

// Item 5: a damaged record does not make the store unopenable when the idle
// timeout changes.
func TestIdleChangeSurvivesDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	good := mustCreate(t, s, "alice", clientA)
	bad := mustCreate(t, s, "alice", clientA)
	s.Close()
	damageRecord(t, path, bad.ID, []byte{recordVersion, 9})
	s, err = Open(path, &Options{CleanupInterval: -1, IdleTimeout: time.Hour, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("Open with a new idle timeout over a damaged record: %v", err)
	}
	defer s.Close()
	if _, err := s.Load(ctx, good.Token); err != nil {
		t.Fatalf("good session: %v", err)
	}
	if err := s.Check(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad.ID) {
		t.Fatalf("Check = %v, want ErrCorrupt naming %s", err, bad.ID)
	}
	if n, err := s.EndUser(ctx, "alice", "", EndOptions{}); n != 2 || err != nil {
		t.Fatalf("EndUser = %d, %v", n, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after removal: %v", err)
	}
}

// Item 6: durations at the extremes saturate instead of overflowing.
func TestExtremeDurations(t *testing.T) {
	for _, o := range []Options{
		{Lifetime: math.MaxInt64},
		{Lifetime: 250 * 365 * 24 * time.Hour},
		{Lifetime: math.MaxInt64, IdleTimeout: math.MaxInt64},
		{IdleTimeout: math.MaxInt64, TouchInterval: math.MaxInt64},
		{Lifetime: math.MaxInt64, CleanupInterval: time.Millisecond, TouchInterval: time.Millisecond},
		{CacheBytes: math.MaxInt64, OpenTimeout: math.MaxInt64, CleanupInterval: math.MaxInt64},
	} {
		modes(t, func(t *testing.T, cached bool) {
			o := o
			s := openTest(t, cached, &o)
			list := make([]*Session, clearBatch+10) // more than one cleanup batch
			var wg sync.WaitGroup
			for w := range 8 { // concurrent: their writes share commits
				wg.Go(func() {
					for i := w; i < len(list); i += 8 {
						list[i] = mustCreate(t, s, "alice", clientA)
					}
				})
			}
			wg.Wait()
			for _, sess := range list[:3] {
				got, err := s.LoadTouch(ctx, sess.Token, clientB)
				if err != nil {
					t.Fatalf("%+v: Load = %v", o, err)
				}
				if o.Lifetime > 100*365*24*time.Hour && !got.ExpiresAt.After(time.Now().Add(100*365*24*time.Hour)) || !got.Deadline().After(time.Now()) {
					t.Fatalf("%+v: ExpiresAt %v, Deadline %v: want far in the future", o, got.ExpiresAt, got.Deadline())
				}
			}
			if n, err := s.ClearExpired(ctx); n != 0 || err != nil {
				t.Fatalf("ClearExpired = %d, %v; want 0, nil", n, err)
			}
			rotated, err := s.RotateUser(ctx, list[0].Token, "bob")
			if err != nil || !rotated.ExpiresAt.After(time.Now()) {
				t.Fatalf("RotateUser = %v, %v", rotated, err)
			}
			commits := s.Stats().Commits
			time.Sleep(20 * time.Millisecond)
			if c := s.Stats().Commits - commits; c > 5 {
				t.Fatalf("%d commits in 20ms with nothing to do: cleanup spins", c)
			}
			done := make(chan error)
			go func() { done <- s.Close() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close hangs")
			}
		})
	}
}

// Item 6, the same class: deadlines far in the past (a clock set wrong)
// still expire and clean up, and Check agrees with the index.
func TestDeadlineBeforeEpoch(t *testing.T) {
	clk := clocktest.At(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openTest(t, false, &Options{Now: clk.Now})
	mustCreate(t, s, "alice", clientA)
	clk.Advance(defaultLifetime + time.Hour)
	if n, err := s.ClearExpired(ctx); n != 1 || err != nil {
		t.Fatalf("ClearExpired = %d, %v; want 1", n, err)
	}
}

// Item 7: a Touch or LoadTouch racing an End leaves no activity behind, so
// the revoked session can't be kept "alive" by later Touches.
func TestTouchAfterDeleteRace(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, nil)
		for _, via := range []string{"LoadTouch", "Touch"} {
			sess := mustCreate(t, s, "alice", clientA)
			id, _ := backend.ParseID(sess.ID)
			s.active.remove(id) // as after a sweep: the next touch starts from disk
			testHookBeforeActivityAdd = func() {
				testHookBeforeActivityAdd = nil
				if err := s.End(ctx, sess.ID, EndOptions{}); err != nil {
					t.Errorf("End: %v", err)
				}
			}
			if via == "LoadTouch" {
				s.LoadTouch(ctx, sess.Token, clientB)
			} else {
				s.Touch(ctx, sess.ID, clientB)
			}
			testHookBeforeActivityAdd = nil
			if err := s.Touch(ctx, sess.ID, clientB); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: Touch after End = %v, want ErrNotFound", via, err)
			}
			if s.active.entry(id) != nil {
				t.Fatalf("%s: the deleted session kept an activity entry", via)
			}
		}
	})
}

// Item 8: a Save from a request that loaded the session before a sign-in
// (or sign-out) cannot undo it.
func TestSaveDoesNotUndoIdentityChange(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, nil)
		anon := mustCreate(t, s, "", clientA)
		a, err := s.Load(ctx, anon.Token) // request A, in flight
		if err != nil {
			t.Fatal(err)
		}
		a.Set("theme", "dark")
		signedIn, err := s.RotateUser(ctx, anon.Token, "alice") // request B logs in
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, a); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale Save = %v, want ErrConflict", err)
		}
		got, err := s.Load(ctx, signedIn.Token)
		if err != nil || got.UserID != "alice" {
			t.Fatalf("after the stale save: %v, %v; want alice still signed in", got, err)
		}

		// Sign-out: a request that loaded alice's session can't re-bind it.
		b, _ := s.Load(ctx, signedIn.Token)
		b.Set("x", 1)
		out, err := s.RotateUser(ctx, signedIn.Token, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, b); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale Save after sign-out = %v, want ErrConflict", err)
		}
		if got, _ := s.Load(ctx, out.Token); got == nil || got.UserID != "" {
			t.Fatalf("sign-out undone: %+v", got)
		}

		// A Save that makes the identity change itself works, and so does
		// the next Save of the same copy.
		c, _ := s.Load(ctx, out.Token)
		c.UserID = "carol"
		if err := s.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Set("y", 2)
		if err := s.Save(ctx, c); err != nil {
			t.Fatalf("second Save of the same copy: %v", err)
		}
		// But a copy loaded before carol's Save is stale.
		d := got
		d.Set("z", 3)
		if err := s.Save(ctx, d); !errors.Is(err, ErrConflict) {
			t.Fatalf("Save of a copy older than a UserID change = %v, want ErrConflict", err)
		}
		// Plain concurrent value saves keep working.
		e1, _ := s.Load(ctx, out.Token)
		e2, _ := s.Load(ctx, out.Token)
		e1.Set("k", 1)
		e2.Set("k", 2)
		if err := s.Save(ctx, e1); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, e2); err != nil {
			t.Fatalf("a value save after another value save: %v", err)
		}
	})
}

// Item 10: many values stay correct (the speed is BenchmarkSetManyKeys's).
func TestManyValues(t *testing.T) {
	s := openTest(t, true, nil)
	sess := mustCreate(t, s, "alice", clientA)
	const n = 5000
	for i := range n {
		sess.Set(keyN(i), i)
	}
	for i := 0; i < n; i += 2 {
		sess.Delete(keyN(i))
	}
	sess.Set(keyN(1), "one")
	if err := s.Save(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys()) != n/2 || got.Keys()[0] != keyN(1) {
		t.Fatalf("%d keys, first %q", len(got.Keys()), got.Keys()[0])
	}
	for i := range n {
		v, ok := got.Get(keyN(i))
		switch {
		case i == 1 && v != "one", i%2 == 0 && ok, i%2 == 1 && i != 1 && v != i:
			t.Fatalf("Get(%s) = %v, %v", keyN(i), v, ok)
		}
	}
	// A loaded copy's index must not leak writes into the cached one.
	got.Set(keyN(3), "changed")
	again, _ := s.Load(ctx, sess.Token)
	if v, _ := again.Get(keyN(3)); v != 3 {
		t.Fatalf("a caller's write leaked into the cache: %v", v)
	}
}

func keyN(i int) string { return "k" + strings.Repeat("0", 6-len(itoa(i))) + itoa(i) }

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// Item 11: All over one user's sessions pages through the user index
// (BenchmarkAllByUser measures it); every page resumes exactly after the last.
func TestAllByUserPaging(t *testing.T) {
	s := openTest(t, false, nil)
	want := map[string]bool{}
	for i := range 3*allPage + 7 {
		sess := mustCreate(t, s, "alice", clientA)
		want[sess.ID] = true
		if i%5 == 0 {
			mustCreate(t, s, "alicia", clientA)
		}
	}
	var last string
	n := 0
	for sess, err := range s.All(ctx, Filter{UserID: "alice"}) {
		if err != nil {
			t.Fatal(err)
		}
		if !want[sess.ID] || idLess(sess.ID, last) {
			t.Fatalf("All yielded %s after %s (ours: %v)", sess.ID, last, want[sess.ID])
		}
		last = sess.ID
		n++
	}
	if n != len(want) {
		t.Fatalf("All yielded %d of alice's %d sessions", n, len(want))
	}
	// Resume from the middle.
	mid := ""
	i := 0
	for sess := range s.All(ctx, Filter{UserID: "alice"}) {
		if i == 300 {
			mid = sess.ID
			break
		}
		i++
	}
	rest := 0
	for sess := range s.All(ctx, Filter{UserID: "alice", After: mid}) {
		if !idLess(mid, sess.ID) {
			t.Fatalf("resumed listing yields %s, not after %s", sess.ID, mid)
		}
		rest++
	}
	if rest != n-301 {
		t.Fatalf("resumed listing has %d, want %d", rest, n-301)
	}
}

// idLess orders IDs as All lists them: by their bytes.
func idLess(a, b string) bool {
	x, _ := backend.ParseID(a)
	y, _ := backend.ParseID(b)
	return bytes.Compare(x[:], y[:]) < 0
}

// Item 14: Open waits the whole OpenTimeout for a held file.
func TestOpenTimeoutWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, timeout := range []time.Duration{time.Millisecond, 50 * time.Millisecond, 120 * time.Millisecond} {
		start := time.Now()
		_, err := Open(path, &Options{OpenTimeout: timeout})
		took := time.Since(start)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Open = %v, want ErrLocked", err)
		}
		if took < timeout {
			t.Fatalf("OpenTimeout %v gave up after %v", timeout, took)
		}
	}
}

// Item 2, the same class: a file truncated under a running store (an
// operator's mistake) gives errors, not a fault that kills the process.
func TestFileTruncatedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, &Options{NoCache: true, CleanupInterval: -1, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var list []*Session
	for range 300 {
		list = append(list, mustCreate(t, s, "alice", clientA))
	}
	if err := os.Truncate(path, 2*4096); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, sess := range list {
		if _, err := s.Load(ctx, sess.Token); err != nil {
			failed++
		}
	}
	if err := s.Check(ctx); err == nil {
		t.Error("Check of a truncated file found nothing")
	}
	if failed == 0 {
		t.Error("every Load of a truncated file succeeded")
	}
	s.Close()
}

// Store.Backup copies a running store into a file that opens as an equal
// store.
func TestBackupWhileRunning(t *testing.T) {
	s := openTest(t, true, nil)
	var want []string
	for range 50 {
		want = append(want, mustCreate(t, s, "alice", clientA).ID)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Backup(f); err != nil || n == 0 {
		t.Fatalf("Backup = %d, %v", n, err)
	}
	f.Close()
	b, err := Open(path, &Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	list, err := b.ListByUser(ctx, "alice")
	if err != nil || len(list) != len(want) {
		t.Fatalf("the backup lists %d sessions (%v), want %d", len(list), err, len(want))
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
