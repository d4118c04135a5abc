package usersessions

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/base64url"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder: it must
// return an error or a record, never panic or allocate without bound, and
// whatever it accepts must encode back to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	values, _ := encodeValues(nil, toValues(map[string]any{"s": "x", "n": 1, "l": []any{map[string]any{"k": 1.5}}, "t": time.Unix(1, 2)}))
	f.Add(encodeRecord(nil, &backend.Record{UserID: "alice", UserAgent: "ua", Created: 1, LastSeen: 2, Expires: 3, Values: values}))
	f.Add(encodeRecord(nil, &backend.Record{Values: []byte{0}}))
	f.Add([]byte{recordVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data, true)
		var id backend.ID
		id[0], id[15] = 1, 0xFF
		withID, errID := decodeRecordOf(&id, data, true)
		if (err == nil) != (errID == nil) {
			t.Fatalf("decodeRecord: %v, decodeRecordOf: %v", err, errID)
		}
		if err != nil {
			return
		}
		if withID.idText != id.String() || withID.UserID != r.UserID || !bytes.Equal(withID.Values, r.Values) {
			t.Fatalf("decodeRecordOf: ID text %q (want %q), or the record differs", withID.idText, id.String())
		}
		again, err := decodeRecord(encodeRecord(nil, &r.Record), true)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if again.UserID != r.UserID || again.IP != r.IP || again.Expires != r.Expires || !bytes.Equal(again.Values, r.Values) {
			t.Fatalf("round trip changed the record")
		}
	})
}

// FuzzDecodeValues checks the values decoder alone, with registered types.
func FuzzDecodeValues(f *testing.F) {
	seed, _ := encodeValues(nil, toValues(map[string]any{"p": point{1, 2}, "c": color{1, 2, 3}, "b": []byte("x"), "d": time.Second}))
	f.Add(seed)
	f.Add([]byte{1, 1, 'k', byte(tagRegistered), 3, 'b', 'a', 'd', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeValues(data)
		if err != nil {
			return
		}
		if _, err := encodeValues(nil, v); err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
	})
}

// FuzzParseToken checks that only canonical tokens parse, that they format
// back to themselves, and that the cache key read off a token's text is its
// ID's (a hit finds what the ID's paths stored).
func FuzzParseToken(f *testing.F) {
	var id backend.ID
	var sec secret
	f.Add(formatToken(id, sec))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		id, sec, ok := parseToken(token)
		if ok && formatToken(id, sec) != token {
			t.Fatalf("token %q parses but formats as %q", token, formatToken(id, sec))
		}
		if ok && tokenCacheKey(token) != cacheKey(id) {
			t.Fatalf("token %q: tokenCacheKey %#x, its ID's cacheKey %#x", token, tokenCacheKey(token), cacheKey(id))
		}
		if pid, ok := backend.ParseID(token); ok && pid.String() != token {
			t.Fatalf("ID %q parses but formats as %q", token, pid.String())
		}
	})
}

// FuzzBase64 checks the hand-written decoder against encoding/base64.
func FuzzBase64(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("_-_-_-_-_-_-_-_-_-_-_w")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\r\n") {
			// encoding/base64 skips newlines; tokens must not contain any.
			if base64url.Decode(make([]byte, idBytes), s) || base64url.Decode(make([]byte, tokenBytes), s) {
				t.Fatalf("decoded %q, which has a newline", s)
			}
			return
		}
		for _, size := range []int{idBytes, tokenBytes, 1, 2} {
			dst := make([]byte, size)
			ok := base64url.Decode(dst, s)
			want, err := base64.RawURLEncoding.Strict().DecodeString(s)
			stdOK := err == nil && len(want) == size
			if ok != stdOK || ok && !bytes.Equal(dst, want) {
				t.Fatalf("decode(%q, %d bytes) = %x, %v; encoding/base64 says %x, %v", s, size, dst, ok, want, err)
			}
		}
	})
}

// FuzzEqualConstantTime checks the word-wise comparison against ==.
func FuzzEqualConstantTime(f *testing.F) {
	f.Add("abc", "abd")
	f.Add(strings.Repeat("x", 64), strings.Repeat("x", 63)+"y")
	f.Fuzz(func(t *testing.T, a, b string) {
		if equalConstantTime(a, b) != (a == b) {
			t.Fatalf("equalConstantTime(%q, %q) != (a == b)", a, b)
		}
		if !equalConstantTime(a, a) {
			t.Fatalf("%q differs from itself", a)
		}
	})
}

// FuzzDecodeEnded feeds arbitrary bytes to the history entry decoder: an
// error or an entry, never a panic; what it accepts encodes back the same.
func FuzzDecodeEnded(f *testing.F) {
	r := &backend.Record{UserID: "alice", UserAgent: "ua", Created: 1, LastSeen: 2, Expires: 3, Values: []byte{0}}
	f.Add(encodeEnded(nil, r, backend.Ending{Reason: string(EndLogout), By: "x"}, 99))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		id := backend.ID{1}
		e, until, err := decodeEnded(id, data)
		if err != nil {
			return
		}
		again, until2, err := decodeEnded(id, encodeEnded(nil, &e.Record, backend.Ending{Reason: e.Reason, By: e.By}, until))
		if err != nil || until2 != until || again.Reason != e.Reason || again.By != e.By || again.UserID != e.UserID {
			t.Fatalf("history entry round trip: %v", err)
		}
	})
}
