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
