//go:build !unix

package bench

import "testing"

// Without unix, internal/pgtest (and so PostgreSQL) is not available: the
// PostgreSQL modes of BenchmarkLoad and BenchmarkCreate are left out.

func benchLoadPG(b *testing.B, fx *loadFixture) {}

func benchCreatePG(b *testing.B) {}

func runTests(m *testing.M) int { return m.Run() }
