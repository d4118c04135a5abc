// Command report runs the benchmark suite in bench/ and writes its results
// as bench/results.md (the targets of the issues with PASS/MISS, bbolt,
// PostgreSQL and Redis side by side, then every benchmark) and
// bench/load-latency.svg (Load latency per mode and backend). The
// PostgreSQL and Redis benchmarks need their servers installed (see
// internal/pgtest, internal/redistest); without them they skip and their
// targets show as missing.
//
// Usage, from anywhere in the module:
//
//	go run ./bench/report            # full sizes (1M sessions), ~10 minutes
//	go run ./bench/report -short     # small sizes, about a minute
//	go run ./bench/report -count 3   # median of three runs of each benchmark
//	go run ./bench/report -in out.txt  # report on a saved `go test -bench` output
//
// The raw output of the run is kept in <out>/out/bench-output.txt.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	short := flag.Bool("short", false, "run the suite with -short (smaller fixtures)")
	count := flag.Int("count", 1, "run each benchmark this many times; the report uses the median")
	benchtime := flag.String("benchtime", "", "passed to go test -benchtime when set")
	bench := flag.String("bench", ".", "passed to go test -bench")
	outDir := flag.String("out", "", "directory for results.md and load-latency.svg (default: the module's bench/)")
	in := flag.String("in", "", "read this saved go test -bench output instead of running the suite")
	flag.Parse()
	if err := run(*short, *count, *benchtime, *bench, *outDir, *in); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run is the command's one pass, top to bottom: find the module, run the
// suite (or read a saved output), parse it, and write the report and the
// chart. Its length is that sequence of steps, each a few lines, which
// reads best in order.
func run(short bool, count int, benchtime, bench, outDir, in string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if outDir == "" {
		outDir = filepath.Join(root, "bench")
	}
	args := []string{"test", "./bench", "-run", "^$", "-bench", bench, "-benchmem", "-timeout", "60m", "-count", strconv.Itoa(count)}
	if short {
		args = append(args, "-short")
	}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	run := RunInfo{Command: "go " + strings.Join(args, " "), Count: count, Date: time.Now()}

	var raw []byte
	if in != "" {
		if raw, err = os.ReadFile(in); err != nil {
			return err
		}
		run.Command = "(saved output " + filepath.Base(in) + ")"
		if fi, err := os.Stat(in); err == nil {
			run.Date = fi.ModTime()
		}
	} else {
		fmt.Fprintf(os.Stderr, "report: %s\n", run.Command)
		var buf bytes.Buffer
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Stdout = io.MultiWriter(os.Stdout, &buf)
		cmd.Stderr = os.Stderr
		start := time.Now()
		err := cmd.Run()
		run.Duration = time.Since(start)
		raw = buf.Bytes()
		if dir := filepath.Join(outDir, "out"); os.MkdirAll(dir, 0o755) == nil {
			os.WriteFile(filepath.Join(dir, "bench-output.txt"), raw, 0o644)
		}
		if err != nil {
			return fmt.Errorf("go test: %w", err)
		}
	}

	out, err := Parse(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m := Machine()
	ratios := Measure(out, Targets(out))

	var md bytes.Buffer
	WriteMarkdown(&md, out, ratios, m, run)
	if err := os.WriteFile(filepath.Join(outDir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, "usersessions: Load latency per mode", m.Summary(out, run), LoadBars(out)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "load-latency.svg"), svg.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report: wrote %s and %s", filepath.Join(outDir, "results.md"), filepath.Join(outDir, "load-latency.svg"))
	if run.Duration > 0 {
		fmt.Fprintf(os.Stderr, " (suite ran %v)", run.Duration.Round(time.Second))
	}
	fmt.Fprintln(os.Stderr)
	for _, r := range ratios {
		fmt.Fprintf(os.Stderr, "  %-72s %8s  %s\n", r.What, r.Measured(), r.Status())
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: run report from the usersessions module")
	}
	return filepath.Dir(gomod), nil
}

// RunInfo describes how the results were produced.
type RunInfo struct {
	Command  string
	Count    int
	Date     time.Time
	Duration time.Duration // 0 when reading a saved output
}

// MachineInfo describes the machine the report runs on.
type MachineInfo struct {
	OS, Arch  string
	CPU       string // model name from /proc/cpuinfo, if any
	Cores     int
	GoVersion string
}

// Machine returns this machine's description.
func Machine() MachineInfo {
	return MachineInfo{
		OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procs returns the GOMAXPROCS of the run (from the benchmark names).
func procs(o *Output) int {
	for _, b := range o.Benchmarks {
		return b.Procs
	}
	return 0
}

// Summary is the one-line description of machine and run, for the chart.
func (m MachineInfo) Summary(o *Output, run RunInfo) string {
	cpu := m.CPU
	if cpu == "" {
		cpu = o.Header["cpu"]
	}
	return fmt.Sprintf("%s/%s, %s, %d cores, GOMAXPROCS=%d, %s, %s",
		m.OS, m.Arch, cpu, m.Cores, procs(o), m.GoVersion, run.Date.UTC().Format("2006-01-02"))
}

// loadModes are the modes of BenchmarkLoad, fastest layer first, with their
// labels in the chart.
var loadModes = []struct{ name, label string }{
	{"ristretto", "raw ristretto Get"},
	{"cached", "Load, cached"},
	{"pgstore-cached", "Load on pgstore, cached"},
	{"bbolt", "raw bbolt View+Get"},
	{"uncached", "Load, uncached"},
	{"scs-bbolt", "scs Load on bbolt"},
	{"pgx", "raw pgx SELECT"},
	{"pgstore-uncached", "Load on pgstore, uncached"},
	{"scs-postgres", "scs Load on PostgreSQL"},
	{"redisstore-cached", "Load on redisstore, cached"},
	{"rueidis", "raw rueidis HGETALL"},
	{"redisstore-uncached", "Load on redisstore, uncached"},
	{"scs-redis", "scs Load on Redis"},
}

// LoadBars returns the chart's bars: Load ns/op per mode, serial and
// parallel, then cached Load+Touch.
func LoadBars(o *Output) []Bar {
	var bars []Bar
	add := func(name, label, series string) {
		if v, ok := o.Value(name, "ns/op"); ok && v > 0 {
			bars = append(bars, Bar{Label: label + " (" + series + ")", Value: v, Series: series})
		}
	}
	for _, m := range loadModes {
		for _, s := range []string{"serial", "parallel"} {
			add("Load/"+m.name+"/"+s, m.label, s)
		}
	}
	for _, s := range []string{"serial", "parallel"} {
		add("LoadTouch/"+s, "Load+Touch, cached", s)
	}
	return bars
}

// WriteMarkdown writes the report: machine and run, the ratio table, the
// table of every benchmark, and the suite's notes about its fixtures.
func WriteMarkdown(w io.Writer, o *Output, ratios []Ratio, m MachineInfo, run RunInfo) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# usersessions benchmark results\n\n")
	cpu := m.CPU
	if hc := o.Header["cpu"]; hc != "" && hc != cpu {
		if cpu != "" {
			cpu += " (Go reports “" + hc + "”)"
		} else {
			cpu = hc
		}
	}
	p("- Date: %s\n", run.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("- Machine: %s/%s, %s, %d cores, GOMAXPROCS=%d\n", m.OS, m.Arch, cpu, m.Cores, procs(o))
	p("- Go: %s\n", m.GoVersion)
	p("- Command: `%s`", run.Command)
	if run.Duration > 0 {
		p(" (took %v)", run.Duration.Round(time.Second))
	}
	p("\n")
	if run.Count > 1 {
		p("- Each value is the median of %d runs.\n", run.Count)
	}
	p("\n## Targets\n\n")
	p("Ratios of ns/op (wall time per operation) from the same run; Create compares creates/s. ")
	p("The CPU column is the same ratio from cpu-ns/op, the process's CPU time per operation, ")
	p("which does not grow when other processes take the cores. ")
	p("The pgstore rows run on a throwaway PostgreSQL cluster on the same machine (unix socket, fsync on), ")
	p("the redisstore rows on a throwaway redis-server (unix socket, appendfsync always); ")
	p("the revoke rows are not ratios but latencies, judged in milliseconds.\n\n")
	p("| what | must | aim | measured | from | CPU time | result |\n|---|---|---|---|---|---|---|\n")
	for _, r := range ratios {
		p("| %s | %s | %s | %s | %s | %s | %s |\n", r.What, r.Bound(r.Must), r.Bound(r.Aim), r.Measured(), r.From(), fmtRatio(r.CPU), r.Status())
	}
	p("\n## Benchmarks\n\n")
	p("| benchmark | ns/op | cpu-ns/op | B/op | allocs/op | other |\n|---|---:|---:|---:|---:|---|\n")
	for _, b := range o.Benchmarks {
		cell := func(unit string) string {
			v, ok := b.Median(unit)
			if !ok {
				return ""
			}
			return fmtValue(v)
		}
		var other []string
		for _, u := range b.Units() {
			switch u {
			case "ns/op", "cpu-ns/op", "B/op", "allocs/op":
				continue
			}
			v, _ := b.Median(u)
			other = append(other, fmtValue(v)+" "+u)
		}
		p("| %s | %s | %s | %s | %s | %s |\n", b.Name, cell("ns/op"), cell("cpu-ns/op"), cell("B/op"), cell("allocs/op"), strings.Join(other, ", "))
	}
	if len(o.Notes) > 0 {
		p("\nFixtures (built once per process, not timed):\n\n")
		for _, n := range o.Notes {
			p("- %s\n", n)
		}
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// fmtValue formats a metric: integers and values from 100 up as integers,
// others with three significant digits.
func fmtValue(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
