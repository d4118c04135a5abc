package httpx

import (
	"net/http"
	"strings"
)

// keepFromSharedCaches makes a response that carries a Set-Cookie for the
// session unstorable by shared caches (CDNs, reverse proxies), whatever the
// handler asked for. RFC 9111 lets a shared cache store a response with
// Set-Cookie, and then hand it, cookie and all, to the next visitor:
// "Vary: Cookie" does not stop that (the next visitor without a cookie
// matches), only "private" or "no-store" does.
//
// It removes the directives that address shared caches (public, s-maxage)
// and adds "private" unless "private" or "no-store" is there already; the
// browser's own cache keeps whatever max-age the handler gave. Fields that
// CDNs obey instead of Cache-Control (CDN-Cache-Control and other
// *-CDN-Cache-Control fields of RFC 9213, Surrogate-Control) are removed.
func keepFromSharedCaches(h http.Header) {
	for name := range h {
		if name == "Surrogate-Control" || name == "Cdn-Cache-Control" || strings.HasSuffix(name, "-Cdn-Cache-Control") {
			delete(h, name)
		}
	}
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		h["Cache-Control"] = []string{"private"}
		return
	}
	keep := make([]string, 1, 4) // keep[0]: room for "private"
	closed := false
	for _, line := range lines {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.TrimSpace(d)
			name, arg, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "":
				continue
			case "public", "s-maxage":
				continue
			case "private":
				if arg != "" {
					// private="Set-Cookie" lets a shared cache store the
					// rest of the response: not enough here.
					continue
				}
				closed = true
			case "no-store":
				closed = true
			}
			keep = append(keep, d)
		}
	}
	if closed {
		keep = keep[1:]
	} else {
		keep[0] = "private"
	}
	h["Cache-Control"] = []string{strings.Join(keep, ", ")}
}

// neverCache marks a response the middleware made up itself (a 500) as not
// to be stored anywhere, replacing what the handler had set.
func neverCache(h http.Header) {
	keepFromSharedCaches(h)
	h.Set("Cache-Control", "no-store")
}
