package httpx

import (
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/usersessions/usersessions"
)

// LanguageParam is the query parameter, and LanguageCookie the cookie,
// that override the language of the HTML views ("?lang=de"). The views
// read the cookie but never set it: an app's language picker sets it (or
// ViewOptions.Language answers from the user's profile).
const (
	LanguageParam  = "lang"
	LanguageCookie = "lang"
)

// catalog is the text of the views in one language. Messages are looked
// up by key; a key with a count has one entry per plural form the
// language uses, key+".one" and key+".other" (only ".other" in Chinese and
// Japanese). Placeholders are written {name}.
type catalog struct {
	tag    string             // BCP 47, as in <html lang>: "pt-BR"
	plural func(n int) string // CLDR plural category of n: "one" or "other"
	date   string             // time layout of an absolute date and time, with its zone
	msgs   map[string]string
}

// catalogs lists the languages of the views; the first is the fallback.
var catalogs = []*catalog{catalogEN, catalogDE, catalogES, catalogFR, catalogNL, catalogPTBR, catalogZHCN, catalogJA}

var (
	catalogTags    = tagsOf(catalogs)
	catalogMatcher = language.NewMatcher(catalogTags)
)

func tagsOf(cs []*catalog) []language.Tag {
	tags := make([]language.Tag, len(cs))
	for i, c := range cs {
		tags[i] = language.MustParse(c.tag)
	}
	return tags
}

// Languages returns the languages the views are translated into, as BCP
// 47 tags ("en", "de", "pt-BR", "zh-CN", ...), English first.
func Languages() []string {
	out := make([]string, len(catalogs))
	for i, c := range catalogs {
		out[i] = c.tag
	}
	return out
}

// pluralOne is the rule of English, German, Dutch and Spanish: 1 is "one".
func pluralOne(n int) string {
	if n == 1 {
		return "one"
	}
	return "other"
}

// pluralZeroOne is the rule of French and Brazilian Portuguese: 0 and 1
// are "one".
func pluralZeroOne(n int) string {
	if n == 0 || n == 1 {
		return "one"
	}
	return "other"
}

// pluralNone is the rule of Chinese and Japanese: no plural forms.
func pluralNone(int) string { return "other" }

// match returns the catalog for a list of language preferences (an
// Accept-Language header, a "lang" value) and whether it really matched
// one: false when the matcher had to fall back to English.
func match(prefs string) (*catalog, bool) {
	tags, _, err := language.ParseAcceptLanguage(prefs)
	if err != nil || len(tags) == 0 {
		return catalogs[0], false
	}
	_, i, conf := catalogMatcher.Match(tags...)
	if conf == language.No {
		return catalogs[0], false
	}
	return catalogs[i], true
}

// catalogFor returns the catalog of a language tag, English for one the
// views do not speak.
func catalogFor(lang string) *catalog {
	c, _ := match(lang)
	return c
}

// chooseLanguage picks the language of a request: the app's choice
// (custom), then ?lang=, then the lang cookie, then Accept-Language, then
// English. A choice the views do not speak passes to the next.
func chooseLanguage(r *http.Request, custom func(*http.Request) string) *catalog {
	if custom != nil {
		if l := custom(r); l != "" {
			if c, ok := match(l); ok {
				return c
			}
		}
	}
	if l := r.URL.Query().Get(LanguageParam); l != "" && len(l) <= 35 {
		if c, ok := match(l); ok {
			return c
		}
	}
	if ck, err := r.Cookie(LanguageCookie); err == nil && ck.Value != "" && len(ck.Value) <= 35 {
		if c, ok := match(ck.Value); ok {
			return c
		}
	}
	if al := r.Header.Get("Accept-Language"); al != "" && len(al) <= 1000 {
		if c, ok := match(al); ok {
			return c
		}
	}
	return catalogs[0]
}

// T returns the message of key, or the key itself when the catalog lacks
// it (the tests make sure none does).
func (c *catalog) T(key string) string {
	if s, ok := c.msgs[key]; ok {
		return s
	}
	if s, ok := catalogEN.msgs[key]; ok {
		return s
	}
	return key
}

// F returns the message of key with its {name} placeholders filled from
// pairs of name and value.
func (c *catalog) F(key string, pairs ...string) string {
	return fill(c.T(key), pairs, nil)
}

// N returns the plural form of key for n, with {n} and the placeholders of
// pairs filled.
func (c *catalog) N(key string, n int, pairs ...string) string {
	form := c.plural(n)
	s, ok := c.msgs[key+"."+form]
	if !ok {
		s = c.T(key + ".other")
	}
	return fill(s, append([]string{"n", strconv.Itoa(n)}, pairs...), nil)
}

// fill replaces {name} in s by the value paired with name; wrap, when not
// nil, transforms each value (HTML escaping and markup).
func fill(s string, pairs []string, wrap func(string) string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		name := s[i+1 : i+j]
		val, found := "", false
		for k := 0; k+1 < len(pairs); k += 2 {
			if pairs[k] == name {
				val, found = pairs[k+1], true
				break
			}
		}
		b.WriteString(s[:i])
		if found {
			if wrap != nil {
				val = wrap(val)
			}
			b.WriteString(val)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// Date renders an absolute time with its zone in the catalog's format:
// "2 Jan 2006, 15:04 UTC", "2.1.2006, 15:04 UTC".
func (c *catalog) Date(t time.Time) string {
	if t.IsZero() {
		return c.T("time.never")
	}
	return t.Format(c.date)
}

// Since describes how long before now t was (see TimeSince).
func (c *catalog) Since(t, now time.Time) string {
	if t.IsZero() {
		return c.T("time.never")
	}
	d := now.Sub(t)
	if d < time.Minute {
		return c.T("time.justNow")
	}
	unit, n := floorUnit(d)
	return c.N("ago."+unit, n)
}

// Until describes how long after now t is, rounded to the nearest unit
// (see timeUntil).
func (c *catalog) Until(t, now time.Time) string {
	if t.IsZero() {
		return c.T("time.never")
	}
	d := t.Sub(now)
	if d < time.Minute {
		if d <= 0 {
			return c.T("time.expired")
		}
		return c.T("time.soon")
	}
	unit, n := roundUnit(d)
	return c.N("in."+unit, n)
}

// Device describes a user agent in the catalog's language: "Chrome on
// Windows", "Chrome unter Windows"; "" when unknown.
func (c *catalog) Device(ua string) string {
	if c == catalogEN {
		return usersessions.Device(ua) // the same, without allocating
	}
	d := usersessions.ParseDevice(ua)
	switch {
	case d.Bot:
		return d.Browser
	case d.Browser != "" && d.Platform != "":
		return c.F("device.on", "browser", d.Browser, "platform", d.Platform)
	case d.Browser != "":
		return d.Browser
	default:
		return d.Platform
	}
}

// localizer is what a page renders with in one language: its catalog and
// the Geo naming places in it.
type localizer struct {
	*catalog
	geo *usersessions.Geo
}

// geoSet holds the default Geo and the per-language ones.
type geoSet struct {
	def    *usersessions.Geo
	byLang map[string]*usersessions.Geo
}

// newGeoSet indexes GeoByLanguage by catalog, accepting any spelling of a
// tag ("pt-br", "zh-Hans-CN").
func newGeoSet(def *usersessions.Geo, byLang map[string]*usersessions.Geo) geoSet {
	gs := geoSet{def: def}
	for k, g := range byLang {
		c, ok := match(k)
		if !ok || g == nil {
			continue
		}
		if gs.byLang == nil {
			gs.byLang = make(map[string]*usersessions.Geo)
		}
		gs.byLang[c.tag] = g
	}
	return gs
}

func (gs geoSet) localizer(c *catalog) localizer {
	if g, ok := gs.byLang[c.tag]; ok {
		return localizer{c, g}
	}
	return localizer{c, gs.def}
}

// funcs returns the template functions of one language:
//
//   - t(key) string: a message
//   - tn(key, n, name, value, ...) string: the plural form for n, with
//     {n} and the other placeholders filled
//   - tf(key, name, value, ...) string: a message with placeholders filled
//   - tb(key, name, value, ...) template.HTML: the same, each value
//     escaped, breakable and in <strong>
//   - lang() string: the BCP 47 tag, for <html lang>
//   - date(t) string: an absolute time with its zone
//   - device, location, timesince, timeuntil, in the language
//   - adminscript() template.JS: the admin list's script (see adminScript)
//   - breakable(s) template.HTML: s with line-break opportunities after
//     its separators (see breakable in templates.go)
func (l localizer) funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"t":  l.T,
		"tn": func(key string, n int, pairs ...string) string { return l.N(key, n, pairs...) },
		"tf": func(key string, pairs ...string) string { return l.F(key, pairs...) },
		"tb": func(key string, pairs ...string) template.HTML {
			msg := template.HTMLEscapeString(l.T(key))
			return template.HTML(fill(msg, pairs, func(v string) string { // escaped above and here
				return "<strong>" + string(breakable(v)) + "</strong>" // a user ID wraps between its parts
			}))
		},
		"lang":        func() string { return l.tag },
		"adminscript": func() template.JS { return template.JS(adminScript) }, // our constant
		"breakable":   breakable,
		"date":        l.Date,
		"device":      l.Device,
		"location":    func(ip any) string { return locate(l.geo, ip) },
		"timesince":   func(t time.Time) string { return l.Since(t, now()) },
		"timeuntil":   func(t time.Time) string { return l.Until(t, now()) },
	}
}

// localized holds a view's templates, one clone per language.
type localized struct {
	byTag map[string]*template.Template
	geos  geoSet
}

// parseLocalized parses the templates (see parseTemplates) and makes one
// copy per language with that language's functions.
func parseLocalized(override fs.FS, geos geoSet, now func() time.Time) localized {
	base := parseTemplates(override, FuncMap(geos.def, now))
	lt := localized{byTag: make(map[string]*template.Template, len(catalogs)), geos: geos}
	for _, c := range catalogs {
		t := template.Must(base.Clone())
		lt.byTag[c.tag] = t.Funcs(geos.localizer(c).funcs(now))
	}
	return lt
}

func (lt localized) get(c *catalog) *template.Template { return lt.byTag[c.tag] }
