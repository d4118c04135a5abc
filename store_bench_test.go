package usersessions

import (
	"fmt"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Benchmarks of the store's own hot paths, for profiling inside the package.
// The side-by-side comparisons with the raw libraries live in bench/.

func benchStore(b *testing.B, cached bool) (*Store, *Session) {
	s := openTest(b, cached, &Options{TouchInterval: time.Hour})
	sess := mustCreate(b, s, "alice", clientA)
	sess.Set("csrf", "0123456789abcdef")
	sess.Set("n", 1)
	if err := s.Save(ctx, sess); err != nil {
		b.Fatal(err)
	}
	for range 3 {
		s.Load(ctx, sess.Token)
		settle(s)
	}
	return s, sess
}

func BenchmarkLoad(b *testing.B) {
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			s, sess := benchStore(b, cached)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Load(ctx, sess.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadTouch(b *testing.B) {
	s, sess := benchStore(b, true)
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Load(ctx, sess.Token)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Touch(ctx, got.ID, clientA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	values, _ := encodeValues(nil, toValues(map[string]any{"csrf": "0123456789abcdef", "n": 1}))
	data := encodeRecord(nil, &backend.Record{UserID: "alice", UserAgent: clientA.UserAgent, IP: clientA.IP, Values: values})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(data, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetManyKeys sets n distinct keys on a fresh session: the cost per
// Set must stay flat as n grows (it was linear: 50,000 keys took seconds).
// Compare ns/op of n=50000 with n=100 in one run; the ratio is per key.
func BenchmarkSetManyKeys(b *testing.B) {
	for _, n := range []int{100, 50000} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%d", i)
		}
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			for b.Loop() {
				var s Session
				for _, k := range keys {
					s.Set(k, 1)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}

// BenchmarkAllByUser lists every session of one user with All through its
// pages: per session it must cost about what ListByUser does, however many
// sessions the user has (it re-read the user's whole index on every page).
func BenchmarkAllByUser(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := openTest(b, false, nil)
			for range n {
				mustCreate(b, s, "alice", clientA)
			}
			for b.Loop() {
				got := 0
				for _, err := range s.All(ctx, Filter{UserID: "alice"}) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("All listed %d of %d", got, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/session")
		})
	}
}
