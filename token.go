package usersessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"unsafe"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/base64url"
)

// Tokens and IDs.
//
// A session has a 128-bit ID (its public handle and the record's key) and a
// 256-bit random secret. The ID is 48 bits of creation time in milliseconds
// followed by 80 random bits: sessions created together sit together in the
// B+tree, so inserts append to the same pages, and ClearExpired, which
// removes sessions in about the order they were created, rewrites few pages
// however large the file. The time is no secret (the views show it), and
// the ID never grants access. The token handed to the client is the two
// together, ID||secret, as 64 characters of unpadded URL-safe base64: the
// "split token" pattern. Load decodes the ID from the token, reads that one
// record, and compares SHA-256(secret) with the stored hash in constant time.
// So the database holds no usable credential, a lookup costs one key read,
// and Rotate can swap the secret while the ID stays stable for the views.
const (
	idBytes     = len(backend.ID{})
	secretBytes = 32
	tokenBytes  = idBytes + secretBytes

	// TokenLength is the length of a token's text form (Session.Token).
	TokenLength = tokenBytes * 8 / 6 // 64
)

type (
	secret    [secretBytes]byte
	tokenHash = [sha256.Size]byte // SHA-256 of a token's secret: all a Store keeps of it
)

// idTimeBytes is the length of the ID's time prefix.
const idTimeBytes = 6

// cacheKey is the ID's key in the cache: its text's characters 8 to 15 (48
// random bits, right after the 48 time bits), mixed so that every bit of
// the key varies. They are also the token's characters 8 to 15, so a cache
// hit finds its entry straight from the cookie's text (tokenCacheKey)
// without decoding it. Collisions only cost a miss: an entry also holds the
// full ID and token, which are checked.
func cacheKey(id backend.ID) uint64 {
	var text [8]byte
	base64.RawURLEncoding.Encode(text[:], id[idTimeBytes:idTimeBytes+6])
	return mixKey(binary.LittleEndian.Uint64(text[:]))
}

// tokenCacheKey is the cacheKey of the ID a token starts with. The token
// must be at least 16 characters long (callers check TokenLength).
func tokenCacheKey(token string) uint64 {
	t := token[8:16]
	return mixKey(uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
		uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56)
}

// mixKey spreads eight base64 characters over all 64 bits: ristretto picks
// its shard, and the cache its generation stripe, from the low bits.
func mixKey(x uint64) uint64 {
	x *= 0x9E3779B97F4A7C15 // 2^64 / golden ratio
	return x ^ x>>32
}

// activityKey is the ID's key in the activity table: 64 of its random bits.
func activityKey(id backend.ID) uint64 {
	return binary.BigEndian.Uint64(id[idBytes-8:])
}

// equalConstantTime compares two strings in time that depends only on
// their lengths.
func equalConstantTime(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	x := unsafe.Slice(unsafe.StringData(a), len(a)) // read-only views, no copies
	y := unsafe.Slice(unsafe.StringData(b), len(b))
	var v uint64
	i := 0
	for ; i+8 <= len(x); i += 8 { // a word at a time: tokens are 64 bytes
		v |= binary.LittleEndian.Uint64(x[i:]) ^ binary.LittleEndian.Uint64(y[i:])
	}
	for ; i < len(x); i++ {
		v |= uint64(x[i] ^ y[i])
	}
	return v == 0
}

// newSessionID returns a new ID for a session created at now (Unix
// nanoseconds).
func newSessionID(now int64) (backend.ID, error) {
	var id backend.ID
	ms := uint64(max(now, 0) / 1e6)
	for i := idTimeBytes - 1; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	_, err := rand.Read(id[idTimeBytes:])
	return id, err
}

func newSecret() (secret, error) {
	var s secret
	_, err := rand.Read(s[:])
	return s, err
}

func (s *secret) hash() tokenHash { return sha256.Sum256(s[:]) }

func formatToken(id backend.ID, sec secret) string {
	var raw [tokenBytes]byte
	copy(raw[:], id[:])
	copy(raw[idBytes:], sec[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// parseToken splits a token into ID and secret. It rejects anything that is
// not exactly a canonical 64-character token before any other work, so junk
// and oversized cookies cost nothing.
func parseToken(token string) (id backend.ID, sec secret, ok bool) {
	if len(token) != TokenLength {
		return id, sec, false
	}
	var raw [tokenBytes]byte
	if !base64url.Decode(raw[:], token) {
		return id, sec, false
	}
	copy(id[:], raw[:idBytes])
	copy(sec[:], raw[idBytes:])
	return id, sec, true
}
