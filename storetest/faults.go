package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// What a shared backend's own fault tests check alike: how a server that
// hangs or is down shows through the Backend's calls. How to hang or stop
// the server is the backend's, so these take it as a function.

// GetOnHungServer creates a record on b, then hangs b's server (hang
// returns the thaw): a Get with a 300 ms deadline must fail within 2 s
// with ErrUnavailable wrapping context.DeadlineExceeded (a deadline is a
// server out of reach, not a missing session), and once thawed the next
// Get works within 5 s (the interrupted connection is dropped, not
// reused).
func GetOnHungServer(t testing.TB, b backend.Backend, hang func() (thaw func())) {
	t.Helper()
	r := NewRecord("alice", 0, time.Hour)
	if _, err := b.Create(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	thaw := hang()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var got backend.Record
	err := b.Get(ctx, r.ID, &got, false)
	if !errors.Is(err, usersessions.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a hung server: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get took %v with a 300 ms deadline", d)
	}
	thaw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := b.Get(ctx, r.ID, &got, false)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after thaw: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AllUnavailable runs each call (named by its key) while the server is
// down: each must fail with ErrUnavailable, within 6 s, never hang or
// report a missing session.
func AllUnavailable(t testing.TB, calls map[string]func() error) {
	t.Helper()
	for name, call := range calls {
		start := time.Now()
		if err := call(); !errors.Is(err, usersessions.ErrUnavailable) {
			t.Errorf("%s while down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("%s took %v to fail", name, d)
		}
	}
}
