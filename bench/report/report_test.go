package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample is real output of the suite (go test ./bench -bench . -benchmem
// -short), trimmed, with one benchmark run twice (-count 2) and a log line.
const sample = `fixture: built load fixture (1024 sessions, 240-byte records, scs 214 bytes) in 544ms
goos: linux
goarch: amd64
pkg: github.com/usersessions/usersessions/bench
cpu: Oxide Virtual Turin-like Processor             
BenchmarkHTTP/usersessions/serial-2  	   88498	      3841 ns/op	      1650 cpu-ns/op	         0 misses/op	     867 B/op	       7 allocs/op
BenchmarkHTTP/scs-bbolt/serial-2              	   10000	    107439 ns/op	   10110 B/op	     215 allocs/op
BenchmarkLoad/ristretto/serial-2              	 4506679	       107.8 ns/op	        90.00 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkLoad/ristretto/parallel-2            	 3337725	       130.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkLoad/cached/serial-2                 	  913165	       553.6 ns/op	       270.0 cpu-ns/op	         0 misses/op	     193 B/op	       1 allocs/op
BenchmarkLoad/cached/parallel-2               	 1000000	       657.5 ns/op	         0 misses/op	     192 B/op	       1 allocs/op
BenchmarkLoad/uncached/serial-2               	   39926	     11005 ns/op	    1272 B/op	      13 allocs/op
BenchmarkLoad/uncached/serial-2               	   41000	      9005 ns/op	    1272 B/op	      13 allocs/op
BenchmarkLoad/uncached/parallel-2             	  122439	      5180 ns/op	    1272 B/op	      13 allocs/op
BenchmarkLoad/bbolt/serial-2                  	  182065	      1740 ns/op	     704 B/op	       8 allocs/op
BenchmarkLoad/bbolt/parallel-2                	  254932	      2700 ns/op	     704 B/op	       8 allocs/op
BenchmarkLoad/scs-bbolt/serial-2              	   10000	     35082 ns/op	    9496 B/op	     208 allocs/op
BenchmarkLoad/scs-bbolt/parallel-2            	   10000	     64968 ns/op	    9496 B/op	     208 allocs/op
BenchmarkLoadTouch/serial-2                   	  514623	       918.2 ns/op	         0 misses/op	     194 B/op	       1 allocs/op
BenchmarkLoadTouch/parallel-2                 	  654068	      1174 ns/op	         0 misses/op	     192 B/op	       1 allocs/op
BenchmarkListByUser/total=1000
fixture: built 1000 sessions in 120ms (8333 creates/s)
BenchmarkListByUser/total=1000-2         	   20000	     15000 ns/op	    4664 B/op	      54 allocs/op
BenchmarkListByUser/total=50000-2         	   10000	     21888 ns/op	      8887 cpu-ns/op	    4664 B/op	      54 allocs/op
BenchmarkClearExpired/total=10000-2         	   30	     20000000 ns/op	    4664 B/op	      54 allocs/op
BenchmarkClearExpired/total=50000-2         	   20	     30000000 ns/op	    4664 B/op	      54 allocs/op
BenchmarkCreate/writers=1-2         	    2215	    534899 ns/op	         1.000 creates/commit	      1870 creates/s	   51319 B/op	     132 allocs/op
BenchmarkCreate/writers=8-2         	    7119	    196924 ns/op	         3.986 creates/commit	      5078 creates/s	   21681 B/op	      67 allocs/op
BenchmarkCreate/writers=64-2        	   12900	     92816 ns/op	        32.33 creates/commit	     10774 creates/s	    9904 B/op	      45 allocs/op
    scale_test.go:42: some log line
PASS
ok  	github.com/usersessions/usersessions/bench	12.423s
`

func parseSample(t *testing.T) *Output {
	t.Helper()
	o, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestParse(t *testing.T) {
	o := parseSample(t)
	if got := o.Header["cpu"]; got != "Oxide Virtual Turin-like Processor" {
		t.Errorf("cpu = %q", got)
	}
	if o.Header["goos"] != "linux" || o.Header["goarch"] != "amd64" {
		t.Errorf("header = %v", o.Header)
	}
	if len(o.Benchmarks) != 21 {
		t.Errorf("parsed %d benchmarks, want 21", len(o.Benchmarks))
	}
	b := o.Get("Load/cached/serial")
	if b == nil {
		t.Fatal("Load/cached/serial missing (suffix -2 not split off?)")
	}
	if b.Procs != 2 || len(b.Runs) != 1 || b.Runs[0].N != 913165 {
		t.Errorf("Load/cached/serial = %+v", b)
	}
	for unit, want := range map[string]float64{"ns/op": 553.6, "cpu-ns/op": 270, "misses/op": 0, "B/op": 193, "allocs/op": 1} {
		if got, ok := b.Median(unit); !ok || got != want {
			t.Errorf("%s = %v, %v; want %v", unit, got, ok, want)
		}
	}
	if got := b.Units(); strings.Join(got, ",") != "ns/op,cpu-ns/op,B/op,allocs/op,misses/op" {
		t.Errorf("units = %v", got)
	}
	// Two runs: the median is their mean.
	if got, _ := o.Value("Load/uncached/serial", "ns/op"); got != 10005 {
		t.Errorf("median of uncached runs = %v, want 10005", got)
	}
	if got, _ := o.Value("Create/writers=64", "creates/s"); got != 10774 {
		t.Errorf("creates/s = %v", got)
	}
	if got, _ := o.Value("Create/writers=64", "creates/commit"); got != 32.33 {
		t.Errorf("creates/commit = %v", got)
	}
	// A name printed alone before a log line, then its result line.
	if got, _ := o.Value("ListByUser/total=1000", "ns/op"); got != 15000 {
		t.Errorf("ListByUser/total=1000 = %v", got)
	}
	if len(o.Notes) != 2 || !strings.HasPrefix(o.Notes[1], "built 1000 sessions") {
		t.Errorf("notes = %q", o.Notes)
	}
	if got := o.Sizes("ListByUser/"); len(got) != 2 || got[0] != 1000 || got[1] != 50000 {
		t.Errorf("sizes = %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse(strings.NewReader("PASS\nok x 1s\n")); err == nil {
		t.Error("no benchmarks: want an error")
	}
	if _, err := Parse(strings.NewReader("BenchmarkX-2 100 12 ns/op 7\n")); err == nil {
		t.Error("odd field count: want an error")
	}
	if _, err := Parse(strings.NewReader("BenchmarkX-2 many 12 ns/op\n")); err == nil {
		t.Error("bad iteration count: want an error")
	}
}

func TestSplitProcs(t *testing.T) {
	for in, want := range map[string]struct {
		name  string
		procs int
	}{
		"Load/scs-bbolt/serial-2": {"Load/scs-bbolt/serial", 2},
		"Create/writers=64-16":    {"Create/writers=64", 16},
		"Load/scs-bbolt/serial":   {"Load/scs-bbolt/serial", 1},
		"Create/writers=64":       {"Create/writers=64", 1},
	} {
		name, procs := splitProcs(in)
		if name != want.name || procs != want.procs {
			t.Errorf("splitProcs(%q) = %q, %d", in, name, procs)
		}
	}
}

func TestRatios(t *testing.T) {
	o := parseSample(t)
	rs := Measure(o, Targets(o))
	byWhat := map[string]Ratio{}
	for _, r := range rs {
		byWhat[r.What] = r
	}
	check := func(what string, want float64, status string) {
		t.Helper()
		r, ok := byWhat[what]
		if !ok {
			t.Fatalf("no ratio %q", what)
		}
		if math.Abs(r.Value-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, r.Value, want)
		}
		if r.Status() != status {
			t.Errorf("%s: status %q, want %q", what, r.Status(), status)
		}
	}
	check("cached Load ÷ raw ristretto Get (serial)", 553.6/107.8, "MISS")
	check("uncached Load ÷ raw bbolt View+Get (serial)", 10005/1740.0, "MISS")
	check("uncached Load ÷ cached Load (serial)", 10005/553.6, "PASS, aim met")
	check("scs-on-bbolt Load ÷ cached Load (serial)", 35082/553.6, "PASS, aim met")
	check("scs-on-bbolt Load ÷ cached Load (parallel)", 64968/657.5, "PASS, aim met")
	check("Load+Touch ÷ Load, cached (serial)", 918.2/553.6, "MISS")
	check("Create throughput, 64 writers ÷ 1 writer", 10774/1870.0, "MISS")
	check("ListByUser at 50k ÷ at 1k total sessions", 21888/15000.0, "PASS")
	check("ClearExpired(1k) at 50k ÷ at 10k total", 1.5, "PASS, aim met")
	check("HTTP: scs LoadAndSave ÷ httpx middleware (serial)", 107439/3841.0, "info")

	if r := byWhat["cached Load ÷ raw ristretto Get (serial)"]; math.Abs(r.CPU-3) > 1e-9 {
		t.Errorf("CPU ratio = %v, want 270/90 = 3", r.CPU)
	}
	if r := byWhat["cached Load ÷ raw ristretto Get (parallel)"]; !math.IsNaN(r.CPU) {
		t.Errorf("CPU ratio without cpu-ns/op = %v, want NaN", r.CPU)
	}
	if r := byWhat["Create throughput, 64 writers ÷ 1 writer"]; r.Bound(r.Must) != "≥ 10" || r.Bound(r.Aim) != "≥ 30" {
		t.Errorf("bounds %q %q", r.Bound(r.Must), r.Bound(r.Aim))
	}
	// A missing benchmark gives a missing ratio, not a wrong one.
	r := Measure(o, []Target{{What: "x", Num: "Nope", Den: "Load/cached/serial", Unit: "ns/op", Must: 1, Aim: 1}})[0]
	if r.Status() != "missing" {
		t.Errorf("missing benchmark: status %q", r.Status())
	}
}

// svgDoc is the part of the chart the test reads back.
type svgDoc struct {
	XMLName xml.Name  `xml:"svg"`
	Width   string    `xml:"width,attr"`
	Height  string    `xml:"height,attr"`
	Rects   []svgRect `xml:"rect"`
	Texts   []string  `xml:"text"`
}

type svgRect struct {
	Width string `xml:"width,attr"`
	Title string `xml:"title"`
}

func TestWriteSVG(t *testing.T) {
	o := parseSample(t)
	bars := LoadBars(o)
	if len(bars) != 12 {
		t.Fatalf("%d bars, want 12 (5 modes and Load+Touch, serial and parallel)", len(bars))
	}
	if bars[4].Label != "raw bbolt View+Get (serial)" || bars[4].Value != 1740 {
		t.Errorf("bar 4 = %+v", bars[4])
	}
	if bars[2].Label != "Load, cached (serial)" || bars[2].Value != 553.6 || bars[2].Series != "serial" {
		t.Errorf("bar 2 = %+v", bars[2])
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, "title <&>", "linux/amd64", bars); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML all the way through.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, buf.String())
		}
	}
	var doc svgDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	widths := map[string]float64{}
	for _, r := range doc.Rects {
		if r.Title == "" {
			continue // background and legend
		}
		label, _, _ := strings.Cut(r.Title, ": ")
		w, err := strconv.ParseFloat(r.Width, 64)
		if err != nil {
			t.Fatalf("bar %q width %q", r.Title, r.Width)
		}
		widths[label] = w
	}
	if len(widths) != len(bars) {
		t.Fatalf("%d bars drawn, want %d", len(widths), len(bars))
	}
	// Log scale over the decades 100 ns .. 100 µs (the values span 107.8
	// to 64968): each bar's width is its position on that axis.
	for _, b := range bars {
		want := (math.Log10(b.Value) - 2) / 3 * plotWidth
		if got := widths[b.Label]; math.Abs(got-want) > 0.1 {
			t.Errorf("bar %q width %v, want %.1f", b.Label, got, want)
		}
	}
	if !(widths["scs Load on bbolt (serial)"] > widths["Load, uncached (serial)"] &&
		widths["Load, uncached (serial)"] > widths["Load, cached (serial)"] &&
		widths["Load, cached (serial)"] > widths["raw ristretto Get (serial)"]) {
		t.Errorf("bar widths out of order: %v", widths)
	}
	texts := strings.Join(doc.Texts, "|")
	for _, want := range []string{"title <&>", "100 ns", "1 µs", "10 µs", "100 µs", "554 ns", "35.1 µs", "Load, cached (serial)", "parallel"} {
		if !strings.Contains(texts, want) {
			t.Errorf("chart has no text %q; texts: %s", want, texts)
		}
	}
	if err := WriteSVG(io.Discard, "t", "", nil); err == nil {
		t.Error("no bars: want an error")
	}
	if err := WriteSVG(io.Discard, "t", "", []Bar{{Label: "zero", Value: 0}}); err == nil {
		t.Error("zero value: want an error")
	}
}

func TestWriteMarkdown(t *testing.T) {
	o := parseSample(t)
	var buf bytes.Buffer
	m := MachineInfo{OS: "linux", Arch: "amd64", CPU: "AMD EPYC", Cores: 2, GoVersion: "go1.26"}
	run := RunInfo{Command: "go test ./bench", Count: 1, Date: time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC), Duration: 90 * time.Second}
	WriteMarkdown(&buf, o, Measure(o, Targets(o)), m, run)
	md := buf.String()
	for _, want := range []string{
		"- Date: 2026-11-22 21:00 UTC",
		"linux/amd64, AMD EPYC (Go reports “Oxide Virtual Turin-like Processor”), 2 cores, GOMAXPROCS=2",
		"(took 1m30s)",
		"| cached Load ÷ raw ristretto Get (serial) | ≤ 4 | ≤ 2 | 5.14 | 554 ns / 108 ns | 3.00 | MISS |",
		"| Create throughput, 64 writers ÷ 1 writer | ≥ 10 | ≥ 30 | 5.76 | 10774 creates/s / 1870 creates/s | — | MISS |",
		"| Load/cached/serial | 554 | 270 | 193 | 1 | 0 misses/op |",
		"| Create/writers=64 | 92816 |  | 9904 | 45 | 32.3 creates/commit, 10774 creates/s |",
		"- built 1000 sessions in 120ms (8333 creates/s)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// pgSample is output of the PostgreSQL benchmarks (go test ./bench -bench
// 'Load$|Create|RevokeToRefused' -short), trimmed to what the pgstore
// targets read, with the bbolt cached Load beside them.
const pgSample = `fixture: built PostgreSQL load fixture (1024 sessions in pgstore, 300-byte rows; the same scs sessions in postgresstore) in 645ms
cpu: AMD EPYC
BenchmarkLoad/cached/serial-2  	 2000000	       160.0 ns/op	       170.0 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/cached/parallel-2  	 2000000	       200.0 ns/op	       0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/pgstore-cached/serial-2  	 1982089	       174.7 ns/op	       175.8 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/pgstore-cached/parallel-2         	 2761509	       174.9 ns/op	       204.4 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/pgstore-uncached/serial-2         	    8992	     45256 ns/op	     34667 cpu-ns/op	    5171 B/op	      60 allocs/op
BenchmarkLoad/pgstore-uncached/parallel-2       	   10296	     31223 ns/op	     25543 cpu-ns/op	    5172 B/op	      60 allocs/op
BenchmarkLoad/pgx/serial-2                      	    7251	     43542 ns/op	     23788 cpu-ns/op	    1340 B/op	      23 allocs/op
BenchmarkLoad/pgx/parallel-2                    	   15747	     22874 ns/op	     15275 cpu-ns/op	    1340 B/op	      23 allocs/op
BenchmarkLoad/scs-postgres/serial-2             	    8037	     48919 ns/op	     46657 cpu-ns/op	   10031 B/op	     219 allocs/op
BenchmarkLoad/scs-postgres/parallel-2           	    8163	     45037 ns/op	     37717 cpu-ns/op	   10031 B/op	     219 allocs/op
BenchmarkRevokeToRefused-2                      	     300	    785563 ns/op	         2.157 max-ms	         0.1057 p50-ms	         1.242 p99-ms	   12579 B/op	     164 allocs/op
BenchmarkCreate/pgstore/writers=1-2             	     252	   2363919 ns/op	       423.0 creates/s	    6296 B/op	      69 allocs/op
BenchmarkCreate/pgstore/writers=64-2            	    7488	     44723 ns/op	     22360 creates/s	    4027 B/op	      26 allocs/op
`

// targetChecker parses sample and returns a check of one of its targets:
// its value (NaN: missing) and status.
func targetChecker(t *testing.T, sample string) (*Output, func(what string, want float64, status string) Ratio) {
	o, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	byWhat := map[string]Ratio{}
	for _, r := range Measure(o, Targets(o)) {
		byWhat[r.What] = r
	}
	return o, func(what string, want float64, status string) Ratio {
		t.Helper()
		r, ok := byWhat[what]
		if !ok {
			t.Fatalf("no target %q", what)
		}
		if math.Abs(r.Value-want) > 1e-9 && !(math.IsNaN(want) && math.IsNaN(r.Value)) {
			t.Errorf("%s = %v, want %v", what, r.Value, want)
		}
		if r.Status() != status {
			t.Errorf("%s: status %q, want %q", what, r.Status(), status)
		}
		return r
	}
}

func TestPGTargets(t *testing.T) {
	o, check := targetChecker(t, pgSample)
	check("cached Load on pgstore ÷ cached Load on bbolt (serial)", 174.7/160, "PASS, aim met")
	check("cached Load on pgstore ÷ cached Load on bbolt (parallel)", 174.9/200, "PASS, aim met")
	check("uncached Load on pgstore ÷ raw pgx SELECT by primary key (serial)", 45256/43542.0, "PASS, aim met")
	check("uncached Load on pgstore ÷ raw pgx SELECT by primary key (parallel)", 31223/22874.0, "PASS")
	check("scs-on-PostgreSQL Load ÷ cached Load on pgstore (serial)", 48919/174.7, "PASS, aim met")
	check("Create throughput on pgstore, 64 writers ÷ 1 writer", 22360/423.0, "PASS, aim met")
	// The bbolt targets of a run without their benchmarks are missing.
	check("Create throughput, 64 writers ÷ 1 writer", math.NaN(), "missing")

	// The absolute target: the p99 itself, in ms, with no CPU ratio.
	r := check("pgstore: revoke on A → refused on B, p99", 1.242, "PASS")
	if !r.Absolute() || !math.IsNaN(r.CPU) || !math.IsNaN(r.DenV) {
		t.Errorf("absolute target measured as %+v", r)
	}
	if r.Bound(r.Must) != "≤ 5 ms" || r.Bound(r.Aim) != "≤ 1 ms" || r.Measured() != "1.24 ms" || r.From() != "p99-ms of RevokeToRefused" {
		t.Errorf("absolute target shown as %q %q %q %q", r.Bound(r.Must), r.Bound(r.Aim), r.Measured(), r.From())
	}
	abs := Target{What: "p99", Num: "RevokeToRefused", Unit: "p99-ms", Must: 5, Aim: 1, BoundUnit: "ms"}
	for _, c := range []struct {
		p99    string
		status string
	}{{"0.8", "PASS, aim met"}, {"1", "PASS, aim met"}, {"5", "PASS"}, {"5.1", "MISS"}} {
		o, err := Parse(strings.NewReader("BenchmarkRevokeToRefused-2 100 1000 ns/op " + c.p99 + " p99-ms\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := Measure(o, []Target{abs})[0].Status(); got != c.status {
			t.Errorf("p99 %s ms: status %q, want %q", c.p99, got, c.status)
		}
	}
	// Without the benchmark, or without its metric, the target is missing.
	for _, tg := range []Target{{What: "x", Num: "Nope", Unit: "p99-ms", Must: 5, Aim: 1, BoundUnit: "ms"}, {What: "y", Num: "RevokeToRefused", Unit: "p95-ms", Must: 5, Aim: 1}} {
		r := Measure(o, []Target{tg})[0]
		if r.Status() != "missing" || r.Measured() != "—" {
			t.Errorf("%s: status %q, measured %q; want missing", tg.What, r.Status(), r.Measured())
		}
	}

	var buf bytes.Buffer
	m := MachineInfo{OS: "linux", Arch: "amd64", CPU: "AMD EPYC", Cores: 2, GoVersion: "go1.26"}
	WriteMarkdown(&buf, o, Measure(o, Targets(o)), m, RunInfo{Command: "go test ./bench", Count: 1, Date: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)})
	md := buf.String()
	for _, want := range []string{
		"| pgstore: revoke on A → refused on B, p99 | ≤ 5 ms | ≤ 1 ms | 1.24 ms | p99-ms of RevokeToRefused | — | PASS |",
		"| cached Load on pgstore ÷ cached Load on bbolt (serial) | ≤ 1.3 | ≤ 1.1 | 1.09 | 175 ns / 160 ns | 1.03 | PASS, aim met |",
		"| Create throughput on pgstore, 64 writers ÷ 1 writer | ≥ 8 | ≥ 15 | 52.9 | 22360 creates/s / 423 creates/s | — | PASS, aim met |",
		"| RevokeToRefused | 785563 |  | 12579 | 164 | 2.16 max-ms, 0.106 p50-ms, 1.24 p99-ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	// The chart has the PostgreSQL modes beside the bbolt ones.
	var labels []string
	for _, b := range LoadBars(o) {
		labels = append(labels, b.Label)
	}
	want := []string{
		"Load, cached (serial)", "Load, cached (parallel)",
		"Load on pgstore, cached (serial)", "Load on pgstore, cached (parallel)",
		"raw pgx SELECT (serial)", "raw pgx SELECT (parallel)",
		"Load on pgstore, uncached (serial)", "Load on pgstore, uncached (parallel)",
		"scs Load on PostgreSQL (serial)", "scs Load on PostgreSQL (parallel)",
	}
	if strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Errorf("bars %q, want %q", labels, want)
	}
}

// redisSample is output of the Redis benchmarks (go test ./bench -bench
// 'Load$|Create|RevokeToRefusedRedis' -short), trimmed to what the
// redisstore targets read, with the bbolt cached Load beside them.
const redisSample = `fixture: built Redis load fixture (1024 sessions in redisstore; the same scs sessions in scs's redisstore; appendfsync always) in 1.185s
BenchmarkLoad/cached/serial-2     	  987399	       416.3 ns/op	       384.4 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/cached/parallel-2   	 1000000	       334.8 ns/op	       345.8 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/redisstore-cached/serial-2      	  685038	       450.2 ns/op	       425.0 cpu-ns/op	         0 misses/op	     225 B/op	       1 allocs/op
BenchmarkLoad/redisstore-cached/parallel-2    	 1000000	       728.4 ns/op	       359.8 cpu-ns/op	         0 misses/op	     224 B/op	       1 allocs/op
BenchmarkLoad/redisstore-uncached/serial-2    	    5592	     63306 ns/op	     33766 cpu-ns/op	    2736 B/op	      41 allocs/op
BenchmarkLoad/redisstore-uncached/parallel-2  	    3824	    100881 ns/op	     37818 cpu-ns/op	    2736 B/op	      41 allocs/op
BenchmarkLoad/rueidis/serial-2                	    9045	     48236 ns/op	     20895 cpu-ns/op	    1912 B/op	      27 allocs/op
BenchmarkLoad/rueidis/parallel-2              	   10000	     32067 ns/op	     20137 cpu-ns/op	    1912 B/op	      27 allocs/op
BenchmarkLoad/scs-redis/serial-2              	    9422	     51568 ns/op	     40172 cpu-ns/op	    9016 B/op	     203 allocs/op
BenchmarkLoad/scs-redis/parallel-2            	   10000	     49297 ns/op	     40432 cpu-ns/op	    9016 B/op	     203 allocs/op
BenchmarkRevokeToRefusedRedis-2               	     237	   1720268 ns/op	         4.080 max-ms	         0.1390 p50-ms	         2.947 p99-ms	    5773 B/op	     100 allocs/op
BenchmarkCreate/redisstore/writers=1-2        	     712	    564420 ns/op	      1772 creates/s	    5769 B/op	      69 allocs/op
BenchmarkCreate/redisstore/writers=64-2       	    3548	    105314 ns/op	      9495 creates/s	    5784 B/op	      69 allocs/op
`

func TestRedisTargets(t *testing.T) {
	o, check := targetChecker(t, redisSample)
	check("cached Load on redisstore ÷ cached Load on bbolt (serial)", 450.2/416.3, "PASS, aim met")
	r := check("cached Load on redisstore ÷ cached Load on bbolt (parallel)", 728.4/334.8, "MISS")
	if math.Abs(r.CPU-359.8/345.8) > 1e-9 {
		t.Errorf("CPU ratio %v", r.CPU)
	}
	check("uncached Load on redisstore ÷ raw rueidis read of the record (serial)", 63306/48236.0, "PASS")
	check("uncached Load on redisstore ÷ raw rueidis read of the record (parallel)", 100881/32067.0, "MISS")
	check("scs-on-Redis Load ÷ cached Load on redisstore (serial)", 51568/450.2, "PASS, aim met")
	check("scs-on-Redis Load ÷ cached Load on redisstore (parallel)", 49297/728.4, "PASS, aim met")
	check("Create throughput on redisstore, 64 writers ÷ 1 writer", 9495/1772.0, "MISS")
	check("redisstore: revoke on A → refused on B, p99", 2.947, "PASS")
	check("pgstore: revoke on A → refused on B, p99", math.NaN(), "missing")
	var labels []string
	for _, b := range LoadBars(o) {
		labels = append(labels, b.Label)
	}
	if want := "Load on redisstore, cached (serial)"; !strings.Contains(strings.Join(labels, "|"), want) {
		t.Errorf("bars %q lack %q", labels, want)
	}
}
