// Package clocktest provides the settable clock that the tests and
// benchmarks of this module pass as Options.Now (and httpx's Now options),
// so that expiry, idle timeouts and rendered dates do not depend on when a
// test runs. storetest.Clock is the same type, for backend authors.
package clocktest

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a settable clock. Its zero value reads the zero time until Set.
// It is safe for concurrent use. Reading it costs one atomic load, so a
// benchmark can use it without measuring it.
type Clock struct {
	mu  sync.Mutex // serializes Advance and Set, so concurrent Advances add up
	now atomic.Pointer[time.Time]
}

// New returns a Clock at a fixed moment: 22 November 2026, 12:00 UTC.
func New() *Clock { return At(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) }

// At returns a Clock at t.
func At(t time.Time) *Clock {
	c := new(Clock)
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	if t := c.now.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Advance moves the clock on by d (back, for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.Now().Add(d)
	c.now.Store(&t)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now.Store(&t)
}
