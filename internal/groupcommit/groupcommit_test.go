package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/usersessions/usersessions/backend"
)

var errBad = errors.New("bad write")

// start returns a started Group of commit and alone with up to max writes
// a batch, stopped when the test ends.
func start(t *testing.T, max int, commit func([]int) error, alone func(error) bool) *Group[int] {
	quit := make(chan struct{})
	g := New(quit, max, commit, alone)
	g.Start(1)
	t.Cleanup(func() { close(quit); g.Wait() })
	return g
}

// TestBatchesShareCommits checks that writes queued while a commit runs
// share the next one, and that every write is committed exactly once.
func TestBatchesShareCommits(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	g := start(t, 256, func(b []int) error {
		mu.Lock()
		first := len(batches) == 0
		batches = append(batches, slices.Clone(b))
		mu.Unlock()
		if first {
			<-release // hold the first commit while the others queue
		}
		return nil
	}, func(error) bool { return true })

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Do(context.Background(), 0); err != nil {
			t.Errorf("Do(0) = %v", err)
		}
	})
	for { // wait until the first commit holds
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			break
		}
	}
	const writers = 20
	var queued sync.WaitGroup
	for i := 1; i <= writers; i++ {
		queued.Add(1)
		wg.Go(func() {
			queued.Done()
			if err := g.Do(context.Background(), i); err != nil {
				t.Errorf("Do(%d) = %v", i, err)
			}
		})
	}
	queued.Wait()
	close(release)
	wg.Wait()

	var all []int
	for _, b := range batches {
		all = append(all, b...)
	}
	slices.Sort(all)
	if len(all) != writers+1 || all[0] != 0 || all[writers] != writers || len(slices.Compact(all)) != writers+1 {
		t.Fatalf("committed %v, want each of 0..%d once", all, writers)
	}
	if len(batches) >= writers+1 {
		t.Errorf("%d commits for %d writes: queued writes did not share a commit", len(batches), writers+1)
	}
}

// TestFailingWriteRunsAlone checks that a failing write in a batch fails
// alone: the others commit in batches of their own.
func TestFailingWriteRunsAlone(t *testing.T) {
	var mu sync.Mutex
	committed := map[int]bool{}
	g := start(t, 256, func(b []int) error {
		if slices.Contains(b, -1) {
			return errBad
		}
		mu.Lock()
		for _, v := range b {
			committed[v] = true
		}
		mu.Unlock()
		return nil
	}, func(error) bool { return true })
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		v := i
		if i == 3 {
			v = -1
		}
		wg.Go(func() { errs[i] = g.Do(context.Background(), v) })
	}
	wg.Wait()
	for i, err := range errs {
		if i == 3 && !errors.Is(err, errBad) || i != 3 && (err != nil || !committed[i]) {
			t.Errorf("write %d: err %v, committed %v", i, err, committed[i])
		}
	}
}

// TestSharedFailure checks that an error alone says every write would
// meet fails the whole batch at once, without retrying each write.
func TestSharedFailure(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	g := start(t, 256, func(b []int) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return errBad
	}, func(error) bool { return false })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := g.Do(context.Background(), i); !errors.Is(err, errBad) {
				t.Errorf("Do(%d) = %v, want errBad", i, err)
			}
		})
	}
	wg.Wait()
	if calls > 8 {
		t.Errorf("%d commits for 8 writes: a shared failure was retried write by write", calls)
	}
}

// TestStopped checks Do after quit (ErrClosed) and with a cancelled ctx
// that no committer took.
func TestStopped(t *testing.T) {
	quit := make(chan struct{})
	g := New(quit, 4, func([]int) error { return nil }, func(error) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Do(ctx, 1); !errors.Is(err, context.Canceled) { // not started: nobody takes it
		t.Errorf("Do with a cancelled ctx = %v, want context.Canceled", err)
	}
	g.Start(2)
	close(quit)
	g.Wait()
	if err := g.Do(context.Background(), 1); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Do after quit = %v, want backend.ErrClosed", err)
	}
}
