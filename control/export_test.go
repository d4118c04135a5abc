package control

import "time"

// SetWriteStall sets how long a write of a reply may stall, for the test
// of a stalled client, and returns what restores it.
func SetWriteStall(d time.Duration) (restore func()) {
	old := writeStall
	writeStall = d
	return func() { writeStall = old }
}
