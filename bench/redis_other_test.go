//go:build !unix

package bench

import "testing"

// Without unix, internal/redistest (and so Redis) is not available: the
// Redis modes of BenchmarkLoad and BenchmarkCreate are left out.

func benchLoadRedis(b *testing.B, fx *loadFixture) {}

func benchCreateRedis(b *testing.B) {}

func closeRedis() {}
