// Package needs holds the project's one rule for tests that need something
// from outside Go (PostgreSQL, Redis, Chromium, curl, axe-core): where it
// is missing they skip with a message that says how to install it, except
// under CI=true, where .ci/run has installed everything and a skip would
// hide a test that did not run, so they fail.
package needs

import (
	"os"
	"testing"
)

// CI reports whether the tests run under CI=true.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing reports that something tb needs is not there, why saying what
// and how to get it: it skips tb, or fails it under CI=true.
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if CI() {
		tb.Fatalf("CI=true, but %s", why)
	}
	tb.Skipf("skipping: %s", why)
}
