//go:build !linux

package bench

import "time"

// pause is time.Sleep where nanosleep is not in package syscall; its
// resolution there may be coarser (see pollEvery).
func pause(d time.Duration) { time.Sleep(d) }
