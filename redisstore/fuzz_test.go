package redisstore

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/usersessions/usersessions/backend"
)

// The decoders of what the server holds or sends: never a panic, and what
// they accept reads back the same.

func FuzzParseNotice(f *testing.F) {
	id := backend.ID{1, 2, 3}
	for _, s := range []string{"v1 0123456789abcdef " + id.String(), "v1 tag", "v2 x y", "", "v1  " + id.String() + " x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		tag, ids, ok := parseNotice(payload)
		if !ok {
			return
		}
		texts := make([]string, len(ids))
		for i, id := range ids {
			texts[i] = id.String()
		}
		tag2, ids2, ok2 := parseNotice(strings.Join(append([]string{"v1", tag}, texts...), " "))
		if !ok2 || tag2 != tag || !slices.Equal(ids, ids2) {
			t.Fatalf("%q: parsed %q %v, again %q %v %v", payload, tag, ids, tag2, ids2, ok2)
		}
	})
}

func FuzzParseLocator(f *testing.F) {
	for _, s := range []string{"a", "ualice", "u", "m0123456789abcdef00000001aualice", newMarker(locatorOf(""), locatorOf("bob")).String(), "m", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := parseLocator(s)
		if !ok {
			return
		}
		l2, ok2 := parseLocator(l.String())
		if !ok2 || l2 != l {
			t.Fatalf("%q: parsed %+v, its String %q parses to %+v %v", s, l, l.String(), l2, ok2)
		}
		if l.moving() {
			from, to := l.ends()
			if from.moving() || to.moving() {
				t.Fatalf("%q: a marker of a marker", s)
			}
		}
	})
}

func FuzzTimeText(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 1 << 62, -1 << 63, 1<<63 - 1} {
		f.Add(v, timeText(v))
	}
	f.Fuzz(func(t *testing.T, v int64, s string) {
		if got, ok := parseTime(timeText(v)); !ok || got != v {
			t.Fatalf("%d: timeText %q reads back %d %v", v, timeText(v), got, ok)
		}
		if w, ok := parseTime(s); ok && timeText(w) != s {
			t.Fatalf("%q reads as %d, written %q", s, w, timeText(w))
		}
		// Byte order is numeric order.
		if u, ok := parseTime(s); ok && (strings.Compare(timeText(v), s) < 0) != (v < u) {
			t.Fatalf("%d vs %d: text order disagrees", v, u)
		}
	})
}

// netstrOf is the scripts' netstr, in Go.
func netstrOf(parts []string) string {
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(strconv.Itoa(len(p)) + ":" + p)
	}
	return sb.String()
}

func FuzzHistoryEntry(f *testing.F) {
	r := rec("alice", 0, 1e9)
	fields := recordArgs(r, r.Expires)
	parts := []string{timeText(5), "revoked", "by", r.ID.String()}
	for i, name := range fieldNames {
		parts = append(parts, name, fields[i])
	}
	f.Add(netstrOf(parts))
	f.Add("3:abc")
	f.Add("99999999999:x")
	b := &Backend{base: "p:"}
	g := b.userGroup("alice")
	f.Fuzz(func(t *testing.T, s string) {
		if parts, err := splitNetstr(s); err == nil && netstrOf(parts) != s {
			t.Fatalf("%q splits into %q, which joins into %q", s, parts, netstrOf(parts))
		}
		e, err := b.parseEntry(g, s)
		if err == nil && e.UserID != "alice" {
			t.Fatalf("%q: an entry of %q in alice's history", s, e.UserID)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	r := rec("", 0, 1e9)
	f.Add(strings.Join(recordArgs(r, r.Expires), "\x00"))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		values := strings.Split(s, "\x00")
		var pairs []string
		for i, v := range values {
			if i < len(fieldNames) {
				pairs = append(pairs, fieldNames[i], v)
			}
		}
		var got backend.Record
		if _, err := parseRecord(r.ID, fromPairs(pairs), &got, true); err == nil {
			if again := recordArgs(&got, got.Expires); again[0] != values[0] {
				t.Fatalf("%q: the hash reads back differently", s)
			}
		}
	})
}
