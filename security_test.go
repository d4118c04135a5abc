package usersessions

// The account-security rules are tested through the public API on every
// backend by storetest (MaxPerUser, History, Privacy, CredentialsChanged,
// in both cache modes): here are what only the bbolt file shows (no full
// address in the file) and the Store's own machinery (hooks, devices).

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/clocktest"
)

const (
	uaSafariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	uaChromeWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// hookLog records hook calls.
type hookLog struct {
	mu      sync.Mutex
	created []string // "user/ID/newDevice"
	ended   map[string]EndReason
}

func (h *hookLog) hooks(s **Store, t *testing.T) Hooks {
	h.ended = map[string]EndReason{}
	return Hooks{
		Created: func(ctx context.Context, sess *Session, newDevice bool) {
			if sess.Token != "" {
				t.Error("a hook saw a token")
			}
			// Durable before the hook: the session can be read.
			if _, err := (*s).Get(ctx, sess.ID); err != nil {
				t.Errorf("Created hook: the session is not there yet: %v", err)
			}
			h.mu.Lock()
			nd := "old"
			if newDevice {
				nd = "new"
			}
			h.created = append(h.created, sess.UserID+"/"+nd)
			h.mu.Unlock()
		},
		Ended: func(ctx context.Context, sess *Session, reason EndReason) {
			if _, err := (*s).Get(ctx, sess.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Ended hook: the session is still there: %v", err)
			}
			h.mu.Lock()
			h.ended[sess.ID] = reason
			h.mu.Unlock()
		},
	}
}

func (h *hookLog) reason(id string) EndReason {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ended[id]
}

func TestPrivacyKeepsNoFullAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	s, err := Open(path, &Options{CleanupInterval: -1, History: time.Hour,
		Privacy: Privacy{IPPrefixV4: 24, IPPrefixV6: 48, NoUserAgent: true}})
	if err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParseAddr("81.2.69.142")
	v6 := netip.MustParseAddr("2001:db8:abcd:1234:5678:9abc:def0:1234")
	a, err := s.Create(ctx, "alice", Client{IP: v4, UserAgent: uaSafariIPhone})
	if err != nil {
		t.Fatal(err)
	}
	if a.IP != netip.MustParseAddr("81.2.69.0") || a.UserAgent != "Safari on iPhone" {
		t.Fatalf("Create kept %v, %q", a.IP, a.UserAgent)
	}
	b, _ := s.Create(ctx, "alice", Client{IP: v4, UserAgent: uaChromeWin})
	got, err := s.LoadTouch(ctx, a.Token, Client{IP: v6, UserAgent: uaChromeWin})
	if err != nil || got.IP != netip.MustParseAddr("2001:db8:abcd::") || got.UserAgent != "Chrome on Windows" {
		t.Fatalf("LoadTouch = %+v, %v", got, err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, b.ID, EndOptions{}); err != nil { // into the history
		t.Fatal(err)
	}
	if past, _ := s.History(ctx, "alice"); len(past) != 1 || past[0].IP != netip.MustParseAddr("81.2.69.0") {
		t.Fatalf("History = %+v", past)
	}
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v4b, v6b := v4.As4(), v6.As16()
	for what, b := range map[string][]byte{
		"the IPv4 address": v4b[:], "the IPv6 address": v6b[:],
		"a user agent": []byte("Mozilla/5.0"), "a user agent's version": []byte("AppleWebKit"),
	} {
		if bytes.Contains(data, b) {
			t.Errorf("the database file holds %s", what)
		}
	}
	if !bytes.Contains(data, []byte("Chrome on Windows")) {
		t.Error("the device name was not kept")
	}
}

func TestPrivacyRejectsBadPrefixes(t *testing.T) {
	for _, p := range []Privacy{{IPPrefixV4: 33}, {IPPrefixV6: 129}, {IPPrefixV4: -1}} {
		if _, err := Open(filepath.Join(t.TempDir(), "db"), &Options{Privacy: p}); err == nil {
			t.Errorf("Open with %+v succeeded", p)
		}
	}
}

func TestHookPanicIsRecovered(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	s := openTest(t, true, &Options{Logger: logger, Hooks: Hooks{
		Created: func(context.Context, *Session, bool) { panic("boom in Created") },
		Ended:   func(context.Context, *Session, EndReason) { panic("boom in Ended") },
	}})
	sess, err := s.Create(ctx, "alice", clientA)
	if err != nil {
		t.Fatalf("Create with a panicking hook: %v", err)
	}
	if err := s.End(ctx, sess.ID, EndOptions{}); err != nil {
		t.Fatalf("Delete with a panicking hook: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"boom in Created", "boom in Ended"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("the panic %q was not logged", want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNewDevice(t *testing.T) {
	var s *Store
	var h hookLog
	s = openTest(t, false, &Options{History: time.Hour, Hooks: h.hooks(&s, t)})
	first := mustCreate(t, s, "alice", Client{UserAgent: uaSafariIPhone})
	mustCreate(t, s, "alice", Client{UserAgent: uaSafariIPhone})
	if err := s.End(ctx, first.ID, EndOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "alice", Client{UserAgent: uaChromeWin})
	mustCreate(t, s, "bob", Client{UserAgent: uaChromeWin})
	want := []string{"alice/new", "alice/old", "alice/new", "bob/new"}
	if !slices.Equal(h.created, want) {
		t.Fatalf("Created(newDevice) = %v, want %v", h.created, want)
	}
}

// failingDeletes is the bbolt backend with DeleteByUser failing, as an
// unreachable database would.
type failingDeletes struct{ *boltBackend }

func (failingDeletes) DeleteByUser(context.Context, string, backend.ID, backend.Ending) ([]backend.Record, error) {
	return nil, ErrUnavailable
}

// CredentialsChanged ends the others before it rotates: if ending them
// fails, the person's token still works and the call can be repeated.
func TestCredentialsChangedFailsSafe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b, err := openBoltBackend(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStore(failingDeletes{b}, &Options{CleanupInterval: -1}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	me := mustCreate(t, s, "alice", clientA)
	mustCreate(t, s, "alice", clientB)
	if _, _, err := s.CredentialsChanged(ctx, me.Token); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CredentialsChanged = %v, want ErrUnavailable", err)
	}
	if _, err := s.Load(ctx, me.Token); err != nil {
		t.Fatalf("the token died although the others were not ended: %v", err)
	}
}

// A clear of the activity table (the change feed came back) fences a touch
// that read its session before the clear, as a removal does.
func TestActivityClearFencesAdd(t *testing.T) {
	tbl := newActivityTable()
	id := backend.ID{0, 0, 0, 0, 0, 0, 7, 9}
	since := tbl.removals(id)
	tbl.clear()
	if tbl.add(id, 1, clientA, activity{client: &clientInfo{}}, 1<<62, since) {
		t.Fatal("an add that read before the clear created an entry")
	}
}

// One damaged history entry does not hide the others.
func TestDamagedHistoryEntrySkipped(t *testing.T) {
	s := openTest(t, false, &Options{History: time.Hour, Logger: discardLogger()})
	a := mustCreate(t, s, "alice", clientA)
	bb := mustCreate(t, s, "alice", clientB)
	if err := s.End(ctx, a.ID, EndOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, bb.ID, EndOptions{}); err != nil {
		t.Fatal(err)
	}
	err := boltDB(s).Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketHistory).Cursor().First()
		return tx.Bucket(bucketHistory).Put(k, []byte{0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	past, err := s.History(ctx, "alice")
	if err != nil || len(past) != 1 {
		t.Fatalf("History = %d entries, %v; want the undamaged one", len(past), err)
	}
}

// failingTouch is the bbolt backend with Touch failing, as a PostgreSQL
// batch did with a user agent that was not UTF-8 in it.
type failingTouch struct{ *boltBackend }

var errRefusedRow = errors.New("touch: a row the database refuses")

func (failingTouch) Touch(context.Context, []backend.Activity) error { return errRefusedRow }

// A flush that fails does not stop cleanup: expired sessions are still
// removed, one whose activity is only in memory is kept, and the flush's
// error is reported.
func TestClearExpiredRunsWhenFlushFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b, err := openBoltBackend(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New()
	s, err := newStore(failingTouch{b}, &Options{CleanupInterval: -1, Now: clock.Now, IdleTimeout: time.Hour, Logger: discardLogger()}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idle := mustCreate(t, s, "alice", clientA)
	busy := mustCreate(t, s, "bob", clientA)
	clock.Advance(50 * time.Minute)
	if err := s.Touch(ctx, busy.ID, clientB); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Minute)
	n, err := s.ClearExpired(ctx)
	if n != 1 || !errors.Is(err, errRefusedRow) {
		t.Fatalf("ClearExpired = %d, %v; want 1 and the flush's error", n, err)
	}
	if _, err := s.Get(ctx, idle.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the idle session is still there: %v", err)
	}
	if _, err := s.Get(ctx, busy.ID); err != nil {
		t.Fatalf("the busy session was cleared: %v", err)
	}
}

// listAfterCreates is the bbolt backend with ListByUser held until every
// expected Create has committed: sign-ins whose Created hooks look for
// earlier devices only once all of them are durable, so each sees the
// others.
type listAfterCreates struct {
	*boltBackend
	created *sync.WaitGroup
}

func (b listAfterCreates) Create(ctx context.Context, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	defer b.created.Done()
	return b.boltBackend.Create(ctx, r, limit)
}

func (b listAfterCreates) ListByUser(ctx context.Context, userID string, fn func(*backend.Record, error)) error {
	b.created.Wait()
	return b.boltBackend.ListByUser(ctx, userID, fn)
}

// Sign-ins at the same moment from a device the user never used, each
// seeing the others: exactly one reports the new device. A session created
// after another one is not earlier, even when the list shows it.
func TestNewDeviceSimultaneousSignIns(t *testing.T) {
	const n = 4
	path := filepath.Join(t.TempDir(), "db")
	b, err := openBoltBackend(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var created sync.WaitGroup
	created.Add(n)
	var s *Store
	var h hookLog
	s, err = newStore(listAfterCreates{b, &created}, &Options{CleanupInterval: -1, Hooks: h.hooks(&s, t)}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.Create(ctx, "alice", Client{UserAgent: uaChromeWin}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(h.created)
	if want := []string{"alice/new", "alice/old", "alice/old", "alice/old"}; !slices.Equal(h.created, want) {
		t.Fatalf("Created(newDevice) = %v, want %v", h.created, want)
	}
}

// A Save that signs a session in counts from that write, not from the
// session's creation: a session of the same device created in between is
// earlier, and the sign-in is not from a new device.
func TestNewDeviceSaveSignIn(t *testing.T) {
	clock := clocktest.New()
	var s *Store
	var h hookLog
	s = openTest(t, false, &Options{Now: clock.Now, Hooks: h.hooks(&s, t)})
	anon := mustCreate(t, s, "", Client{UserAgent: uaChromeWin})
	clock.Advance(time.Minute)
	mustCreate(t, s, "alice", Client{UserAgent: uaChromeWin})
	clock.Advance(time.Minute)
	anon.UserID = "alice"
	if err := s.Save(ctx, anon); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice/new", "alice/old"}; !slices.Equal(h.created, want) {
		t.Fatalf("Created(newDevice) = %v, want %v", h.created, want)
	}
}
