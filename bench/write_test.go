package bench

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/usersessions/usersessions"
)

// BenchmarkCreate creates sessions from 1, 8 and 64 concurrent writers on a
// fresh store. Every Create is durable when it returns (bbolt fsyncs each
// commit); concurrent writers share commits through the store's group
// commit. creates/s is the throughput; creates/commit the mean batch;
// written-B/op the bytes the process wrote to the file per Create (Linux).
func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := usersessions.Open(filepath.Join(b.TempDir(), "create.db"), benchOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			createWith(b, s, writers, true)
		})
	}
	benchCreatePG(b)
	benchCreateRedis(b)
}

// createWith runs b.N Creates on s from writers concurrent goroutines and
// reports creates/s, creates/commit (when s counts commits) and, when
// written (a store in this process's files), written-B/op (Linux).
func createWith(b *testing.B, s *usersessions.Store, writers int, written bool) {
	users := make([]string, 1024)
	for i := range users {
		users[i] = fmt.Sprintf("user-%06d", i)
	}
	commits, before := s.Stats().Commits, writtenBytes()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				sess, err := s.Create(bg, users[i%int64(len(users))], client)
				if err != nil {
					failed.Store(true)
					b.Error(err)
					return
				}
				sink.Add(int64(len(sess.Token)))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	if n := s.Stats().Commits - commits; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "creates/commit")
	}
	if w := writtenBytes(); written && before >= 0 && w >= 0 {
		b.ReportMetric(float64(w-before)/float64(b.N), "written-B/op")
	}
}
