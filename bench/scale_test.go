package bench

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/clocktest"
)

// Sizes of the scaling benchmarks. -short swaps the 100k and 1M sizes for
// 10k and 50k so the suite stays under a minute.
func listSizes() []int {
	if testing.Short() {
		return []int{1_000, 10_000, 50_000}
	}
	return []int{1_000, 100_000, 1_000_000}
}

func clearSizes() []int {
	if testing.Short() {
		return []int{10_000, 50_000}
	}
	return []int{10_000, 1_000_000}
}

// A scale fixture is a store of n sessions on a fake clock:
//
//   - expiredCount sessions created at t0 (users "exp-NNNN"), which expire
//     at t0+scaleLifetime; only in fixtures of at least 10*expiredCount
//     sessions, the sizes ClearExpired uses;
//   - the rest created at t0+1h, expiring at t0+3h: five for user
//     "target", and five for each of the users "uNNNNNNN".
//
// At t0+1h+1m everything is alive; at t0+2h+1s exactly the first
// expiredCount are expired. Fixtures are built once per size and process
// with the public API from many goroutines (the store's group commit makes
// that fast), and stay open until the process ends.
type scaleFixture struct {
	n       int
	s       *usersessions.Store
	clock   *clocktest.Clock
	expired bool // the expiredCount sessions are stored
}

const (
	expiredCount  = 1000
	targetUser    = "target"
	targetCount   = 5
	scaleLifetime = 2 * time.Hour
	fixtureWriter = 256 // concurrent Creates while building
)

var (
	t0          = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	aliveAt     = t0.Add(time.Hour + time.Minute)
	expiredAt   = t0.Add(scaleLifetime + time.Second)
	scaleMu     sync.Mutex
	scaleFixes  = map[int]*scaleFixture{}
	scaleFailed = map[int]error{}
)

func getScaleFixture(b *testing.B, n int) *scaleFixture {
	b.Helper()
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if err := scaleFailed[n]; err != nil {
		b.Fatal(err)
	}
	if fx := scaleFixes[n]; fx != nil {
		return fx
	}
	start := time.Now()
	fx, err := buildScaleFixture(n)
	if err != nil {
		scaleFailed[n] = err
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	fmt.Printf("fixture: built %d sessions in %v (%.0f creates/s)\n",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	scaleFixes[n] = fx
	return fx
}

func buildScaleFixture(n int) (*scaleFixture, error) {
	fx := &scaleFixture{n: n, clock: new(clocktest.Clock)}
	fx.clock.Set(t0)
	opts := benchOptions()
	opts.Lifetime = scaleLifetime
	opts.Now = fx.clock.Now
	s, err := usersessions.Open(filepath.Join(tmpRoot, fmt.Sprintf("scale-%d.db", n)), opts)
	if err != nil {
		return nil, err
	}
	fx.s = s
	long := n
	if n >= 10*expiredCount {
		if err := fx.createExpired(); err != nil {
			s.Close()
			return nil, err
		}
		long -= expiredCount
	}
	fx.clock.Set(t0.Add(time.Hour))
	err = parallelDo(long, fixtureWriter, func(i int) error {
		user := targetUser
		if i >= targetCount {
			user = fmt.Sprintf("u%07d", i/targetCount)
		}
		_, err := s.Create(bg, user, client)
		return err
	})
	if err == nil {
		var count int
		count, err = s.Count(bg)
		if err == nil && count != n {
			err = fmt.Errorf("fixture holds %d sessions, want %d", count, n)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return fx, nil
}

// createExpired stores the expiredCount sessions that expire first.
func (fx *scaleFixture) createExpired() error {
	if fx.expired {
		return nil
	}
	saved := fx.clock.Now()
	fx.clock.Set(t0)
	defer fx.clock.Set(saved)
	err := parallelDo(expiredCount, fixtureWriter, func(i int) error {
		_, err := fx.s.Create(bg, fmt.Sprintf("exp-%04d", i), client)
		return err
	})
	if err != nil {
		return err
	}
	fx.expired = true
	return nil
}

func closeScaleFixtures() {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	for n, fx := range scaleFixes {
		fx.s.Close()
		delete(scaleFixes, n)
	}
}

// BenchmarkListByUser lists the five sessions of one user while the store
// holds 1k, 100k and 1M sessions in all (-short: 1k, 10k, 50k). It reads
// the user index and five records, so it should barely depend on the total.
func BenchmarkListByUser(b *testing.B) {
	for _, n := range listSizes() {
		b.Run(fmt.Sprintf("total=%d", n), func(b *testing.B) {
			fx := getScaleFixture(b, n)
			fx.clock.Set(aliveAt)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for range b.N {
				list, err := fx.s.ListByUser(bg, targetUser)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) != targetCount {
					b.Fatalf("listed %d sessions, want %d", len(list), targetCount)
				}
				sink.Add(int64(len(list[0].ID)))
			}
			b.StopTimer()
			cpu.report(b)
		})
	}
}

// BenchmarkClearExpired removes 1k expired sessions from a store holding
// 10k and 1M sessions in all (-short: 10k, 50k). Each iteration needs 1k
// freshly expired sessions: they are re-created with the timer stopped (on
// the fake clock at t0, from many goroutines), then the clock moves to
// t0+2h+1s and only ClearExpired is timed: one durable transaction that
// walks the expiry index and deletes 1k records with their index entries.
// Every timed call must remove exactly 1k sessions. written-B/op is what
// the process wrote to the file per call (Linux).
func BenchmarkClearExpired(b *testing.B) {
	for _, n := range clearSizes() {
		b.Run(fmt.Sprintf("total=%d", n), func(b *testing.B) {
			fx := getScaleFixture(b, n)
			if !fx.expired {
				b.Fatalf("fixture of %d sessions has no expired block", n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.StopTimer() // only ClearExpired itself is timed
			var cpu cpuMeter
			var written int64 // by the process while timed, -1 if unknown
			for range b.N {
				if err := fx.createExpired(); err != nil {
					b.Fatal(err)
				}
				fx.clock.Set(expiredAt)
				w0 := writtenBytes()
				cpu.resume()
				b.StartTimer()
				removed, err := fx.s.ClearExpired(bg)
				b.StopTimer()
				cpu.pause()
				if w1 := writtenBytes(); w0 >= 0 && w1 >= 0 && written >= 0 {
					written += w1 - w0
				} else {
					written = -1
				}
				if err != nil {
					b.Fatal(err)
				}
				fx.expired = false
				if removed != expiredCount {
					b.Fatalf("removed %d sessions, want %d", removed, expiredCount)
				}
			}
			cpu.report(b)
			if written >= 0 {
				b.ReportMetric(float64(written)/float64(b.N), "written-B/op")
			}
			// Leave the fixture whole for whoever uses it next.
			if err := fx.createExpired(); err != nil {
				b.Fatal(err)
			}
			fx.clock.Set(aliveAt)
		})
	}
}
