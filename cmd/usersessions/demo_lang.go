package main

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/usersessions/usersessions/httpx"
)

// The demo's own pages speak the languages of the httpx views and choose
// one the way the views do: the "lang" query parameter, then the "lang"
// cookie, then Accept-Language (matched with golang.org/x/text/language),
// then English. httpx does not export its rule, so requestLanguage is the
// same rule over httpx.Languages; the demo hands it to the views
// (ViewOptions.Language), so that a page and the views it links to never
// disagree, and TestDemoLanguageLikeViews compares the two.

var (
	// demoLangs are the languages, English first.
	demoLangs   = httpx.Languages()
	demoMatcher = language.NewMatcher(parseTags(demoLangs))
)

func parseTags(tags []string) []language.Tag {
	out := make([]language.Tag, len(tags))
	for i, t := range tags {
		out[i] = language.MustParse(t)
	}
	return out
}

// Longer values are ignored, as the views ignore them: no parsing of
// arbitrarily long headers.
const (
	maxLangValue      = 35
	maxAcceptLanguage = 1000
)

// matchLanguage returns the language of the views that prefs (a tag or an
// Accept-Language value) asks for, or "" when it asks for none of them.
func matchLanguage(prefs string) string {
	tags, _, err := language.ParseAcceptLanguage(prefs)
	if err != nil || len(tags) == 0 {
		return ""
	}
	_, i, conf := demoMatcher.Match(tags...)
	if conf == language.No {
		return ""
	}
	return demoLangs[i]
}

// requestLanguage returns the language of r's pages, a tag of
// httpx.Languages.
func requestLanguage(r *http.Request) string {
	if l := r.URL.Query().Get(httpx.LanguageParam); len(l) <= maxLangValue {
		if tag := matchLanguage(l); tag != "" {
			return tag
		}
	}
	if c, err := r.Cookie(httpx.LanguageCookie); err == nil && len(c.Value) <= maxLangValue {
		if tag := matchLanguage(c.Value); tag != "" {
			return tag
		}
	}
	if al := r.Header.Get("Accept-Language"); len(al) <= maxAcceptLanguage {
		if tag := matchLanguage(al); tag != "" {
			return tag
		}
	}
	return demoLangs[0]
}

// langCookieAge is how long a choice from the language links is kept.
const langCookieAge = 365 * 24 * time.Hour

// rememberLanguage keeps a language chosen with ?lang= (the links on the
// demo's pages) in the lang cookie, which the views read too, as an app's
// language picker does: the next pages, the views' included, stay in it.
func rememberLanguage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := r.URL.Query().Get(httpx.LanguageParam); l != "" && len(l) <= maxLangValue {
			if tag := matchLanguage(l); tag != "" {
				http.SetCookie(w, &http.Cookie{
					Name: httpx.LanguageCookie, Value: tag, Path: "/", MaxAge: int(langCookieAge / time.Second),
					HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
				})
			}
		}
		next.ServeHTTP(w, r)
	})
}

// langLink is one entry of the language links: this page in that
// language.
type langLink struct {
	Tag, Name, URL string
	Current        bool
}

// langLinks returns r's page in every language, other query parameters
// (such as next) kept.
func langLinks(r *http.Request, current string) []langLink {
	links := make([]langLink, len(demoLangs))
	q := r.URL.Query()
	for i, tag := range demoLangs {
		q.Set(httpx.LanguageParam, tag)
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		links[i] = langLink{Tag: tag, Name: demoText[tag]["lang.name"], URL: u.String(), Current: tag == current}
	}
	return links
}

// demoCatalog is the text of the demo's pages in one language.
type demoCatalog map[string]string

// T returns the message of key with its {name} placeholders filled from
// pairs of name and value, each value escaped. The messages are our own
// HTML (demoText); a key a language lacks falls back to English, which
// TestDemoTextComplete keeps from happening.
func (c demoCatalog) T(key string, pairs ...any) template.HTML {
	msg, ok := c[key]
	if !ok {
		msg = demoText["en"][key]
	}
	if len(pairs) > 0 {
		var oldnew []string
		for i := 0; i+1 < len(pairs); i += 2 {
			oldnew = append(oldnew, "{"+fmt.Sprint(pairs[i])+"}", template.HTMLEscapeString(fmt.Sprint(pairs[i+1])))
		}
		msg = strings.NewReplacer(oldnew...).Replace(msg)
	}
	return template.HTML(msg) // our text; the values are escaped above
}
