package redisstore

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// A record is a Redis hash with these fields:
//
//	h   the token's hash, 32 bytes
//	u   the user ID ("" for an anonymous session)
//	ip  the client's IP address as text ("" for none)
//	ua  the user agent
//	c, ls, x, d   created, last seen, expires, deadline: times (below)
//	i   identity, decimal
//	v   the encoded values (opaque bytes)
//	n   version, decimal: every write bumps it, so a read-change-write
//	    (Update) is applied only to the record it read
//
// Lua numbers are doubles, which cannot hold a Unix nanosecond time
// exactly, so scripts never compute with times: they compare them as
// strings. A time is written as 20 digits that sort like the int64 they
// stand for (timeText). Index scores, which Redis keeps as doubles, are
// times in microseconds (score): exact to the microsecond until the year
// 2255, and only ever used to find candidates that a script then checks
// exactly.

// timeText is t as 20 characters whose byte order is t's numeric order:
// "1" and 19 digits for t >= 0, "0" and 19 digits of t - MinInt64 below.
func timeText(t int64) string {
	if t >= 0 {
		return fmt.Sprintf("1%019d", t)
	}
	return fmt.Sprintf("0%019d", uint64(t)-1<<63)
}

// parseTime reads a timeText.
func parseTime(s string) (int64, bool) {
	if len(s) != 20 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	u, err := strconv.ParseUint(s[1:], 10, 64)
	if err != nil || u > math.MaxInt64 {
		return 0, false
	}
	if s[0] == '1' {
		return int64(u), true
	}
	return int64(u + 1<<63), true
}

// score is t in microseconds as an index score: rounded down, so a score
// is never later than the time it stands for.
func score(t int64) string {
	us := t / 1000
	if t < 0 && t%1000 != 0 {
		us--
	}
	return strconv.FormatInt(us, 10)
}

// recordArgs are the record's field values in the order the scripts take
// them (fieldNames): h, u, ip, ua, c, ls, x, d, i, v.
func recordArgs(r *backend.Record, deadline int64) []string {
	ip := ""
	if r.IP.IsValid() {
		ip = r.IP.WithZone("").String()
	}
	return []string{
		string(r.Hash[:]), r.UserID, ip, r.UserAgent,
		timeText(r.Created), timeText(r.LastSeen), timeText(r.Expires), timeText(deadline),
		strconv.FormatUint(r.Identity, 10), string(r.Values),
	}
}

// fieldNames are the fields recordArgs fills, in its order.
var fieldNames = [...]string{"h", "u", "ip", "ua", "c", "ls", "x", "d", "i", "v"}

// parseRecord reads the fields of a record (get returns a field's value
// and whether it is there) into r, with r.ID = id, and returns its version.
// A record that cannot be read gives an error wrapping ErrCorrupt, with
// r.ID and what could be read set.
func parseRecord(id backend.ID, get func(field string) (string, bool), r *backend.Record, values bool) (version string, err error) {
	*r = backend.Record{ID: id}
	bad := func(what string) (string, error) {
		return "", fmt.Errorf("redisstore: record %s: %s: %w", id, what, usersessions.ErrCorrupt)
	}
	h, ok := get("h")
	if !ok || len(h) != len(r.Hash) {
		return bad(fmt.Sprintf("hash of %d bytes", len(h)))
	}
	copy(r.Hash[:], h)
	r.UserID, _ = get("u")
	if ip, _ := get("ip"); ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return bad("IP address " + strconv.Quote(ip))
		}
		r.IP = addr
	}
	r.UserAgent, _ = get("ua")
	for _, t := range []struct {
		field string
		dst   *int64
	}{{"c", &r.Created}, {"ls", &r.LastSeen}, {"x", &r.Expires}} {
		s, _ := get(t.field)
		v, ok := parseTime(s)
		if !ok {
			return bad(fmt.Sprintf("time %s %q", t.field, s))
		}
		*t.dst = v
	}
	identity, _ := get("i")
	if r.Identity, err = strconv.ParseUint(identity, 10, 64); err != nil {
		return bad("identity " + strconv.Quote(identity))
	}
	if values {
		v, _ := get("v")
		r.Values = []byte(v)
	}
	version, _ = get("n")
	return version, nil
}

// fromPairs is a get over a flat list of field, value pairs (a script's
// HGETALL).
func fromPairs(pairs []string) func(string) (string, bool) {
	return func(field string) (string, bool) {
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i] == field {
				return pairs[i+1], true
			}
		}
		return "", false
	}
}

// fromMap is a get over a map of fields (a RESP3 HGETALL).
func fromMap(m map[string]string) func(string) (string, bool) {
	return func(field string) (string, bool) {
		v, ok := m[field]
		return v, ok
	}
}

// ttl is how long Redis itself keeps a record of r (and its locator), in
// milliseconds as text, "0" for always: its remaining absolute lifetime,
// counted from its last activity (never later than now, so never too
// short), plus expiryMargin. Redis's expiry is the backstop for records
// nobody cleans up; cleanup (DeleteExpired) normally removes them first,
// with their history entries. The lifetime is relative on purpose: a
// relative TTL does not depend on the app's clock agreeing with the
// server's.
func ttl(r *backend.Record) string {
	var left uint64 // exact for any two int64s, where int64 would overflow
	if r.Expires > r.LastSeen {
		left = uint64(r.Expires) - uint64(r.LastSeen)
	}
	if left >= uint64(maxTTL-expiryMargin) {
		return "0"
	}
	return strconv.FormatInt(int64(left)/1e6+expiryMargin.Milliseconds(), 10)
}
