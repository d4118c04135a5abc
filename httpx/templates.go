package httpx

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/usersessions/usersessions"
)

//go:embed templates/*.html
var embedded embed.FS

// Template names. An override file system (ViewOptions.Templates,
// AdminOptions.Templates) may replace any of them, and the shared "nav",
// "head" and "style" blocks defined in layout.html (see Templates in the
// package documentation).
const (
	sessionsTemplate = "sessions.html"
	adminTemplate    = "admin.html"
	confirmTemplate  = "confirm.html" // data: *ConfirmPage
	endedTemplate    = "ended.html"   // data: *EndedPage
)

// parseTemplates parses the embedded templates, then every *.html file of
// override on top of them (a file defining a template of the same name
// replaces it). It panics on a template error: that is a programming error
// found at setup, not at request time.
func parseTemplates(override fs.FS, funcs template.FuncMap) *template.Template {
	t := template.Must(template.New("").Funcs(funcs).ParseFS(embedded, "templates/*.html"))
	if override != nil {
		matches, err := fs.Glob(override, "*.html")
		if err != nil {
			panic(fmt.Sprintf("httpx: reading templates: %v", err))
		}
		if len(matches) > 0 {
			t = template.Must(t.ParseFS(override, "*.html"))
		}
	}
	return t
}

// Stylesheet returns the CSS of the embedded views (their "style" block), so
// an app's own pages can look like them without copying it.
func Stylesheet() template.CSS { return stylesheet() }

var stylesheet = sync.OnceValue(func() template.CSS {
	var b strings.Builder
	t := parseTemplates(nil, FuncMap(nil, time.Now))
	if err := t.ExecuteTemplate(&b, "style", nil); err != nil {
		panic(fmt.Sprintf("httpx: rendering the stylesheet: %v", err)) // embedded: cannot fail
	}
	return template.CSS(b.String()) // our own embedded text, not user input
})

// FuncMap returns the template functions the views provide, in English,
// for apps that render sessions in their own templates:
//
//   - device(userAgent string) string: "Chrome on Windows" (usersessions.Device)
//   - location(ip) string: "Berlin, Germany" from geo, "" when unknown or geo
//     is nil; ip is a netip.Addr or a string
//   - timesince(t time.Time) string: "just now", "5 minutes ago",
//     "2 hours ago", "3 days ago" (relative to now(); nil now means time.Now)
//   - timeuntil(t time.Time) string: "in 5 minutes", "in 13 days"
//   - date(t time.Time) string: "2 Jan 2006, 15:04 UTC", with the zone
//   - t(key), tn(key, n, name, value...), tf(key, name, value...) and
//     tb(key, name, value...): the views' messages (see Languages)
//   - lang() string: "en"
//   - breakable(s string) template.HTML: s with <wbr> after its
//     separators (see breakable)
//
// The views themselves render each page with the same functions in the
// language of the request (see ViewOptions.Language).
func FuncMap(geo *usersessions.Geo, now func() time.Time) template.FuncMap {
	if now == nil {
		now = time.Now
	}
	return localizer{catalogEN, geo}.funcs(now)
}

// breakAfter are the separators after which breakable lets a line break:
// those of IP addresses (":", "."), time zones ("/", "_") and e-mail
// addresses used as user IDs ("@", ".").
const breakAfter = ":./_@"

// breakable returns s, HTML-escaped, with a <wbr> (a line-break
// opportunity that adds no character when copied) after each ":", ".",
// "/", "_" and "@". A narrow screen then wraps "2001:db8:85a3:…:7334",
// "America/Argentina/Buenos_Aires" or "alexandra.papadopoulou@example.com"
// between their parts instead of in the middle of one, which
// overflow-wrap: anywhere would do at any letter. The views use it for
// addresses, places, time zones, user IDs and session keys.
func breakable(s string) template.HTML {
	var b strings.Builder
	for {
		i := strings.IndexAny(s, breakAfter)
		if i < 0 {
			break
		}
		b.WriteString(template.HTMLEscapeString(s[:i+1]))
		b.WriteString("<wbr>")
		s = s[i+1:]
	}
	b.WriteString(template.HTMLEscapeString(s))
	return template.HTML(b.String()) // escaped above, <wbr> is ours
}

// locate answers the location function.
func locate(geo *usersessions.Geo, ip any) string {
	if geo == nil {
		return ""
	}
	var addr netip.Addr
	switch v := ip.(type) {
	case netip.Addr:
		addr = v
	case string:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return ""
		}
		addr = a
	default:
		return ""
	}
	if !addr.IsValid() {
		return ""
	}
	return geo.Location(addr)
}

// TimeSince describes how long before now t was, the way a person says it:
// "just now" (under a minute, or in the future), "1 minute ago",
// "5 minutes ago", "2 hours ago", "3 days ago", "2 months ago",
// "1 year ago". The zero time gives "never". It counts whole units, so
// 119 minutes is "1 hour ago".
func TimeSince(t, now time.Time) string { return catalogEN.Since(t, now) }

// timeUntil describes how long after now t is, rounded to the nearest
// unit, so a 14-day session created a moment ago expires "in 14 days", not
// "in 13 days".
func timeUntil(t, now time.Time) string { return catalogEN.Until(t, now) }

const day = 24 * time.Hour

// roundUnit expresses d (at least one minute) in its largest unit,
// rounded to the nearest whole one.
func roundUnit(d time.Duration) (unit string, n int) {
	if n := (d + time.Minute/2) / time.Minute; n < 60 {
		return "minute", int(n)
	}
	if n := (d + time.Hour/2) / time.Hour; n < 24 {
		return "hour", int(n)
	}
	if n := (d + day/2) / day; n < 30 {
		return "day", int(n)
	}
	if n := (d + 15*day) / (30 * day); n < 12 {
		return "month", int(n)
	}
	return "year", int((d + 365*day/2) / (365 * day))
}

// floorUnit expresses d (at least one minute) in its largest whole unit.
func floorUnit(d time.Duration) (unit string, n int) {
	switch {
	case d < time.Hour:
		return "minute", int(d / time.Minute)
	case d < day:
		return "hour", int(d / time.Hour)
	case d < 30*day:
		return "day", int(d / day)
	case d < 365*day:
		return "month", int(d / (30 * day))
	default:
		return "year", int(d / (365 * day))
	}
}
