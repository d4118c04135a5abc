package pgstore

import (
	"slices"
	"testing"

	"github.com/usersessions/usersessions/backend"
)

// FuzzParseNotice feeds arbitrary payloads to the change-feed parser (a
// notice may come from any client of the database): it must not panic, and
// what it accepts must encode back to a payload that parses the same.
func FuzzParseNotice(f *testing.F) {
	f.Add(notices("0123abcd", []backend.ID{{1}, {2, 3}})[0])
	f.Add("v1 tag")
	f.Add("v1")
	f.Add("v2 tag 00")
	f.Add("v1 tag " + "zz000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, payload string) {
		tag, ids, ok := parseNotice(payload)
		if !ok {
			return
		}
		again := notices(tag, ids)
		if len(ids) == 0 {
			return // nothing to send: notices makes no payload
		}
		var all []backend.ID
		for _, p := range again {
			tag2, ids2, ok := parseNotice(p)
			if !ok || tag2 != tag {
				t.Fatalf("re-encoded %q does not parse back (tag %q vs %q)", p, tag2, tag)
			}
			all = append(all, ids2...)
		}
		if !slices.Equal(all, ids) {
			t.Fatalf("round trip changed the IDs")
		}
	})
}
