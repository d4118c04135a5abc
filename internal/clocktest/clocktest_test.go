package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	var zero Clock
	if !zero.Now().IsZero() {
		t.Errorf("zero Clock reads %v, want the zero time", zero.Now())
	}
	zero.Advance(time.Hour)
	if got := zero.Now(); got != (time.Time{}).Add(time.Hour) {
		t.Errorf("zero Clock advanced by an hour reads %v", got)
	}

	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := New()
	if got := c.Now(); got != start {
		t.Fatalf("New reads %v, want %v", got, start)
	}
	c.Advance(90 * time.Minute)
	c.Advance(-30 * time.Minute)
	if got := c.Now(); got != start.Add(time.Hour) {
		t.Errorf("after +90m -30m: %v, want %v", got, start.Add(time.Hour))
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c.Set(at)
	if got := c.Now(); got != at || At(at).Now() != at {
		t.Errorf("after Set: %v, At: %v; want %v", got, At(at).Now(), at)
	}
}

// TestClockConcurrentAdvance checks that Advances from many goroutines all
// count, while readers only ever see times the clock has held.
func TestClockConcurrentAdvance(t *testing.T) {
	c := New()
	start := c.Now()
	const workers, steps = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range steps {
				c.Advance(time.Second)
				if now := c.Now(); now.Before(start) || now.Sub(start)%time.Second != 0 {
					t.Errorf("read %v", now)
				}
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(workers*steps*time.Second); got != want {
		t.Errorf("after %d Advances of a second: %v, want %v", workers*steps, got, want)
	}
}
