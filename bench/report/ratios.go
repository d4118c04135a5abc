package main

import (
	"fmt"
	"math"
)

// A Target is one ratio of the issue: Num's metric divided by Den's, which
// must be at most (AtLeast false) or at least (AtLeast true) Must, and
// should reach Aim. A zero Must is informational: measured, not judged.
//
// A Target without Den is absolute: Num's metric itself is judged, such
// as a latency percentile the benchmark reports in "p99-ms", and BoundUnit
// ("ms") is shown after the bounds and the measured value.
type Target struct {
	What      string
	Num, Den  string // benchmark names; Den "" for an absolute target
	Unit      string // "ns/op", a throughput such as "creates/s", or an absolute target's metric
	AtLeast   bool
	Must      float64
	Aim       float64
	BoundUnit string // unit of an absolute target's bounds, "ms"
}

// Absolute reports whether t judges a value rather than a ratio.
func (t Target) Absolute() bool { return t.Den == "" }

// Ratio is a Target measured.
type Ratio struct {
	Target
	Value float64 // NaN when a benchmark is missing
	// NumV and DenV are the two measurements (NaN when missing).
	NumV, DenV float64
	// CPU is the same ratio computed from cpu-ns/op (process CPU time per
	// operation) when both sides report it, else NaN.
	CPU float64
}

// Status is "PASS, aim met", "PASS", "MISS", "info" or "missing".
func (r Ratio) Status() string {
	switch {
	case math.IsNaN(r.Value):
		return "missing"
	case r.Must == 0:
		return "info"
	case r.meets(r.Aim):
		return "PASS, aim met"
	case r.meets(r.Must):
		return "PASS"
	default:
		return "MISS"
	}
}

func (r Ratio) meets(bound float64) bool {
	if r.AtLeast {
		return r.Value >= bound
	}
	return r.Value <= bound
}

// Bound formats a bound with its direction, "≤ 4" or "≥ 10".
func (t Target) Bound(v float64) string {
	if t.Must == 0 {
		return "—"
	}
	if t.AtLeast {
		return "≥ " + trimFloat(v) + t.unitSuffix()
	}
	return "≤ " + trimFloat(v) + t.unitSuffix()
}

func (t Target) unitSuffix() string {
	if t.Absolute() && t.BoundUnit != "" {
		return " " + t.BoundUnit
	}
	return ""
}

// Measured formats the measured value: the ratio, or an absolute target's
// value with its unit ("0.84 ms").
func (r Ratio) Measured() string {
	if math.IsNaN(r.Value) {
		return fmtRatio(r.Value)
	}
	return fmtRatio(r.Value) + r.unitSuffix()
}

// Targets returns the ratios of the issue for the benchmarks in o. The
// scaling ratios compare the largest size with the smallest one present, so
// a -short run (smaller sizes) is judged on what it measured.
func Targets(o *Output) []Target {
	var ts []Target
	for _, mode := range []string{"serial", "parallel"} {
		load := func(m string) string { return "Load/" + m + "/" + mode }
		ts = append(ts,
			Target{What: "cached Load ÷ raw ristretto Get (" + mode + ")", Num: load("cached"), Den: load("ristretto"), Unit: "ns/op", Must: 4, Aim: 2},
			Target{What: "uncached Load ÷ raw bbolt View+Get (" + mode + ")", Num: load("uncached"), Den: load("bbolt"), Unit: "ns/op", Must: 2, Aim: 1.3},
			Target{What: "uncached Load ÷ cached Load (" + mode + ")", Num: load("uncached"), Den: load("cached"), Unit: "ns/op", AtLeast: true, Must: 5, Aim: 15},
			Target{What: "scs-on-bbolt Load ÷ cached Load (" + mode + ")", Num: load("scs-bbolt"), Den: load("cached"), Unit: "ns/op", AtLeast: true, Must: 10, Aim: 30},
			Target{What: "Load+Touch ÷ Load, cached (" + mode + ")", Num: "LoadTouch/" + mode, Den: load("cached"), Unit: "ns/op", Must: 1.3, Aim: 1.1},
			// PostgreSQL (pgstore), beside the bbolt figures above.
			Target{What: "cached Load on pgstore ÷ cached Load on bbolt (" + mode + ")", Num: load("pgstore-cached"), Den: load("cached"), Unit: "ns/op", Must: 1.3, Aim: 1.1},
			Target{What: "uncached Load on pgstore ÷ raw pgx SELECT by primary key (" + mode + ")", Num: load("pgstore-uncached"), Den: load("pgx"), Unit: "ns/op", Must: 1.5, Aim: 1.2},
			Target{What: "scs-on-PostgreSQL Load ÷ cached Load on pgstore (" + mode + ")", Num: load("scs-postgres"), Den: load("pgstore-cached"), Unit: "ns/op", AtLeast: true, Must: 20, Aim: 50},
			// Redis (redisstore), issue 20.
			Target{What: "cached Load on redisstore ÷ cached Load on bbolt (" + mode + ")", Num: load("redisstore-cached"), Den: load("cached"), Unit: "ns/op", Must: 1.3, Aim: 1.1},
			Target{What: "uncached Load on redisstore ÷ raw rueidis read of the record (" + mode + ")", Num: load("redisstore-uncached"), Den: load("rueidis"), Unit: "ns/op", Must: 1.5, Aim: 1.2},
			Target{What: "scs-on-Redis Load ÷ cached Load on redisstore (" + mode + ")", Num: load("scs-redis"), Den: load("redisstore-cached"), Unit: "ns/op", AtLeast: true, Must: 20, Aim: 50},
		)
	}
	for _, mode := range []string{"serial", "parallel"} {
		if o.Get("LoadThenTouch/"+mode) != nil {
			ts = append(ts, Target{
				What: "Load, then Touch as a second call ÷ Load, cached (" + mode + ")",
				Num:  "LoadThenTouch/" + mode, Den: "Load/cached/" + mode, Unit: "ns/op",
			})
		}
	}
	ts = append(ts,
		Target{What: "Create throughput, 64 writers ÷ 1 writer", Num: "Create/writers=64", Den: "Create/writers=1", Unit: "creates/s", AtLeast: true, Must: 10, Aim: 30},
		Target{What: "Create throughput on pgstore, 64 writers ÷ 1 writer", Num: "Create/pgstore/writers=64", Den: "Create/pgstore/writers=1", Unit: "creates/s", AtLeast: true, Must: 8, Aim: 15},
		Target{What: "pgstore: revoke on A → refused on B, p99", Num: "RevokeToRefused", Unit: "p99-ms", Must: 5, Aim: 1, BoundUnit: "ms"},
		Target{What: "Create throughput on redisstore, 64 writers ÷ 1 writer", Num: "Create/redisstore/writers=64", Den: "Create/redisstore/writers=1", Unit: "creates/s", AtLeast: true, Must: 8, Aim: 15},
		Target{What: "redisstore: revoke on A → refused on B, p99", Num: "RevokeToRefusedRedis", Unit: "p99-ms", Must: 5, Aim: 1, BoundUnit: "ms"},
	)
	if s := o.Sizes("ListByUser/"); len(s) >= 2 {
		lo, hi := s[0], s[len(s)-1]
		ts = append(ts, Target{
			What: fmt.Sprintf("ListByUser at %s ÷ at %s total sessions", count(hi), count(lo)),
			Num:  fmt.Sprintf("ListByUser/total=%d", hi), Den: fmt.Sprintf("ListByUser/total=%d", lo),
			Unit: "ns/op", Must: 2, Aim: 1.2,
		})
	}
	if s := o.Sizes("ClearExpired/"); len(s) >= 2 {
		lo, hi := s[0], s[len(s)-1]
		ts = append(ts, Target{
			What: fmt.Sprintf("ClearExpired(1k) at %s ÷ at %s total", count(hi), count(lo)),
			Num:  fmt.Sprintf("ClearExpired/total=%d", hi), Den: fmt.Sprintf("ClearExpired/total=%d", lo),
			Unit: "ns/op", Must: 3, Aim: 1.5,
		})
	}
	for _, mode := range []string{"serial", "parallel"} {
		if o.Get("HTTP/usersessions/"+mode) != nil {
			ts = append(ts, Target{
				What: "HTTP: scs LoadAndSave ÷ httpx middleware (" + mode + ")",
				Num:  "HTTP/scs-bbolt/" + mode, Den: "HTTP/usersessions/" + mode, Unit: "ns/op",
			})
		}
	}
	return ts
}

// Measure computes every target's ratio from o.
func Measure(o *Output, ts []Target) []Ratio {
	rs := make([]Ratio, len(ts))
	for i, t := range ts {
		if t.Absolute() {
			v := value(o, t.Num, t.Unit)
			rs[i] = Ratio{Target: t, Value: v, NumV: v, DenV: math.NaN(), CPU: math.NaN()}
			continue
		}
		rs[i] = Ratio{Target: t, Value: ratio(o, t.Num, t.Den, t.Unit), CPU: math.NaN(),
			NumV: value(o, t.Num, t.Unit), DenV: value(o, t.Den, t.Unit)}
		if t.Unit == "ns/op" {
			rs[i].CPU = ratio(o, t.Num, t.Den, "cpu-ns/op")
		}
	}
	return rs
}

func value(o *Output, name, unit string) float64 {
	if v, ok := o.Value(name, unit); ok {
		return v
	}
	return math.NaN()
}

// From shows the two measurements of the ratio: "422 ns / 80.6 ns"; for
// an absolute target, the metric and its benchmark: "p99-ms of
// RevokeToRefused".
func (r Ratio) From() string {
	if r.Absolute() {
		return r.Unit + " of " + r.Num
	}
	f := func(v float64) string {
		switch {
		case math.IsNaN(v):
			return "—"
		case r.Unit == "ns/op":
			return formatNs(v)
		default:
			return fmtValue(v) + " " + r.Unit
		}
	}
	return f(r.NumV) + " / " + f(r.DenV)
}

func ratio(o *Output, num, den, unit string) float64 {
	n, ok1 := o.Value(num, unit)
	d, ok2 := o.Value(den, unit)
	if !ok1 || !ok2 || d == 0 {
		return math.NaN()
	}
	return n / d
}

// count formats a session count: 1000 -> "1k", 1000000 -> "1M".
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func trimFloat(v float64) string {
	return fmt.Sprintf("%g", v)
}
