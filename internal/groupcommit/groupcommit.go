// Package groupcommit shares one durable commit among the writes that
// arrive while the previous one is being made: the group commit of the
// bbolt backend and of pgstore's Create.
//
// Every durable commit waits for a flush to disk (an fsync, a WAL flush),
// which takes far longer than the write itself. A committer runs one batch
// at a time; writes that arrive while it is busy queue up and then share
// the next batch and its one flush. So a lone writer pays no added delay
// (no timer, unlike bbolt's Batch: the committer takes what is queued and
// never waits for more), and throughput grows with the number of writers.
package groupcommit

import (
	"context"
	"runtime"
	"sync"

	"github.com/usersessions/usersessions/backend"
)

// Group runs the writes given to Do in batches. Start it once; it stops
// when the quit channel given to New is closed.
type Group[T any] struct {
	ops    chan *op[T]
	quit   <-chan struct{}
	max    int
	commit func(batch []T) error
	alone  func(err error) bool
	loops  sync.WaitGroup
}

// op is one write waiting for a committer.
type op[T any] struct {
	v    T
	err  error
	done chan struct{}
}

// New returns a Group that commits up to max writes at once with commit,
// which must make the whole batch durable or none of it. When commit fails
// a batch of several writes and alone(err) is true, each write runs again
// in a batch of its own, so one failing write cannot take the others down
// with it (alone returns false for errors every write would meet, such as
// a lost connection). The Group stops when quit is closed.
func New[T any](quit <-chan struct{}, max int, commit func(batch []T) error, alone func(err error) bool) *Group[T] {
	return &Group[T]{ops: make(chan *op[T]), quit: quit, max: max, commit: commit, alone: alone}
}

// Start starts n committers. More than one lets a batch fill while
// another waits for its flush.
func (g *Group[T]) Start(n int) {
	for range n {
		g.loops.Add(1)
		go g.loop()
	}
}

// Wait waits until the committers have stopped (quit closed). Writes
// accepted before are finished by then.
func (g *Group[T]) Wait() { g.loops.Wait() }

// Do hands v to a committer and waits until it is durable. It returns
// commit's error, backend.ErrClosed once quit is closed, or ctx's error if
// ctx ends before a committer took v; once taken, the outcome is the
// committer's, not ctx's.
func (g *Group[T]) Do(ctx context.Context, v T) error {
	o := &op[T]{v: v, done: make(chan struct{})}
	select {
	case g.ops <- o:
	case <-g.quit:
		return backend.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-o.done
	return o.err
}

func (g *Group[T]) loop() {
	defer g.loops.Done()
	batch := make([]*op[T], 0, g.max)
	values := make([]T, 0, g.max)
	for {
		select {
		case o := <-g.ops:
			batch = append(batch[:0], o)
		case <-g.quit:
			return
		}
		// Writers woken by the last commit are about to queue again: let
		// them run first, so they join this batch instead of the next.
		runtime.Gosched()
	gather:
		for len(batch) < g.max {
			select {
			case o := <-g.ops:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		values = values[:0]
		for _, o := range batch {
			values = append(values, o.v)
		}
		g.run(batch, values)
		clear(values) // drop references to finished writes
	}
}

// run commits one batch and reports to each of its writers.
func (g *Group[T]) run(batch []*op[T], values []T) {
	err := g.commit(values)
	if err != nil && len(batch) > 1 && g.alone(err) {
		for i, o := range batch {
			g.run([]*op[T]{o}, values[i:i+1])
		}
		return
	}
	for _, o := range batch {
		o.err = err
		close(o.done)
	}
}
