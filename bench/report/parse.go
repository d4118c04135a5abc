package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Output is what one `go test -bench` run printed.
type Output struct {
	// Header holds the goos, goarch, pkg and cpu lines.
	Header map[string]string
	// Benchmarks in the order they first appeared. With -count above one a
	// benchmark has several runs.
	Benchmarks []*Benchmark
	// Notes are the lines the suite prints about itself ("fixture: ...").
	Notes []string
}

// Benchmark is one benchmark's results.
type Benchmark struct {
	Name  string // without the "Benchmark" prefix and the -GOMAXPROCS suffix
	Procs int    // GOMAXPROCS from the suffix; 1 when there is none
	Runs  []Run
}

// Run is one result line: its iteration count and its metrics by unit
// ("ns/op", "B/op", "allocs/op", custom ones like "creates/s").
type Run struct {
	N       int
	Metrics map[string]float64
}

// Get returns the benchmark named name, or nil.
func (o *Output) Get(name string) *Benchmark {
	for _, b := range o.Benchmarks {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Value returns the median of the metric over the runs of the benchmark
// named name, and whether there was any.
func (o *Output) Value(name, unit string) (float64, bool) {
	b := o.Get(name)
	if b == nil {
		return 0, false
	}
	return b.Median(unit)
}

// Median returns the median of unit over b's runs.
func (b *Benchmark) Median(unit string) (float64, bool) {
	var vs []float64
	for _, r := range b.Runs {
		if v, ok := r.Metrics[unit]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	sort.Float64s(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// Units returns every metric unit b reported, in a stable order: the
// standard ones first, then the custom ones sorted.
func (b *Benchmark) Units() []string {
	seen := map[string]bool{}
	for _, r := range b.Runs {
		for u := range r.Metrics {
			seen[u] = true
		}
	}
	var units []string
	for _, u := range standardUnits {
		if seen[u] {
			units = append(units, u)
			delete(seen, u)
		}
	}
	var custom []string
	for u := range seen {
		custom = append(custom, u)
	}
	slices.Sort(custom)
	return append(units, custom...)
}

var standardUnits = []string{"ns/op", "cpu-ns/op", "B/op", "allocs/op"}

// Parse reads the output of `go test -bench` (any other lines, such as
// test logs, PASS and ok, are skipped) and fails only when a benchmark
// line is malformed or nothing was found.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{Header: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), " \r")
		switch {
		case strings.HasPrefix(text, "Benchmark"):
			if err := out.parseBenchmark(text); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
		case strings.HasPrefix(text, "fixture: "):
			out.Notes = append(out.Notes, strings.TrimPrefix(text, "fixture: "))
		default:
			for _, key := range []string{"goos", "goarch", "pkg", "cpu"} {
				if v, ok := strings.CutPrefix(text, key+": "); ok {
					out.Header[key] = strings.TrimSpace(v)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out.Benchmarks) == 0 {
		return nil, fmt.Errorf("no benchmark results in the output")
	}
	return out, nil
}

func (o *Output) parseBenchmark(text string) error {
	fields := strings.Fields(text)
	if len(fields) == 1 {
		// A benchmark's name printed alone: the result follows on a later
		// line when the benchmark logged something, or it failed.
		return nil
	}
	if len(fields) < 4 || len(fields)%2 != 0 {
		return fmt.Errorf("malformed benchmark line %q", text)
	}
	name, procs := splitProcs(strings.TrimPrefix(fields[0], "Benchmark"))
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		return fmt.Errorf("iterations in %q: %w", text, err)
	}
	run := Run{N: n, Metrics: map[string]float64{}}
	for i := 2; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return fmt.Errorf("value %q in %q: %w", fields[i], text, err)
		}
		run.Metrics[fields[i+1]] = v
	}
	b := o.Get(name)
	if b == nil {
		b = &Benchmark{Name: name, Procs: procs}
		o.Benchmarks = append(o.Benchmarks, b)
	}
	b.Runs = append(b.Runs, run)
	return nil
}

// splitProcs splits the "-N" GOMAXPROCS suffix off a benchmark name.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil || p <= 0 {
		return name, 1
	}
	return name[:i], p
}

// Sizes returns the sizes N of the benchmarks named prefix+"total=N",
// ascending.
func (o *Output) Sizes(prefix string) []int {
	var sizes []int
	for _, b := range o.Benchmarks {
		if v, ok := strings.CutPrefix(b.Name, prefix+"total="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				sizes = append(sizes, n)
			}
		}
	}
	slices.Sort(sizes)
	return slices.Compact(sizes)
}
