package main

import (
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/usersessions/usersessions/httpx"
)

// htmlLang returns the lang attribute of a page's <html> element.
func htmlLang(body string) string {
	m := regexp.MustCompile(`<html lang="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// The demo shows the views as a multilingual app would: its own pages in
// the request's language, and places named in it (issue 18, item 16).
func TestDemoGermanAndJapanese(t *testing.T) {
	_, base := newGeoDemo(t, demoGeoConfig(t))
	for _, tc := range []struct {
		accept string
		home   []string // on the home page, signed in from Zwolle
		login  string   // on the sign-in page
		admins string   // the "admins only" page
		place  string   // Zwolle on the sessions page
	}{
		{"de-DE,de;q=0.9", []string{"Sitzungen, die Sie sehen und beenden können", "Angemeldet als", "Zwolle, Niederlande"}, "Benutzername", "Nur für Administratoren", "Zwolle, Niederlande"},
		{"ja", []string{"見て終了できるセッション", "ズヴォレ, オランダ王国"}, "ユーザー名", "管理者専用", "ズヴォレ, オランダ王国"},
	} {
		b := newBrowser(t, base, uaChrome)
		h := []string{"Accept-Language", tc.accept}
		_, body := b.do("GET", "/login", nil, h...)
		if !strings.Contains(body, tc.login) || !strings.Contains(body, tc.place) || htmlLang(body) == "en" {
			t.Errorf("%s: the sign-in page (lang %q) lacks %q or %q", tc.accept, htmlLang(body), tc.login, tc.place)
		}
		resp, _ := b.do("POST", "/login", url.Values{"username": {"alice"}, "from": {"zwolle"}}, append(h, "Sec-Fetch-Site", "same-origin")...)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: sign-in: %s", tc.accept, resp.Status)
		}
		_, body = b.do("GET", "/", nil, h...)
		for _, want := range tc.home {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the home page lacks %q", tc.accept, want)
			}
		}
		if strings.Contains(body, "What to try") || strings.Contains(body, "Netherlands") {
			t.Errorf("%s: the home page has English text", tc.accept)
		}
		_, body = b.do("GET", "/account/sessions/", nil, h...)
		if !strings.Contains(body, tc.place) {
			t.Errorf("%s: the sessions page lacks %q", tc.accept, tc.place)
		}
		_, body = b.do("GET", "/admin/sessions/", nil, h...)
		if !strings.Contains(body, tc.admins) {
			t.Errorf("%s: the admins-only page lacks %q", tc.accept, tc.admins)
		}
		// A refused name is told so in the language too.
		_, body = b.do("POST", "/login", url.Values{"username": {""}}, append(h, "Sec-Fetch-Site", "same-origin")...)
		if strings.Contains(body, "Enter a user name") {
			t.Errorf("%s: the sign-in error is in English", tc.accept)
		}
	}
}

// The demo's pages and the views pick the same language for the same
// request: ?lang=, the lang cookie, Accept-Language, English.
func TestDemoLanguageLikeViews(t *testing.T) {
	_, base := newGeoDemo(t, demoGeoConfig(t))
	b := newBrowser(t, base, uaChrome)
	b.login("alice")
	u, _ := url.Parse(base)
	for _, tc := range []struct {
		query, cookie, accept string
	}{
		{"", "", ""},
		{"", "", "de-AT,de;q=0.9,en;q=0.5"},
		{"", "", "pt"},
		{"", "", "zh"},
		{"", "", "sv, es;q=0.8"},
		{"", "", "sv"},
		{"", "", "garbage;;;"},
		{"?lang=ja", "", "de"},
		{"?lang=xx", "", "de"},
		{"?lang=pt-br", "", ""},
		{"", "fr", "de"},
		{"?lang=es", "fr", "de"},
		{"", "nl-BE", ""},
	} {
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "lang", Value: tc.cookie, MaxAge: map[bool]int{true: -1}[tc.cookie == ""]}})
		_, home := b.do("GET", "/"+tc.query, nil, "Accept-Language", tc.accept)
		_, views := b.do("GET", "/account/sessions/"+tc.query, nil, "Accept-Language", tc.accept)
		if htmlLang(home) == "" || htmlLang(home) != htmlLang(views) {
			t.Errorf("query %q, cookie %q, Accept-Language %q: the demo's page is in %q, the views in %q",
				tc.query, tc.cookie, tc.accept, htmlLang(home), htmlLang(views))
		}
	}
}

// Every language of the views has the demo's text: the English keys, no
// others, the same placeholders and the same links; every key is used,
// and every key the templates use exists.
func TestDemoTextComplete(t *testing.T) {
	en := demoText["en"]
	placeholders := regexp.MustCompile(`\{[a-z]+\}|href="[^"]*"`)
	if got, want := slices.Sorted(maps.Keys(demoText)), slices.Sorted(slices.Values(httpx.Languages())); !slices.Equal(got, want) {
		t.Errorf("demoText has %v, the views speak %v", got, want)
	}
	for tag, msgs := range demoText {
		for key, msg := range en {
			other, ok := msgs[key]
			if !ok {
				t.Errorf("%s lacks %q", tag, key)
				continue
			}
			if a, b := placeholders.FindAllString(msg, -1), placeholders.FindAllString(other, -1); !slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))) {
				t.Errorf("%s %q has %v, English %v", tag, key, b, a)
			}
		}
		for key := range msgs {
			if _, ok := en[key]; !ok {
				t.Errorf("%s has %q, which English lacks", tag, key)
			}
		}
	}
	var source strings.Builder
	for _, glob := range []string{"templates/*.html", "demo*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || f == "demo_text.go" {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			source.Write(data)
		}
	}
	for key := range en {
		if !strings.Contains(source.String(), `"`+key+`"`) {
			t.Errorf("%q is used nowhere", key)
		}
	}
	for _, m := range regexp.MustCompile(`\{\{t "([^"]+)"`).FindAllStringSubmatch(source.String(), -1) {
		if _, ok := en[m[1]]; !ok {
			t.Errorf("a template uses %q, which demoText lacks", m[1])
		}
	}
}

// The language links at the foot of the demo's pages keep the choice in
// the lang cookie, as an app's language picker does, so the views follow.
func TestDemoLanguageLinks(t *testing.T) {
	_, base := newGeoDemo(t, demoGeoConfig(t))
	b := newBrowser(t, base, uaChrome)
	b.login("alice")

	_, body := b.do("GET", "/login?next=%2Fadmin%2Fsessions%2F", nil)
	for _, want := range []string{
		`<a href="/login?lang=de&amp;next=%2Fadmin%2Fsessions%2F" lang="de" hreflang="de">Deutsch</a>`,
		`<a href="/login?lang=en&amp;next=%2Fadmin%2Fsessions%2F" lang="en" hreflang="en" aria-current="true">English</a>`,
		`hreflang="ja">日本語</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the sign-in page lacks %s", want)
		}
	}
	resp, body := b.do("GET", "/?lang=de", nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == httpx.LanguageCookie {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != "de" || cookie.Path != "/" || !cookie.HttpOnly || htmlLang(body) != "de" {
		t.Fatalf("?lang=de: cookie %v, page in %q", cookie, htmlLang(body))
	}
	if _, body := b.do("GET", "/account/sessions/", nil, "Accept-Language", "fr"); htmlLang(body) != "de" || !strings.Contains(body, "Ihre Sitzungen") {
		t.Errorf("the sessions page after choosing German: %q", htmlLang(body))
	}
	// A language the views do not speak is no choice: no cookie.
	if resp, _ := b.do("GET", "/?lang=sv", nil); len(resp.Cookies()) != 0 {
		t.Errorf("?lang=sv set %v", resp.Cookies())
	}
}

// Names in the translated messages are escaped: the messages are HTML,
// the values are not.
func TestDemoTextEscapes(t *testing.T) {
	_, base := newDemo(t)
	b := newBrowser(t, base, uaChrome)
	b.login(`<i>eve</i>`)
	for _, lang := range []string{"en", "de", "ja"} {
		_, body := b.do("GET", "/?lang="+lang, nil)
		if strings.Contains(body, "<i>eve") || !strings.Contains(body, "<strong>&lt;i&gt;eve&lt;/i&gt;</strong>") {
			t.Errorf("%s: the user name is not escaped", lang)
		}
		_, body = b.do("GET", "/login?lang="+lang, nil)
		if strings.Contains(body, "<i>eve") {
			t.Errorf("%s: the user name is not escaped on the sign-in page", lang)
		}
	}
}
