package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress bars are drawn on stderr, and only when stderr is a terminal:
// stdout keeps the results (a summary line, a file path) clean for scripts,
// and under cron, in CI or behind a pipe nothing but the results is printed.

// progressInterval is the least time between two redraws.
const progressInterval = 80 * time.Millisecond

// progressWidth is the bar's width in cells.
const progressWidth = 24

// progressBar draws "label [████░░░░]  42%  420/1000  1.2s" on one line,
// redrawn in place. Without a total it draws a spinner and the count. A nil
// *progressBar draws nothing, so callers need no terminal checks. It is safe
// for concurrent use.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	label  string
	total  int64
	n      int64
	format func(int64) string // counts: plain numbers or bytes
	start  time.Time
	last   time.Time
	spin   int
	width  int // of the last line drawn, to erase it
	now    func() time.Time
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a bar on w, or nil when w is not a terminal. total
// may be 0 when unknown; bytes formats counts as sizes.
func newProgress(w io.Writer, label string, total int64, bytes bool) *progressBar {
	if !isTerminal(w) {
		return nil
	}
	return startProgress(w, label, total, bytes, time.Now)
}

// startProgress returns a bar on w whatever w is (for tests).
func startProgress(w io.Writer, label string, total int64, bytes bool, now func() time.Time) *progressBar {
	p := &progressBar{w: w, label: label, total: total, format: formatCount, now: now}
	if bytes {
		p.format = humanBytes
	}
	p.start = now()
	p.mu.Lock()
	p.draw()
	p.mu.Unlock()
	return p
}

// Set records progress n and redraws at most every progressInterval.
func (p *progressBar) Set(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if t := p.now(); t.Sub(p.last) >= progressInterval {
		p.draw()
	}
}

// SetTotal changes the total (a download learns its size late).
func (p *progressBar) SetTotal(total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// SetLabel changes the text before the bar.
func (p *progressBar) SetLabel(label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.label = label
	p.mu.Unlock()
}

// Tick redraws (elapsed time, spinner) when progress stalls.
func (p *progressBar) Tick() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.last) >= progressInterval {
		p.draw()
	}
}

// Done erases the bar, leaving the cursor at the start of an empty line
// for the summary.
func (p *progressBar) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// draw writes the line. The caller holds p.mu.
func (p *progressBar) draw() {
	now := p.now()
	p.last = now
	elapsed := now.Sub(p.start).Round(100 * time.Millisecond)
	var line string
	if p.total > 0 {
		frac := min(float64(p.n)/float64(p.total), 1)
		filled := int(frac * progressWidth)
		bar := strings.Repeat("█", filled) + strings.Repeat("░", progressWidth-filled)
		line = fmt.Sprintf("%s [%s] %3d%%  %s/%s  %v", p.label, bar, int(frac*100),
			p.format(p.n), p.format(p.total), elapsed)
	} else {
		const frames = `|/-\`
		p.spin = (p.spin + 1) % len(frames)
		line = fmt.Sprintf("%s %c  %s  %v", p.label, frames[p.spin], p.format(p.n), elapsed)
	}
	pad := ""
	if n := len([]rune(line)); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = max(p.width, len([]rune(line)))
}

func formatCount(n int64) string { return fmt.Sprint(n) }

// humanBytes formats a size with binary units: "512 B", "1.5 KiB", "61.3 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
