package usersessions

import (
	"fmt"
	"testing"
	"time"
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
	data := encodeRecord(nil, &record{userID: "alice", userAgent: clientA.UserAgent, ip: clientA.IP, rawValues: values})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(data, true); err != nil {
			b.Fatal(err)
		}
	}
}
