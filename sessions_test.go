package usersessions

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/clocktest"
)

var ctx = context.Background()

// modes runs fn once per storage mode.
func modes(t *testing.T, fn func(t *testing.T, cached bool)) {
	for _, cached := range []bool{true, false} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		t.Run(name, func(t *testing.T) { fn(t, cached) })
	}
}

// openTest opens a store in a temporary directory, applies opts (NoCache
// from cached), and checks the indexes when the test ends.
func openTest(t testing.TB, cached bool, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	opts.NoCache = !cached
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = -1 // tests call ClearExpired themselves
	}
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(ctx); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Check after test: %v", err)
		}
		s.Close()
	})
	return s
}

// settle waits until the cache has applied buffered sets, so tests of the
// cached mode exercise hits and not only misses.
func settle(s *Store) {
	if s.cache != nil {
		s.cache.c.Wait()
	}
}

func mustCreate(t testing.TB, s *Store, user string, c Client) *Session {
	t.Helper()
	sess, err := s.Create(ctx, user, c)
	if err != nil {
		t.Fatalf("Create(%q): %v", user, err)
	}
	return sess
}

var (
	clientA = Client{IP: netip.MustParseAddr("203.0.113.7"), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
	clientB = Client{IP: netip.MustParseAddr("2001:db8::1"), UserAgent: "curl/8.5.0"}
)

func TestOnlyTokenHashIsStored(t *testing.T) {
	s := openTest(t, false, nil)
	sess := mustCreate(t, s, "alice", clientA)
	raw, _ := base64.RawURLEncoding.DecodeString(sess.Token)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, raw[idBytes:]) || bytes.Contains(file, []byte(sess.Token)) {
		t.Fatal("the database file contains the token's secret")
	}
	if !bytes.Contains(file, []byte("alice")) {
		t.Fatal("sanity: the record is not in the file at all")
	}
}

type point struct{ X, Y int }

type color struct{ r, g, b byte }

func (c color) MarshalBinary() ([]byte, error) { return []byte{c.r, c.g, c.b}, nil }
func (c *color) UnmarshalBinary(b []byte) error {
	if len(b) != 3 {
		return errors.New("color: want 3 bytes")
	}
	c.r, c.g, c.b = b[0], b[1], b[2]
	return nil
}

func init() {
	RegisterType[point]("usersessions_test.point")
	RegisterType[color]("usersessions_test.color")
}

func TestValuesRoundTrip(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	values := map[string]any{
		"string": "hello, 世界", "empty": "", "int": 42, "neg": -7, "int8": int8(-8), "int16": int16(16),
		"int32": int32(32), "int64": int64(1) << 62, "uint": uint(7), "uint8": uint8(255), "uint16": uint16(65535),
		"uint32": uint32(1 << 31), "uint64": uint64(1<<64 - 1), "float32": float32(1.5), "float64": 3.25,
		"bool": true, "false": false, "nil": nil, "bytes": []byte{0, 1, 2}, "time": when,
		"duration": 90 * time.Second, "strings": []string{"a", "", "c"},
		"list": []any{"x", 1, []any{true}}, "map": map[string]any{"k": "v", "n": map[string]any{"deep": 1.5}},
		"point": point{3, 4}, "color": color{1, 2, 3},
	}
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, nil)
		sess := mustCreate(t, s, "alice", clientA)
		for k, v := range values {
			sess.Set(k, v)
		}
		if !sess.Modified() {
			t.Fatal("Set did not mark the session modified")
		}
		if err := s.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if sess.Modified() {
			t.Error("Save left the session marked modified")
		}
		check := func(stage string, got *Session) {
			t.Helper()
			if len(got.Keys()) != len(values) {
				t.Errorf("%s: %d keys, want %d", stage, len(got.Keys()), len(values))
			}
			for k, want := range values {
				v, ok := got.Get(k)
				if tm, isTime := v.(time.Time); isTime {
					// The instant and the offset survive; a zone's name
					// is not stored (time.Time.MarshalBinary).
					_, off := tm.Zone()
					if !tm.Equal(when) || off != 3600 {
						t.Errorf("%s: time = %v, want %v", stage, tm, when)
					}
					continue
				}
				if !ok || !reflect.DeepEqual(v, want) || reflect.TypeOf(v) != reflect.TypeOf(want) {
					t.Errorf("%s: %s = %#v (%T), want %#v (%T)", stage, k, v, v, want, want)
				}
			}
		}
		loaded, err := s.Load(ctx, sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		check("load", loaded)
		settle(s)
		loaded, _ = s.Load(ctx, sess.Token)
		check("second load", loaded)

		path := s.Path()
		s.Close()
		s2, err := Open(path, &Options{NoCache: !cached})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		loaded, err = s2.Load(ctx, sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		check("reopen", loaded)
	})
}

func TestUnsupportedValue(t *testing.T) {
	s := openTest(t, true, nil)
	sess := mustCreate(t, s, "alice", clientA)
	sess.Set("ch", make(chan int))
	if err := s.Save(ctx, sess); !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("Save(chan) = %v, want ErrUnsupportedType", err)
	}
	if _, err := s.Load(ctx, sess.Token); err != nil {
		t.Fatalf("a failed Save harmed the session: %v", err)
	}
}

func TestCallerChangesDoNotLeak(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, nil)
		sess := mustCreate(t, s, "alice", clientA)
		sess.Set("role", "user")
		if err := s.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			got, _ := s.Load(ctx, sess.Token)
			settle(s)
			got.Set("role", "admin")
			got.Set("extra", 1)
			got.Delete("missing")
			got.UserID = "mallory"
		}
		got, err := s.Load(ctx, sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := got.Get("role"); v != "user" || got.UserID != "alice" || len(got.Keys()) != 1 || got.Modified() {
			t.Fatalf("unsaved changes leaked: role=%v user=%q keys=%v", v, got.UserID, got.Keys())
		}
	})
}

func TestSaveChangesUser(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, nil)
		sess := mustCreate(t, s, "", clientA)
		if list, _ := s.ListByUser(ctx, ""); len(list) != 0 {
			t.Fatalf("anonymous sessions are listed under user \"\": %d", len(list))
		}
		sess.UserID = "bob"
		if err := s.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.ListByUser(ctx, "bob"); len(list) != 1 || list[0].ID != sess.ID {
			t.Fatalf("ListByUser(bob) after Save = %v", list)
		}
		sess.UserID = "carol"
		if err := s.Save(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.ListByUser(ctx, "bob"); len(list) != 0 {
			t.Fatalf("bob still lists the session after it moved to carol")
		}
		if got, _ := s.Load(ctx, sess.Token); got.UserID != "carol" {
			t.Fatalf("Load after Save: user %q", got.UserID)
		}
	})
}

func TestTouchIsBatched(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		clock := clocktest.New()
		s := openTest(t, cached, &Options{Now: clock.Now, TouchInterval: time.Hour})
		sess := mustCreate(t, s, "alice", clientA)
		commits := s.Stats().Commits
		for range 100 {
			clock.Advance(time.Second)
			if err := s.Touch(ctx, sess.ID, clientB); err != nil {
				t.Fatal(err)
			}
		}
		if c := s.Stats().Commits; c != commits {
			t.Fatalf("Touch wrote to disk: %d commits", c-commits)
		}
		got, _ := s.Load(ctx, sess.Token)
		if !got.LastSeen.Equal(clock.Now()) || got.IP != clientB.IP || got.UserAgent != clientB.UserAgent {
			t.Fatalf("Load does not see fresh activity: %+v", got)
		}
		if st := s.Stats(); st.PendingTouches != 1 {
			t.Fatalf("PendingTouches = %d, want 1", st.PendingTouches)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.PendingTouches != 0 || st.Commits != commits+1 {
			t.Fatalf("after Flush: %+v, want one commit and nothing pending", st)
		}
		got, _ = s.Load(ctx, sess.Token)
		if !got.LastSeen.Equal(clock.Now()) || got.IP != clientB.IP {
			t.Fatalf("after Flush Load = %+v", got)
		}
		// Touching again and closing persists the latest activity.
		clock.Advance(time.Minute)
		s.Touch(ctx, sess.ID, clientA)
		path := s.Path()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(path, &Options{NoCache: !cached, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		got, _ = s2.Load(ctx, sess.Token)
		if !got.LastSeen.Equal(clock.Now()) || got.IP != clientA.IP {
			t.Fatalf("Close did not flush activity: %+v", got)
		}
		if err := s2.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTruncatesUserAgent(t *testing.T) {
	s := openTest(t, true, nil)
	huge := strings.Repeat("é", MaxUserAgentLength) // 2 bytes each
	sess := mustCreate(t, s, "alice", Client{UserAgent: huge})
	if len(sess.UserAgent) > MaxUserAgentLength || !strings.HasPrefix(huge, sess.UserAgent) || len(sess.UserAgent) < MaxUserAgentLength-1 {
		t.Fatalf("stored user agent of %d bytes", len(sess.UserAgent))
	}
	if err := s.Touch(ctx, sess.ID, Client{UserAgent: "x" + huge}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Load(ctx, sess.Token)
	if len(got.UserAgent) > MaxUserAgentLength {
		t.Fatalf("Touch stored %d bytes of user agent", len(got.UserAgent))
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		_, err = Open(path, &Options{OpenTimeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
			t.Fatalf("second Open = %v, want ErrLocked naming %s", err, path)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Open took %v to give up", time.Since(start))
		}
	})
	t.Run("garbage", func(t *testing.T) {
		path := filepath.Join(dir, "garbage.db")
		os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600)
		if _, err := Open(path, nil); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open(garbage) = %v, want ErrSchema naming the file", err)
		}
		if data, _ := os.ReadFile(path); !bytes.HasPrefix(data, []byte("not a database")) {
			t.Fatal("Open wrote into a foreign file")
		}
	})
	t.Run("foreign bbolt", func(t *testing.T) {
		path := filepath.Join(dir, "foreign.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
		db.Close()
		if _, err := Open(path, nil); !errors.Is(err, ErrSchema) {
			t.Fatalf("Open(foreign bbolt) = %v, want ErrSchema", err)
		}
	})
	t.Run("future schema", func(t *testing.T) {
		path := filepath.Join(dir, "future.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, _ := bolt.Open(path, 0o600, nil)
		db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, []byte("99")) })
		db.Close()
		if _, err := Open(path, nil); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "99") {
			t.Fatalf("Open(schema 99) = %v, want ErrSchema naming the version", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := Open(dir, nil); err == nil {
			t.Fatal("Open(directory) succeeded")
		}
	})
}

func TestCorruptRecord(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		path := filepath.Join(t.TempDir(), "db")
		s, err := Open(path, &Options{NoCache: !cached})
		if err != nil {
			t.Fatal(err)
		}
		good := mustCreate(t, s, "alice", clientA)
		bad := mustCreate(t, s, "alice", clientA)
		s.Close()
		db, _ := bolt.Open(path, 0o600, nil)
		id, _ := backend.ParseID(bad.ID)
		db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSessions).Put(id[:], []byte{recordVersion, 1, 2, 3})
		})
		db.Close()

		s, err = Open(path, &Options{NoCache: !cached, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Load(ctx, bad.Token); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Load(corrupt) = %v, want ErrCorrupt", err)
		}
		if _, err := s.Load(ctx, good.Token); err != nil {
			t.Fatalf("the good session suffers: %v", err)
		}
		if err := s.Check(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad.ID) {
			t.Fatalf("Check = %v, want ErrCorrupt naming %s", err, bad.ID)
		}
		var errs, oks int
		for sess, err := range s.All(ctx, Filter{}) {
			if err != nil {
				errs++
			} else if sess.ID == good.ID {
				oks++
			}
		}
		if errs != 1 || oks != 1 {
			t.Fatalf("All: %d errors, %d good; want 1 and 1", errs, oks)
		}
		// Ending the damaged session works: the user can get rid of it.
		if n, err := s.EndUser(ctx, "alice", good.ID, EndOptions{}); n != 1 || err != nil {
			t.Fatalf("EndUser over the corrupt record = %d, %v; want 1, nil", n, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check after ending the corrupt session: %v", err)
		}
	})
}

func TestCheckFindsBrokenIndexes(t *testing.T) {
	s := openTest(t, false, nil)
	a := mustCreate(t, s, "alice", clientA)
	mustCreate(t, s, "bob", clientA)
	id, _ := backend.ParseID(a.ID)
	// Break the indexes behind the store's back, as a bug would.
	err := boltDB(s).Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketByUser).Delete(userKey("alice", id)); err != nil {
			return err
		}
		return tx.Bucket(bucketByUser).Put(userKey("mallory", backend.ID{1}), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(ctx)
	for _, want := range []string{"missing from the user index", `"mallory" -> missing session`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want a problem %q", err, want)
		}
	}
	// Repair so the cleanup check passes.
	boltDB(s).Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketByUser).Delete(userKey("mallory", backend.ID{1}))
		return tx.Bucket(bucketByUser).Put(userKey("alice", id), nil)
	})
}

func TestIdleTimeoutChangeRebuildsIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, &Options{IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "alice", clientA)
	s.Close()
	s, err = Open(path, &Options{IdleTimeout: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("expiry index not rebuilt for the new idle timeout: %v", err)
	}
	s.Close()
	// A tool keeps the application's setting.
	s, err = Open(path, &Options{IdleTimeout: UseStoredIdleTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.IdleTimeout() != 2*time.Hour {
		t.Fatalf("UseStoredIdleTimeout gave %v, want the stored 2h", s.IdleTimeout())
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		s := openTest(t, cached, &Options{TouchInterval: 5 * time.Millisecond})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := fmt.Sprint("user", w%3)
				for i := range 25 {
					sess, err := s.Create(ctx, user, clientA)
					if err != nil {
						t.Error(err)
						return
					}
					// Other goroutines end this user's sessions at any
					// moment, so ErrNotFound is a fine answer here.
					sess.Set("i", i)
					if err := s.Save(ctx, sess); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
					if _, err := s.Load(ctx, sess.Token); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
					if err := s.Touch(ctx, sess.ID, clientB); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
					switch i % 5 {
					case 0:
						s.End(ctx, sess.ID, EndOptions{})
					case 1:
						s.Rotate(ctx, sess.Token)
					case 2:
						s.ListByUser(ctx, user)
					case 3:
						s.EndUser(ctx, user, sess.ID, EndOptions{})
					}
				}
			}()
		}
		wg.Wait()
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWritesAreCoalesced(t *testing.T) {
	s := openTest(t, false, nil)
	before := s.Stats().Commits
	const writers, each = 32, 4
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Create(ctx, "u", clientA); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	commits := s.Stats().Commits - before
	t.Logf("%d creates in %d commits", writers*each, commits)
	if commits >= writers*each {
		t.Fatalf("%d concurrent creates took %d commits: no group commit", writers*each, commits)
	}
}

func TestStatsHitRatio(t *testing.T) {
	s := openTest(t, true, nil)
	sess := mustCreate(t, s, "alice", clientA)
	settle(s)
	for range 10 {
		if _, err := s.Load(ctx, sess.Token); err != nil {
			t.Fatal(err)
		}
		settle(s)
	}
	st := s.Stats()
	if !st.Cached || st.Loads != 10 || st.Hits < 9 || st.HitRatio < 0.9 {
		t.Fatalf("Stats = %+v, want 10 loads with at least 9 hits", st)
	}
}

func TestSaveKeepsFreshActivity(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		clock := clocktest.New()
		s := openTest(t, cached, &Options{Now: clock.Now, IdleTimeout: 10 * time.Minute, TouchInterval: time.Hour})
		sess := mustCreate(t, s, "alice", clientA)
		loaded, _ := s.Load(ctx, sess.Token)
		// Busy for longer than the idle timeout, with nothing flushed yet.
		for range 3 {
			clock.Advance(5 * time.Minute)
			if err := s.Touch(ctx, sess.ID, clientB); err != nil {
				t.Fatal(err)
			}
		}
		loaded.Set("k", "v")
		if err := s.Save(ctx, loaded); err != nil {
			t.Fatalf("Save of a busy session: %v", err)
		}
		got, err := s.Load(ctx, sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		if got.IP != clientB.IP || got.UserAgent != clientB.UserAgent || !got.LastSeen.Equal(clock.Now()) {
			t.Fatalf("Save lost Touch's activity: %+v", got)
		}
		if loaded.IP != clientB.IP {
			t.Errorf("Save did not report the stored client back: %v", loaded.IP)
		}
		rotated, err := s.Rotate(ctx, sess.Token)
		if err != nil || rotated.IP != clientB.IP {
			t.Fatalf("Rotate = %+v, %v", rotated, err)
		}
	})
}

func TestListByUserSkipsDamage(t *testing.T) {
	s := openTest(t, false, &Options{Logger: discardLogger()})
	good := mustCreate(t, s, "alice", clientA)
	ghost := backend.ID{9}
	boltDB(s).Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketByUser).Put(userKey("alice", ghost), nil) })
	list, err := s.ListByUser(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].ID != good.ID {
		t.Fatalf("ListByUser with a dangling index entry = %v, %v", list, err)
	}
	if err := s.Check(ctx); err == nil {
		t.Fatal("Check missed the dangling entry")
	}
	if n, err := s.EndUser(ctx, "alice", "", EndOptions{}); err != nil || n != 1 {
		t.Fatalf("EndUser = %d, %v", n, err)
	}
}

func TestIDsFollowCreationTime(t *testing.T) {
	clock := clocktest.New()
	s := openTest(t, true, &Options{Now: clock.Now})
	var ids []string
	for range 20 {
		ids = append(ids, mustCreate(t, s, "alice", clientA).ID)
		clock.Advance(time.Millisecond)
	}
	sorted := slices.SortedFunc(slices.Values(ids), func(a, b string) int {
		x, _ := backend.ParseID(a)
		y, _ := backend.ParseID(b)
		return bytes.Compare(x[:], y[:])
	})
	if !slices.Equal(ids, sorted) {
		t.Fatal("IDs are not in creation order: cleanup and inserts lose their locality")
	}
	// Within one millisecond the random part keeps IDs apart.
	a, b := mustCreate(t, s, "alice", clientA), mustCreate(t, s, "alice", clientA)
	if a.ID == b.ID || a.ID[:8] != b.ID[:8] {
		t.Fatalf("same-millisecond IDs %s and %s: want equal time prefixes and distinct IDs", a.ID, b.ID)
	}
}

// toValues turns a map into a value list, keys in sorted order.
func toValues(m map[string]any) valueList {
	var l valueList
	for _, k := range slices.Sorted(maps.Keys(m)) {
		l = append(l, keyValue{k, m[k]})
	}
	return l
}

func TestDecodeValuesRejectsRepeatedKeys(t *testing.T) {
	for _, n := range []int{2, 40} { // the short scan and the long map check
		l := make(valueList, n)
		for i := range l {
			l[i] = keyValue{fmt.Sprint("k", i), i}
		}
		l[n-1].key = "k0"
		data, err := encodeValues(nil, l)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeValues(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d values, one key twice: %v, want ErrCorrupt", n, err)
		}
	}
}

func TestKeysKeepOrder(t *testing.T) {
	var s Session
	for _, k := range []string{"c", "a", "b"} {
		s.Set(k, k)
	}
	s.Set("a", "again")
	s.Delete("c")
	s.Delete("missing")
	if got := s.Keys(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Keys = %v", got)
	}
	if v, _ := s.Get("a"); v != "again" {
		t.Fatalf("Get(a) = %v", v)
	}
}

func TestTouchAfterRotateUserUsesNewLifetime(t *testing.T) {
	clock := clocktest.New()
	s := openTest(t, true, &Options{Now: clock.Now, Lifetime: time.Hour, TouchInterval: time.Hour})
	sess := mustCreate(t, s, "", clientA)
	if err := s.Touch(ctx, sess.ID, clientA); err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Minute)
	signedIn, err := s.RotateUser(ctx, sess.Token, "alice")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute) // past the old deadline, inside the new one
	if err := s.Touch(ctx, signedIn.ID, clientB); err != nil {
		t.Fatalf("Touch after sign-in: %v", err)
	}
	got, err := s.Load(ctx, signedIn.Token)
	if err != nil || got.IP != clientB.IP || !got.LastSeen.Equal(clock.Now()) {
		t.Fatalf("Load after sign-in and Touch = %+v, %v", got, err)
	}
}

func TestLoadTouch(t *testing.T) {
	modes(t, func(t *testing.T, cached bool) {
		clock := clocktest.New()
		s := openTest(t, cached, &Options{Now: clock.Now, IdleTimeout: time.Hour, TouchInterval: time.Hour})
		sess := mustCreate(t, s, "alice", clientA)
		commits := s.Stats().Commits
		for i := range 3 {
			clock.Advance(30 * time.Minute) // each step alone is inside the idle timeout
			settle(s)
			got, err := s.LoadTouch(ctx, sess.Token, clientB)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if got.IP != clientB.IP || got.UserAgent != clientB.UserAgent || !got.LastSeen.Equal(clock.Now()) || got.Token != "" {
				t.Fatalf("step %d: LoadTouch = %+v, want this request's activity and no token", i, got)
			}
		}
		if c := s.Stats().Commits; c != commits {
			t.Fatalf("LoadTouch wrote to disk: %d commits", c-commits)
		}
		for name, token := range map[string]string{"empty": "", "garbage": strings.Repeat("!", TokenLength)} {
			if _, err := s.LoadTouch(ctx, token, clientA); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: LoadTouch = %v, want ErrNotFound", name, err)
			}
		}
		clock.Advance(61 * time.Minute)
		if _, err := s.LoadTouch(ctx, sess.Token, clientA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LoadTouch revived an idle session: %v", err)
		}
		live := mustCreate(t, s, "alice", clientA)
		if _, err := s.LoadTouch(ctx, live.Token, clientA); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, live.ID, EndOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadTouch(ctx, live.Token, clientA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LoadTouch of a deleted session: %v", err)
		}
	})
}

// TestCachedLoadSeesNewActivity loads a session from the cache while it has
// no activity in memory (the cache entry remembers that), then touches it:
// the next cached Load must show the touch.
func TestCachedLoadSeesNewActivity(t *testing.T) {
	clock := clocktest.New()
	s := openTest(t, true, &Options{Now: clock.Now, TouchInterval: time.Hour})
	sess := mustCreate(t, s, "alice", clientA)
	settle(s)
	for range 2 {
		if got, err := s.Load(ctx, sess.Token); err != nil || got.IP != clientA.IP {
			t.Fatalf("Load = %+v, %v", got, err)
		}
	}
	hits := s.Stats().Hits
	clock.Advance(time.Minute)
	if err := s.Touch(ctx, sess.ID, clientB); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.IP != clientB.IP || got.UserAgent != clientB.UserAgent || !got.LastSeen.Equal(clock.Now()) {
		t.Fatalf("Load after Touch = %+v, want clientB at %v", got, clock.Now())
	}
	if st := s.Stats(); st.Hits <= hits {
		t.Fatalf("the Load after Touch missed the cache (%+v): the test needs a hit", st)
	}
}

// TestStatsCountHitsOnce checks the counters of the cache's fast path: a
// hit that loads counts once as a load and once as a hit, and a hit on an
// expired session counts as a hit only.
func TestStatsCountHitsOnce(t *testing.T) {
	clock := clocktest.New()
	s := openTest(t, true, &Options{Now: clock.Now, IdleTimeout: time.Hour})
	sess := mustCreate(t, s, "alice", clientA)
	settle(s)
	before := s.Stats()
	for range 5 {
		if _, err := s.Load(ctx, sess.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadTouch(ctx, sess.Token, clientA); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Loads-before.Loads != 10 || st.Hits-before.Hits != 10 || st.Misses != before.Misses {
		t.Fatalf("after 10 cached loads: %+v (before %+v)", st, before)
	}
	clock.Advance(2 * time.Hour)
	if _, err := s.Load(ctx, sess.Token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of an idle session: %v", err)
	}
	if after := s.Stats(); after.Loads != st.Loads || after.Hits != st.Hits+1 {
		t.Fatalf("an expired hit: %+v (before %+v), want one more hit and no load", after, st)
	}
}

// boltDB is the bbolt database under a Store from Open, for tests that
// break it behind the Store's back.
func boltDB(s *Store) *bolt.DB { return s.b.(*boltBackend).db }
