package control

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usersessions/usersessions"
)

// The query of each request is parsed here, and written here for Client,
// so both ends agree on it (FuzzQueries checks that they do).

// states names the values of usersessions.State in a query.
var states = map[usersessions.State]string{
	usersessions.AnyState:    "any",
	usersessions.ActiveOnly:  "active",
	usersessions.ExpiredOnly: "expired",
}

// params checks that q has only the allowed parameters, each once, and
// returns a lookup of their values ("" when absent).
func params(q url.Values, allowed ...string) (func(string) string, error) {
	for k, vs := range q {
		switch {
		case !slices.Contains(allowed, k):
			return nil, fmt.Errorf("%w: unknown query parameter %q (known: %s)", errBadRequest, k, strings.Join(allowed, ", "))
		case len(vs) > 1:
			return nil, fmt.Errorf("%w: query parameter %q given %d times", errBadRequest, k, len(vs))
		}
	}
	return q.Get, nil
}

// parseList reads the query of GET /v1/sessions: the filter and the limit
// (0: none).
func parseList(q url.Values) (f usersessions.Filter, limit int, err error) {
	get, err := params(q, "user", "anonymous", "state", "ip", "q", "after", "limit")
	if err != nil {
		return f, 0, err
	}
	f.UserID, f.Search, f.After = get("user"), get("q"), get("after")
	if v := get("anonymous"); v != "" {
		if f.Anonymous, err = strconv.ParseBool(v); err != nil {
			return f, 0, fmt.Errorf("%w: anonymous=%q: want true or false", errBadRequest, v)
		}
	}
	if v := get("state"); v != "" {
		found := false
		for st, name := range states {
			if name == v {
				f.State, found = st, true
			}
		}
		if !found {
			return f, 0, fmt.Errorf("%w: state=%q: want active, expired or any", errBadRequest, v)
		}
	}
	if v := get("ip"); v != "" {
		if f.IPPrefix, err = parsePrefix(v); err != nil {
			return f, 0, fmt.Errorf("%w: ip=%q: want an address or a prefix such as 203.0.113.0/24", errBadRequest, v)
		}
	}
	if v := get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return f, 0, fmt.Errorf("%w: limit=%q: want a number of sessions, 0 or more", errBadRequest, v)
		}
	}
	return f, limit, nil
}

// parsePrefix reads a prefix, or an address as the prefix of just itself.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return a.Prefix(a.BitLen())
}

// listQuery is the query of GET /v1/sessions for f and limit.
func listQuery(f usersessions.Filter, limit int) (url.Values, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("user", f.UserID)
	set("q", f.Search)
	set("after", f.After)
	if f.Anonymous {
		q.Set("anonymous", "true")
	}
	name, ok := states[f.State]
	if !ok {
		return nil, fmt.Errorf("usersessions: control socket: unknown Filter.State %d", f.State)
	}
	if f.State != usersessions.AnyState {
		q.Set("state", name)
	}
	if f.IPPrefix.IsValid() {
		q.Set("ip", f.IPPrefix.String())
	}
	if limit < 0 {
		return nil, errors.New("usersessions: control socket: a negative limit")
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q, nil
}

// maxBy bounds EndOptions.By on the wire: it names a session or an
// administrator, never a text.
const maxBy = 256

// parseEnd reads the EndOptions of the queries that end sessions; extra
// names another parameter the endpoint takes (keep).
func parseEnd(q url.Values, extra ...string) (usersessions.EndOptions, func(string) string, error) {
	var o usersessions.EndOptions
	get, err := params(q, append([]string{"reason", "by"}, extra...)...)
	if err != nil {
		return o, nil, err
	}
	o.Reason, o.By = usersessions.EndReason(get("reason")), get("by")
	if err := checkEnd(o); err != nil {
		return o, nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return o, get, nil
}

// checkEnd refuses EndOptions that are not a plain word and a short
// printable text: they are kept in History and shown to people.
func checkEnd(o usersessions.EndOptions) error {
	for _, r := range o.Reason {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == ':' || r == '.') {
			return fmt.Errorf("reason=%q: want a word such as revoked or admin", o.Reason)
		}
	}
	if len(o.Reason) > 64 {
		return fmt.Errorf("reason=%q: longer than 64 bytes", o.Reason)
	}
	if len(o.By) > maxBy || !utf8.ValidString(o.By) || strings.ContainsFunc(o.By, unicode.IsControl) {
		return fmt.Errorf("by=%q: want a session ID or admin:USER, at most %d bytes of printable text", o.By, maxBy)
	}
	return nil
}

// endQuery is the query for o, plus keep when not "".
func endQuery(o usersessions.EndOptions, keep string) (url.Values, error) {
	if err := checkEnd(o); err != nil {
		return nil, fmt.Errorf("usersessions: control socket: %v", err)
	}
	q := url.Values{}
	if o.Reason != "" {
		q.Set("reason", string(o.Reason))
	}
	if o.By != "" {
		q.Set("by", o.By)
	}
	if keep != "" {
		q.Set("keep", keep)
	}
	return q, nil
}

// segment escapes s as one path segment: "." and ".." too, which a server
// would otherwise take for the folder names and clean away.
func segment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ".", "%2E")
}
