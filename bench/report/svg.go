package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
)

// Bar is one bar of the chart.
type Bar struct {
	Label  string
	Value  float64 // ns/op, > 0
	Series string  // "serial" or "parallel": picks the color
}

var seriesColor = map[string]string{
	"serial":   "#3b6fb6",
	"parallel": "#e08a2c",
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 820
	labelWidth  = 250 // the bar labels, right-aligned at labelWidth-10
	plotWidth   = 470 // bars, from labelWidth to labelWidth+plotWidth
	rowHeight   = 24
	barHeight   = 16
	chartTop    = 64 // title, legend and axis labels above the first bar
	chartBottom = 40
)

// WriteSVG draws bars as a horizontal bar chart with a logarithmic axis,
// labelled in decades of nanoseconds, each bar labelled with its value.
// subtitle goes under the title (machine and date).
func WriteSVG(w io.Writer, title, subtitle string, bars []Bar) error {
	if len(bars) == 0 {
		return fmt.Errorf("svg: no bars")
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range bars {
		if !(b.Value > 0) || math.IsInf(b.Value, 0) {
			return fmt.Errorf("svg: bar %q has value %v, want > 0", b.Label, b.Value)
		}
		lo, hi = min(lo, b.Value), max(hi, b.Value)
	}
	// The axis spans whole decades around the data.
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	x := func(v float64) float64 {
		return labelWidth + (math.Log10(v)-dlo)/(dhi-dlo)*plotWidth
	}
	height := chartTop + len(bars)*rowHeight + chartBottom
	plotBottom := chartTop + len(bars)*rowHeight

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", 10, esc(title))
	p(`<text x="%d" y="38" fill="#555555">%s</text>`+"\n", 10, esc(subtitle))
	// Legend.
	lx := labelWidth
	for _, s := range []string{"serial", "parallel"} {
		p(`<rect x="%d" y="46" width="12" height="12" fill="%s"/>`+"\n", lx, seriesColor[s])
		p(`<text x="%d" y="56">%s</text>`+"\n", lx+16, s)
		lx += 90
	}
	// Decade grid lines and their labels.
	for d := dlo; d <= dhi; d++ {
		gx := x(math.Pow(10, d))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>`+"\n", gx, chartTop-4, gx, plotBottom)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>`+"\n", gx, plotBottom+16, esc(decadeLabel(d)))
	}
	p(`<text x="%d" y="%d" text-anchor="middle" fill="#555555">ns/op, logarithmic scale (shorter is faster)</text>`+"\n",
		labelWidth+plotWidth/2, plotBottom+32)
	for i, b := range bars {
		y := chartTop + i*rowHeight
		color := seriesColor[b.Series]
		if color == "" {
			color = "#888888"
		}
		bx := x(b.Value)
		p(`<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelWidth-10, y+barHeight-4, esc(b.Label))
		p(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`+"\n",
			labelWidth, y, max(bx-labelWidth, 1), barHeight, color, esc(b.Label), esc(formatNs(b.Value)))
		p(`<text x="%.1f" y="%d">%s</text>`+"\n", max(bx, labelWidth+1)+6, y+barHeight-4, esc(formatNs(b.Value)))
	}
	p("</svg>\n")
	return bw.Flush()
}

// decadeLabel names the grid line at 10^d ns: "100 ns", "1 µs", "10 µs".
func decadeLabel(d float64) string {
	units := []string{"ns", "µs", "ms", "s"}
	i := min(int(d)/3, len(units)-1)
	if d < 0 {
		i = 0
	}
	return fmt.Sprintf("%g %s", math.Pow(10, d-float64(3*i)), units[i])
}

func esc(s string) string { return html.EscapeString(s) }

// formatNs formats a duration in nanoseconds with a readable unit.
func formatNs(ns float64) string {
	switch {
	case ns < 1e3:
		return trimUnit(ns, "ns")
	case ns < 1e6:
		return trimUnit(ns/1e3, "µs")
	case ns < 1e9:
		return trimUnit(ns/1e6, "ms")
	default:
		return trimUnit(ns/1e9, "s")
	}
}

func trimUnit(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}
