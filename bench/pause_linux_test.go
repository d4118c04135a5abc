package bench

import (
	"syscall"
	"time"
)

// pause sleeps the thread for d with nanosleep: precise to some ten
// microseconds, where time.Sleep of a few microseconds takes about a
// millisecond in a process that has nothing else to run (see pollEvery).
func pause(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	_ = syscall.Nanosleep(&ts, nil)
}
