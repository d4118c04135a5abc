package httpx

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzIsLocalPath: whatever IsLocalPath accepts is a path on this site, as
// a browser reads it: one leading slash, no scheme, no host, no backslash.
func FuzzIsLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "https://evil", "/%2F%2Fevil", "/a#b", "javascript:x", "/\t/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsLocalPath(s) {
			return
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("IsLocalPath(%q) accepted a URL with scheme %q, host %q (%v)", s, u.Scheme, u.Host, err)
		}
		if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\t\r\n ") {
			t.Fatalf("IsLocalPath(%q) accepted a path a browser may read as another site", s)
		}
	})
}

// FuzzLoginURLFor: whatever page a visitor asked for, the login URL built
// for it keeps the login path and query, and carries in next= only a local
// path (or nothing).
func FuzzLoginURLFor(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/a?q=\\x", "/" + strings.Repeat("a", 2050), "/a?" + strings.Repeat("b", 2050), "/a#b&reauth=0"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, page string, reauth bool) {
		got := loginURLFor("/login?lang=nl#form", page, reauth)
		u, err := url.Parse(got)
		if err != nil || u.Path != "/login" || u.Fragment != "form" {
			t.Fatalf("loginURLFor(%q) = %q: not the login page (%v)", page, got, err)
		}
		q := u.Query()
		if next := q.Get(NextParam); next != "" && !IsLocalPath(next) || q.Get("lang") != "nl" || len(q[NextParam]) > 1 {
			t.Fatalf("loginURLFor(%q) = %q: query %v", page, got, q)
		}
		if want := map[bool]string{true: "1"}[reauth]; q.Get(reauthParam) != want || len(q[reauthParam]) > 1 {
			t.Fatalf("loginURLFor(%q, %v) = %q: reauth %q", page, reauth, got, q.Get(reauthParam))
		}
	})
}
