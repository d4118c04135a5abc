package control

import (
	"net/url"
	"testing"

	"github.com/usersessions/usersessions"
)

// FuzzQueries: any query either is refused or parses into what the
// client writes back to the same query; nothing panics.
func FuzzQueries(f *testing.F) {
	for _, seed := range []string{
		"", "user=alice&state=active&limit=10", "anonymous=1&ip=203.0.113.7", "ip=2001:db8::/32&q=ali&after=AaJB",
		"state=expired", "state=any", "limit=-1", "users=x", "user=a&user=b", "ip=%zz", "reason=admin&by=admin:root",
		"keep=abc&reason=x%0Ay", "by=" + url.QueryEscape("\x7f"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if filter, limit, err := parseList(q); err == nil {
			back, err := listQuery(filter, limit)
			if err != nil {
				t.Fatalf("%q parsed to %+v, %d, which does not write back: %v", raw, filter, limit, err)
			}
			filter2, limit2, err := parseList(back)
			if err != nil || filter2 != filter || limit2 != limit {
				t.Fatalf("%q -> %+v %d -> %q -> %+v %d, %v", raw, filter, limit, back.Encode(), filter2, limit2, err)
			}
		}
		if o, get, err := parseEnd(q, "keep"); err == nil {
			back, err := endQuery(o, get("keep"))
			if err != nil {
				t.Fatalf("%q parsed to %+v, which does not write back: %v", raw, o, err)
			}
			o2, get2, err := parseEnd(back, "keep")
			if err != nil || o2 != o || get2("keep") != get("keep") {
				t.Fatalf("%q -> %+v -> %q -> %+v, %v", raw, o, back.Encode(), o2, err)
			}
		}
	})
}

// Every State has a name both ends know.
func TestStates(t *testing.T) {
	for _, st := range []usersessions.State{usersessions.AnyState, usersessions.ActiveOnly, usersessions.ExpiredOnly} {
		q, err := listQuery(usersessions.Filter{State: st}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f, _, err := parseList(q); err != nil || f.State != st {
			t.Errorf("state %d: %+v, %v", st, f, err)
		}
	}
}
