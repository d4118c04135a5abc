package redistest

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// A restart keeps the data with Persist and loses it without; a cluster
// owns every slot; prefixes never repeat.
func TestServers(t *testing.T) {
	for _, persist := range []bool{true, false} {
		s := Start(t, Config{Persist: persist})
		s.Do(t, "SET", "k", "v")
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		if got, want := s.Do(t, "GET", "k"), map[bool]string{true: "v", false: ""}[persist]; got != want {
			t.Fatalf("persist %v: after a restart GET k = %q, want %q", persist, got, want)
		}
	}
	c := Start(t, Config{Cluster: true})
	if info := c.Do(t, "CLUSTER", "INFO"); !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO:\n%s", info)
	}
	if !strings.HasPrefix(c.URL(), "redis://127.0.0.1:") {
		t.Fatalf("cluster URL %q", c.URL())
	}
	sh := Shared(t)
	if a, b := sh.Prefix("p"), sh.Prefix("p"); a == b {
		t.Fatalf("Prefix gave %q twice", a)
	}
	if sh != Shared(t) {
		t.Fatal("Shared started a second server")
	}
}
