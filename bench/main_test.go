// Package bench holds the benchmark suite of usersessions: the store against
// the raw layers it is built on (a ristretto cache, a bbolt file, a pgx
// SELECT) and against alexedwards/scs on bbolt and on PostgreSQL, write
// throughput with group commit on both backends, how soon a revocation on
// one pgstore instance is refused by another, and how the indexed
// operations scale with the number of stored sessions.
//
// The PostgreSQL benchmarks (pg_test.go) start one throwaway cluster per
// test binary through internal/pgtest, and skip when PostgreSQL is not
// installed.
//
// Run it with
//
//	go test ./bench -run '^$' -bench . -benchmem         # full sizes (1M sessions)
//	go test ./bench -run '^$' -bench . -benchmem -short  # small sizes, benchtime 300ms: under a minute
//	go run ./bench/report [-short]                       # the same, written up as
//	                                                     # bench/results.md and bench/load-latency.svg
//
// Every comparison runs in one process, so the ratios hold on a noisy
// machine; cpu-ns/op (process CPU time per operation) is reported next to
// ns/op because it does not grow when other processes take the cores.
// Plain `go test ./bench` runs only a sanity test of the scs bbolt store,
// and starts no PostgreSQL.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

var bg = context.Background()

// tmpRoot holds the fixtures shared by the benchmarks of one process.
var tmpRoot string

// shortBenchtime is the default -benchtime under -short.
const shortBenchtime = "300ms"

func TestMain(m *testing.M) {
	// -short keeps the whole suite under a minute: smaller fixtures (see
	// scale_test.go) and, unless -benchtime is given, a shorter benchtime.
	flag.Parse()
	if testing.Short() {
		explicit := false
		flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.benchtime" })
		if !explicit {
			flag.Set("test.benchtime", shortBenchtime)
		}
	}
	dir, err := os.MkdirTemp("", "usersessions-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := runTests(m) // m.Run, then stops the PostgreSQL cluster if a benchmark started one
	closeRedis()
	closeScaleFixtures()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The client every fixture session and every request comes from: a
// realistic desktop browser, so records have their usual size.
const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

var (
	clientIP = netip.MustParseAddr("203.0.113.7")
	client   = usersessions.Client{IP: clientIP, UserAgent: userAgent}
)

var quiet = slog.New(slog.DiscardHandler)

// errMiss reports a lookup that should have found its entry.
var errMiss = errors.New("bench: entry not found")

// sink keeps results alive so the compiler cannot drop the work.
var sink atomic.Int64

// benchOptions are the Options every benchmark store uses: defaults, except
// no background cleanup and an activity flush interval longer than any
// benchmark, so that no background transaction lands inside a timed loop.
func benchOptions() *usersessions.Options {
	return &usersessions.Options{
		CleanupInterval: -1,
		TouchInterval:   time.Hour,
		Logger:          quiet,
	}
}

// serialAndParallel runs op as two sub-benchmarks: "serial" calls it b.N
// times from one goroutine, "parallel" from GOMAXPROCS goroutines with
// b.RunParallel (ns/op is then wall time divided by all operations). op gets
// a running index and returns a value derived from its result, which is kept
// in sink; an error fails the benchmark. When misses is not nil it is a
// counter of cache misses, reported per operation as a check that a "hit"
// benchmark measured hits.
func serialAndParallel(b *testing.B, op func(i int) (int, error), misses func() uint64) {
	serialAndParallelWith(b, func() func(int) (int, error) { return op }, misses)
}

// serialAndParallelWith is serialAndParallel with per-goroutine state: each
// goroutine calls newOp once for its own op.
func serialAndParallelWith(b *testing.B, newOp func() func(i int) (int, error), misses func() uint64) {
	report := func(b *testing.B, before uint64) {
		if misses != nil {
			b.ReportMetric(float64(misses()-before)/float64(b.N), "misses/op")
		}
	}
	var before uint64
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		if misses != nil {
			before = misses()
		}
		op := newOp()
		b.ResetTimer()
		cpu := startCPU()
		sum := 0
		for i := range b.N {
			n, err := op(i)
			if err != nil {
				b.Fatal(err)
			}
			sum += n
		}
		b.StopTimer()
		cpu.report(b)
		sink.Add(int64(sum))
		report(b, before)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		if misses != nil {
			before = misses()
		}
		b.ResetTimer()
		cpu := startCPU()
		var start atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			// Goroutines start far apart in the key space.
			i := int(start.Add(1)) * 7919
			op := newOp()
			sum := 0
			for pb.Next() {
				n, err := op(i)
				if err != nil {
					b.Error(err)
					return
				}
				sum += n
				i++
			}
			sink.Add(int64(sum))
		})
		b.StopTimer()
		cpu.report(b)
		report(b, before)
	})
}

// cpuMeter measures the CPU time of the whole process (every goroutine,
// the garbage collector and the libraries' background work included) over
// the timed part of a benchmark, and reports it as cpu-ns/op. Unlike ns/op
// it does not grow when other processes take the machine's cores, so its
// ratios are the stable ones on a busy machine.
type cpuMeter struct {
	used, start time.Duration
	running     bool
}

func startCPU() *cpuMeter {
	m := &cpuMeter{}
	m.resume()
	return m
}

func (m *cpuMeter) resume() {
	if !m.running {
		m.start, m.running = cpuTime(), true
	}
}

func (m *cpuMeter) pause() {
	if m.running {
		m.used += cpuTime() - m.start
		m.running = false
	}
}

func (m *cpuMeter) report(b *testing.B) {
	m.pause()
	if m.used > 0 && b.N > 0 {
		b.ReportMetric(float64(m.used)/float64(b.N), "cpu-ns/op")
	}
}

// parallelDo runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallelDo(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// writtenBytes returns how many bytes the process has passed to write
// system calls (wchar in /proc/self/io), or -1 where that is unknown.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
