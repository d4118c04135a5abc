package usersessions

import (
	"sync/atomic"
	"time"
)

// The clock.
//
// Every Load checks that the session is still alive and every Touch stamps
// LastSeen, so the hot path wants the time on every call. Reading it costs
// about 30 ns on a virtual machine's kvm-clock: a sixth of a cached Load.
// Yet a session's deadline is nearly always minutes or hours away, and to
// know that it is still ahead a time a millisecond old does as well.
//
// So the clock keeps a coarse reading besides the exact one. While the
// store is in use, a goroutine stores the time every coarseTick; after
// coarseIdleTicks ticks in which nobody used it, it stops until the next
// reader that could use it wakes it, so an idle application is never woken. nowFor(deadline)
// answers with the coarse reading only if the deadline lies more than
// coarseMargin beyond it, and reads the clock otherwise. A coarse reading is
// one tick plus the ticker's scheduling delay old, so it can take a dead
// session for a live one only if that goroutine went unscheduled for a whole
// coarseMargin, a minute, while requests were still being served.
//
// The price is LastSeen's resolution: Touch stamps it with the coarse
// reading, so it may lag real time by about a millisecond. It never moves
// backwards, and it makes an idle deadline earlier, never later.
const (
	coarseTick      = time.Millisecond
	coarseIdleTicks = 100 // stop after 100 ms without a reader
	coarseMargin    = time.Minute
)

type clock struct {
	custom func() time.Time // Options.Now; nil for the system clock
	base   atomic.Pointer[clockBase]

	coarse atomic.Int64  // Unix nanoseconds at the last tick; 0 while stopped
	used   atomic.Bool   // a reader took coarse since the last tick
	wake   chan struct{} // a stopped ticker waits here; capacity 1
}

type clockBase struct {
	wall int64     // Unix nanoseconds at mono
	mono time.Time // carries the monotonic reading
}

// newClock returns the system clock, or custom (Options.Now) when it is not
// nil. A custom clock is always read exactly: tests that step it expect
// every call to see the step.
func newClock(custom func() time.Time) *clock {
	c := &clock{custom: custom, wake: make(chan struct{}, 1)}
	c.reset()
	return c
}

// now returns the current time in Unix nanoseconds. The system clock reads
// only the monotonic clock (time.Since: one clock read instead of
// time.Now's two) added to a wall-clock base; reset re-reads the base, so
// wall-clock steps are followed as often as it is called.
func (c *clock) now() int64 {
	if c.custom != nil {
		return c.custom().UnixNano()
	}
	b := c.base.Load()
	return b.wall + int64(time.Since(b.mono))
}

// reset re-reads the wall clock.
func (c *clock) reset() {
	t := time.Now()
	c.base.Store(&clockBase{wall: t.UnixNano(), mono: t})
}

// nowFor returns a time fit to decide whether deadline (Unix nanoseconds)
// has passed and to stamp activity: the coarse reading when deadline is
// comfortably beyond it, else the current time.
func (c *clock) nowFor(deadline int64) int64 {
	if t := c.coarse.Load(); t != 0 && deadline-t > int64(coarseMargin) {
		if !c.used.Load() { // read first: keeps the cache line shared
			c.used.Store(true)
		}
		return t
	}
	now := c.now()
	// Start a stopped ticker, but only for a reader it would have served:
	// with deadlines always near (a short IdleTimeout) it stays asleep.
	if c.custom == nil && deadline-now > int64(coarseMargin) && c.coarse.Load() == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return now
}

// run keeps the coarse reading until quit is closed. It starts stopped.
func (c *clock) run(quit <-chan struct{}) {
	t := time.NewTicker(coarseTick)
	t.Stop()
	idle := coarseIdleTicks
	for {
		if idle >= coarseIdleTicks {
			c.coarse.Store(0) // readers go to the exact clock, and wake us
			t.Stop()
			select {
			case <-c.wake:
			case <-quit:
				return
			}
			idle = 0
			t.Reset(coarseTick)
		} else {
			select {
			case <-t.C:
			case <-quit:
				return
			}
			if c.used.Swap(false) {
				idle = 0
			} else {
				idle++
			}
		}
		c.coarse.Store(c.now())
	}
}
