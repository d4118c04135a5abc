//go:build unix

package usersessions

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes the exclusive advisory lock bbolt takes on f, waiting up
// to timeout. bbolt's own wait gives up early (it stops once less than one
// 50 ms retry step remains, so a 50 ms timeout returned at once); taking the
// lock here first, on the descriptor bbolt then uses, makes the timeout
// exact and lets Open verify the file with no other process writing it.
// flock locks belong to the open file description, so bbolt's own lock
// call on f succeeds at once.
func lockFile(f *os.File, timeout time.Duration) error {
	start := time.Now() // no deadline arithmetic: timeout may be huge
	step := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		left := timeout - time.Since(start)
		if left <= 0 {
			return errLockTimeout
		}
		time.Sleep(min(step, left))
		step = min(step*2, 50*time.Millisecond)
	}
}
