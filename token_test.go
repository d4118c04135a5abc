package usersessions

import (
	"crypto/rand"
	"testing"
)

// TestCacheKeyFromToken checks that a cache hit, which reads the key off the
// token's text, finds what the ID's paths stored under the ID's key, and
// that the key's low bits, which pick ristretto's shard and the generation
// stripe, are spread.
func TestCacheKeyFromToken(t *testing.T) {
	lowBytes := map[uint64]bool{}
	for range 4096 {
		id, err := newSessionID(0)
		if err != nil {
			t.Fatal(err)
		}
		var sec secret
		rand.Read(sec[:])
		if got, want := tokenCacheKey(formatToken(id, sec)), cacheKey(id); got != want {
			t.Fatalf("ID %s: tokenCacheKey = %#x, cacheKey = %#x", id, got, want)
		}
		lowBytes[cacheKey(id)%256] = true
	}
	if len(lowBytes) < 200 { // 4096 random keys cover about all 256
		t.Fatalf("the keys' low byte takes %d values of 256", len(lowBytes))
	}
}
