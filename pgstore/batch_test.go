package pgstore

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent Creates share commits; a bad one among them (an ID that
// exists) fails alone, and the others are all stored.
func TestCreateBatchIsolatesFailures(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, 0, nil)
	ctx := ctxT(t)
	dup := rec("dup", 0, time.Hour)
	mustCreate(t, b, dup)
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		r := rec("u", time.Duration(i), time.Hour)
		if i == n/2 {
			r = dup // the same ID again
		}
		wg.Go(func() { errs[i] = create(b, ctx, r) })
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == n/2 && (err == nil || !strings.Contains(err.Error(), "exists")):
			t.Fatalf("the duplicate Create: %v, want an error saying the ID exists", err)
		case i != n/2 && err != nil:
			t.Fatalf("Create %d failed with the duplicate: %v", i, err)
		}
	}
	if got, err := b.Count(ctx); err != nil || got != n {
		t.Fatalf("Count = %d, %v; want %d", got, err, n)
	}
}
