//go:build !unix

package usersessions

import (
	"os"
	"time"
)

// lockFile leaves locking to bbolt on platforms without flock.
func lockFile(f *os.File, timeout time.Duration) error { return nil }
