package pgstore

// Backend-level benchmarks. The Store-level ones on PostgreSQL (cached and
// uncached Load against raw pgx and scs, Create with 1 and 64 writers, the
// revocation latency between two instances) are in bench/, beside the
// bbolt ones, where the report judges them.

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

// Benchmarks run on the test binary's throwaway cluster (fsync and
// synchronous_commit on, unix socket). Run them with
//
//	go test -run '^$' -bench . -benchtime 2000x ./pgstore/

// BenchmarkGetVsRawSelect interleaves Backend.Get of one record with a raw
// pgx SELECT of the same row by primary key on a pool of its own, and
// reports both per-operation times and their ratio: what the Backend adds
// over the cheapest possible read.
func BenchmarkGetVsRawSelect(b *testing.B) {
	e := sharedEnv(b)
	be := e.open(b, 0, nil)
	ctx := context.Background()
	r := rec("alice", 0, time.Hour)
	mustCreate(b, be, r)
	raw, err := pgxpool.New(ctx, e.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	q := `SELECT id, hash, user_id, ip, user_agent, created, last_seen, expires, identity, vals FROM ` + e.quoted() + ` WHERE id = $1`
	var got backend.Record
	var rawT, getT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := be.Get(ctx, r.ID, &got, true); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := scanRecord(raw.QueryRow(ctx, q, r.ID[:]), &got, true); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		getT += t1.Sub(t0)
		rawT += t2.Sub(t1)
	}
	b.ReportMetric(float64(getT.Nanoseconds())/float64(b.N), "ns/get")
	b.ReportMetric(float64(rawT.Nanoseconds())/float64(b.N), "ns/raw")
	b.ReportMetric(float64(getT)/float64(rawT), "get/raw")
}

// BenchmarkCreate measures Backend.Create with 1 and 64 concurrent writers
// (each Create is one durable commit; PostgreSQL groups commits).
func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(map[int]string{1: "writers=1", 64: "writers=64"}[writers], func(b *testing.B) {
			e := sharedEnv(b)
			if n := os.Getenv("PGSTORE_BENCH_CONNS"); n != "" {
				e.dsn += " pool_max_conns=" + n
			}
			be := e.open(b, 0, nil)
			recs := make([]*backend.Record, b.N)
			for i := range recs {
				recs[i] = rec("u", time.Duration(i), time.Hour)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if err := create(be, context.Background(), recs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
		})
	}
}

// BenchmarkChangeFeed measures a change on one Backend reaching another's
// feed: from the start of Delete on A to Changed on B.
func BenchmarkChangeFeed(b *testing.B) {
	e := sharedEnv(b)
	a := e.open(b, 0, nil)
	o := e.open(b, 0, nil)
	f := storetest.Subscribe(b, o)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	recs := make([]*backend.Record, b.N)
	for i := range recs {
		recs[i] = rec("u", time.Duration(i), time.Hour)
	}
	mustCreate(b, a, recs...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := del(a, ctx, recs[i].ID, nil); err != nil {
			b.Fatal(err)
		}
		ev := f.Wait(b, "changed", 5*time.Second)
		lat = append(lat, ev.At.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(storetest.Percentile(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(storetest.Percentile(lat, 99).Nanoseconds()), "p99-ns")
}
