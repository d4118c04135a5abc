package httpx

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

var placeholderRE = regexp.MustCompile(`\{[a-z]+\}`)

func placeholders(s string) []string {
	p := placeholderRE.FindAllString(s, -1)
	slices.Sort(p)
	return slices.Compact(p)
}

// TestCatalogsComplete fails when a language lacks a key of the English
// catalog (or a plural form its rule needs), has a key English does not,
// or drops or invents a placeholder.
func TestCatalogsComplete(t *testing.T) {
	for _, c := range catalogs[1:] {
		for key, en := range catalogEN.msgs {
			base, form, plural := strings.Cut(key, ".one")
			if !plural || form != "" {
				base, form, plural = strings.Cut(key, ".other")
				plural = plural && form == ""
			}
			need := true
			if plural && strings.HasSuffix(key, ".one") && c.plural(1) != "one" {
				need = false // Chinese and Japanese have no singular form
			}
			msg, ok := c.msgs[key]
			if !ok {
				if need {
					t.Errorf("%s lacks %q (English: %q)", c.tag, key, en)
				}
				continue
			}
			if strings.TrimSpace(msg) == "" {
				t.Errorf("%s: %q is empty", c.tag, key)
			}
			want := placeholders(en)
			if plural {
				want = placeholders(catalogEN.msgs[base+".other"])
			}
			got := placeholders(msg)
			// A singular may spell the count out ("your only session").
			if plural && strings.HasSuffix(key, ".one") {
				got = append(got, "{n}")
				slices.Sort(got)
				got = slices.Compact(got)
				if !slices.Contains(want, "{n}") {
					want = append(want, "{n}")
					slices.Sort(want)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %q has placeholders %v, English %v", c.tag, key, got, want)
			}
		}
		for key := range c.msgs {
			if _, ok := catalogEN.msgs[key]; !ok {
				t.Errorf("%s has %q, which English lacks", c.tag, key)
			}
		}
		if c.plural(1) == "other" {
			for key := range c.msgs {
				if strings.HasSuffix(key, ".one") {
					t.Errorf("%s has a singular %q but no plural forms", c.tag, key)
				}
			}
		}
	}
	if len(catalogs) < 8 {
		t.Fatalf("%d languages", len(catalogs))
	}
	for _, want := range []string{"en", "de", "es", "fr", "nl", "pt-BR", "zh-CN", "ja"} {
		if !slices.Contains(Languages(), want) {
			t.Errorf("Languages() lacks %s", want)
		}
	}
}

// TestLabelInName checks WCAG 2.5.3 in every language: the accessible
// name of a control holds its visible text.
func TestLabelInName(t *testing.T) {
	pairs := [][2]string{
		{"sessions.end", "sessions.endName"},
		{"sessions.end", "sessions.endNameAt"},
		{"sessions.signOut", "sessions.signOutName"},
		{"admin.end", "admin.endName"},
		{"admin.details", "admin.detailsName"},
	}
	for _, c := range catalogs {
		for _, p := range pairs {
			visible, name := c.T(p[0]), c.T(p[1])
			if !strings.Contains(strings.ToLower(name), strings.ToLower(visible)) {
				t.Errorf("%s: the name %q of a control lacks its visible text %q", c.tag, name, visible)
			}
		}
	}
}

func TestPluralsAndTimes(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lang string
		got  string
		want string
	}{
		{"en", catalogEN.N(noticeEnded, 1), "1 session ended."},
		{"en", catalogEN.N(noticeEnded, 0), "0 sessions ended."},
		{"fr", catalogFR.N(noticeEnded, 0), "0 session fermée."},
		{"fr", catalogFR.N(noticeEnded, 2), "2 sessions fermées."},
		{"pt-BR", catalogPTBR.N(noticeEnded, 1), "1 sessão encerrada."},
		{"de", catalogDE.Since(now.Add(-5*time.Minute), now), "vor 5 Minuten"},
		{"de", catalogDE.Until(now.Add(14*day-time.Minute), now), "in 14 Tagen"},
		{"es", catalogES.Until(now.Add(14*day-time.Minute), now), "dentro de 14 días"},
		{"nl", catalogNL.Since(now.Add(-time.Hour), now), "1 uur geleden"},
		{"ja", catalogJA.Since(now.Add(-3*day), now), "3 日前"},
		{"zh-CN", catalogZHCN.Until(now.Add(14*day-time.Minute), now), "14 天后"},
		{"zh-CN", catalogZHCN.N(noticeEnded, 1), "已结束 1 个会话。"},
		{"de", catalogDE.Date(now), "1.6.2025, 12:00 UTC"},
		{"ja", catalogJA.Date(now.In(time.FixedZone("JST", 9*3600))), "2025年6月1日 21:00 JST"},
		{"de", catalogDE.Device(uaChromeWin), "Chrome unter Windows"},
		{"fr", catalogFR.Device(uaFirefoxMac), "Firefox sur macOS"},
		{"en", catalogEN.Device(uaSafariIOS), usersessions.Device(uaSafariIOS)},
		{"en", catalogEN.F("device.on", "browser", "Safari", "platform", "iPhone"), usersessions.Device(uaSafariIOS)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.lang, tc.got, tc.want)
		}
	}
}

func TestChooseLanguage(t *testing.T) {
	req := func(target, accept, cookie string) *http.Request {
		r, _ := http.NewRequest("GET", target, nil)
		if accept != "" {
			r.Header.Set("Accept-Language", accept)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: LanguageCookie, Value: cookie})
		}
		return r
	}
	profile := func(*http.Request) string { return "nl" }
	for _, tc := range []struct {
		r      *http.Request
		custom func(*http.Request) string
		want   string
	}{
		{req("/", "", ""), nil, "en"},
		{req("/", "de-AT,de;q=0.9,en;q=0.5", ""), nil, "de"},
		{req("/", "pt", ""), nil, "pt-BR"},
		{req("/", "pt-PT,pt;q=0.9", ""), nil, "pt-BR"},
		{req("/", "zh", ""), nil, "zh-CN"},
		{req("/", "ja-JP", ""), nil, "ja"},
		{req("/", "fr-CA, en;q=0.3", ""), nil, "fr"},
		{req("/", "sv, es;q=0.8", ""), nil, "es"},
		{req("/", "sv", ""), nil, "en"},
		{req("/", "garbage;;;", ""), nil, "en"},
		{req("/?lang=ja", "de", ""), nil, "ja"},
		{req("/?lang=xx", "de", ""), nil, "de"},
		{req("/", "de", "fr"), nil, "fr"},
		{req("/?lang=es", "de", "fr"), nil, "es"},
		{req("/?lang=es", "de", "fr"), profile, "nl"},
		{req("/", "de", ""), func(*http.Request) string { return "" }, "de"},
	} {
		if got := chooseLanguage(tc.r, tc.custom).tag; got != tc.want {
			t.Errorf("%s %q cookie: %s, want %s", tc.r.URL, tc.r.Header.Get("Accept-Language"), got, tc.want)
		}
	}
}

// TestPagesPerLanguage renders the user's pages in every language.
func TestPagesPerLanguage(t *testing.T) {
	for _, tc := range []struct {
		accept string
		lang   string
		want   []string // on the list, with two sessions
		ended  string   // the notice after ending the other session
		other  string   // the ended page's heading
	}{
		{"en-GB", "en", []string{"Your sessions", "Chrome on Windows", "in 14 days", "1 Jun 2025, 12:00 UTC", "End all other sessions"}, "1 session ended.", "Your session has ended"},
		{"de-DE,de;q=0.9", "de", []string{"Ihre Sitzungen", "Chrome unter Windows", "in 14 Tagen", "1.6.2025, 12:00 UTC", "Alle anderen Sitzungen beenden", "vor 5 Minuten"}, "1 Sitzung beendet.", "Ihre Sitzung wurde beendet"},
		{"es-MX", "es", []string{"Tus sesiones", "Chrome en Windows", "dentro de 14 días", "Cerrar todas las demás sesiones"}, "Se cerró 1 sesión.", "Tu sesión ha terminado"},
		{"fr-FR", "fr", []string{"Vos sessions", "Chrome sur Windows", "dans 14 jours", "01/06/2025 12:00 UTC", "il y a 5 minutes"}, "1 session fermée.", "Votre session est terminée"},
		{"nl-BE", "nl", []string{"Je sessies", "Chrome op Windows", "over 14 dagen", "5 minuten geleden"}, "1 sessie beëindigd.", "Je sessie is beëindigd"},
		{"pt-BR", "pt-BR", []string{"Suas sessões", "Chrome no Windows", "em 14 dias", "há 5 minutos"}, "1 sessão encerrada.", "Sua sessão foi encerrada"},
		{"zh-CN,zh;q=0.9", "zh-CN", []string{"你的会话", "Windows 上的 Chrome", "14 天后", "2025年6月1日 12:00 UTC", "5 分钟前"}, "已结束 1 个会话。", "你的会话已结束"},
		{"ja", "ja", []string{"ログイン中のセッション", "Chrome（Windows）", "14 日後", "5 分前"}, "1 件のセッションを終了しました。", "セッションが終了しました"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			e := newEnv(t, &usersessions.Options{Lifetime: 14 * day}, nil)
			accept := http.Header{"Accept-Language": {tc.accept}}
			other := e.login("alice", uaFirefoxMac)
			e.clock.Advance(5 * time.Minute)
			tok := e.login("alice", uaChromeWin)
			e.clock.Advance(time.Second)
			resp := e.do(call{method: "GET", target: "/account/sessions/", token: tok, header: accept})
			body := html.UnescapeString(readBody(t, resp))
			if !strings.Contains(body, `<html lang="`+tc.lang+`">`) {
				t.Errorf("no <html lang=%q>", tc.lang)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("list lacks %q:\n%s", w, body)
				}
			}
			if v := resp.Header.Values("Vary"); !slices.Contains(v, "Accept-Language") {
				t.Errorf("Vary %v", v)
			}
			// Confirm, end the other session, read the notice.
			h := http.Header{"Accept-Language": {tc.accept}, "Sec-Fetch-Site": {"same-origin"}}
			confirm := html.UnescapeString(readBody(t, e.do(call{method: "GET", target: "/account/sessions/end-others", token: tok, header: accept})))
			if want := catalogFor(tc.lang).T("confirm.others.title"); !strings.Contains(confirm, "<h1>"+want+"</h1>") {
				t.Errorf("confirmation lacks %q:\n%s", want, confirm)
			}
			if resp := e.do(call{method: "POST", target: "/account/sessions/end-others", token: tok, header: h}); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("end-others: %d", resp.StatusCode)
			}
			body = html.UnescapeString(readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: tok, header: accept})))
			if !strings.Contains(body, tc.ended) {
				t.Errorf("notice %q missing:\n%s", tc.ended, body)
			}
			// The ended device is told so, in its language.
			body = html.UnescapeString(readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: other, header: accept})))
			if !strings.Contains(body, "<h1>"+tc.other+"</h1>") || !strings.Contains(body, `lang="`+tc.lang+`"`) {
				t.Errorf("ended page lacks %q:\n%s", tc.other, body)
			}
			// JSON stays English.
			body = readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: tok, header: http.Header{"Accept-Language": {tc.accept}, "Accept": {"application/json"}}}))
			if !strings.Contains(body, `"device":"Chrome on Windows"`) {
				t.Errorf("JSON: %s", body)
			}
		})
	}
}

func TestLanguageOverrides(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	get := func(target, cookie string) string {
		h := http.Header{"Accept-Language": {"de"}}
		if cookie != "" {
			h.Set("Cookie", LanguageCookie+"="+cookie)
		}
		return readBody(t, e.do(call{method: "GET", target: target, token: tok, header: h}))
	}
	if b := get("/account/sessions/?lang=ja", ""); !strings.Contains(b, `<html lang="ja">`) {
		t.Error("?lang=ja ignored")
	}
	if b := get("/account/sessions/", "fr"); !strings.Contains(b, `<html lang="fr">`) {
		t.Error("lang cookie ignored")
	}
	if b := get("/account/sessions/?lang=%3Cx%3E", ""); !strings.Contains(b, `<html lang="de">`) {
		t.Error("a bad ?lang= should fall back to Accept-Language")
	}

	// ViewOptions.Language wins, and GeoByLanguage names places.
	m := e.m
	mux := http.NewServeMux()
	mux.Handle("/s/", m.SessionsHandler(&ViewOptions{Language: func(*http.Request) string { return "pt-br" }, Now: e.clock.Now}))
	mux.Handle("/a/", m.AdminHandler(&AdminOptions{Language: func(*http.Request) string { return "zh" }, Now: e.clock.Now, Allow: func(*http.Request) bool { return true }}))
	h := m.Handler(mux)
	body := readBody(t, serve(t, h, m.CookieName(), call{method: "GET", target: "/s/?lang=de", token: tok}))
	if !strings.Contains(body, `<html lang="pt-BR">`) || !strings.Contains(body, "Suas sessões") {
		t.Errorf("Language option ignored:\n%s", body)
	}
	body = readBody(t, serve(t, h, m.CookieName(), call{method: "GET", target: "/a/", token: tok}))
	if !strings.Contains(body, `<html lang="zh-CN">`) || !strings.Contains(body, "筛选会话") {
		t.Errorf("admin Language option ignored:\n%s", body)
	}
}

// TestAdminPagesPerLanguage checks the admin list, confirmation and
// detail pages in a few languages.
func TestAdminPagesPerLanguage(t *testing.T) {
	a := newAdminEnv(t)
	bob := a.sessionID(a.bob)
	for _, tc := range []struct {
		accept string
		want   []string
	}{
		{"de", []string{`<html lang="de">`, "Sitzungen filtern", "Auswählen: bob, Chrome unter Windows, 203.0.113.77", "Beenden: bob", "Alle auf dieser Seite auswählen"}},
		{"fr", []string{`<html lang="fr">`, "Filtrer les sessions", "Sélectionner\u00a0: bob, Chrome sur Windows"}},
		{"ja", []string{`<html lang="ja">`, "セッションを絞り込む", "選択：bob、Chrome（Windows）"}},
		{"nl", []string{`<html lang="nl">`, "sessies gevonden."}},
	} {
		h := http.Header{"Accept-Language": {tc.accept}}
		body := html.UnescapeString(readBody(t, a.do(call{method: "GET", target: "/admin/sessions/", token: a.admin, header: h})))
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s admin list lacks %q", tc.accept, w)
			}
		}
		body = html.UnescapeString(readBody(t, a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/end", token: a.admin, header: h})))
		if want := catalogFor(tc.accept).N("confirm.admin.title", 1); !strings.Contains(body, want) {
			t.Errorf("%s confirmation lacks %q", tc.accept, want)
		}
		body = html.UnescapeString(readBody(t, a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/", token: a.admin, header: h})))
		if want := catalogFor(tc.accept).T("detail.title"); !strings.Contains(body, "<h1>"+want+"</h1>") {
			t.Errorf("%s detail lacks %q", tc.accept, want)
		}
	}
	_ = url.Values{}
}
