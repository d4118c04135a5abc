package usersessions

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCrashRecovery runs a child process that writes sessions from several
// goroutines and prints each write as it is acknowledged, kills it with
// SIGKILL at a random moment, and checks that the reopened file has every
// acknowledged session (and none of the acknowledged deletions) and
// consistent indexes.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv("USERSESSIONS_CRASH_DB") != "" {
		t.Skip("this is the child's process")
	}
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	alive := map[string]string{} // token -> user, acknowledged and not deleted
	dead := map[string]bool{}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "USERSESSIONS_CRASH_DB="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			r := bufio.NewReader(out)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a torn last line was never acknowledged
				}
				lines <- strings.TrimSpace(line)
			}
		}()
		// The kill comes at a random moment after the first acknowledged
		// write (not after start: a slow start must not make a round empty).
		var kill <-chan time.Time
		acked := 0
		// handle applies one line of the child's to what must survive.
		handle := func(line string) {
			op, token, _ := strings.Cut(line, " ")
			switch op {
			case "created":
				alive[token] = "crash"
				acked++
				if kill == nil {
					kill = time.After(time.Duration(20+rand.IntN(200)) * time.Millisecond)
				}
			case "deleting":
				// From here until "deleted" the session may or may
				// not exist after a kill: neither answer is wrong.
				delete(alive, token)
			case "deleted":
				dead[token] = true
				acked++
			case "ready":
			default:
				t.Fatalf("child said %q", line)
			}
		}
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				handle(line)
			case <-kill:
				cmd.Process.Kill() // SIGKILL: no deferred code runs
				// Lines written before the kill still count: a
				// "deleting" among them means that session may be gone.
				for line := range lines {
					handle(line)
				}
				break read
			}
		}
		cmd.Wait()
		if acked == 0 {
			t.Fatalf("round %d: the child acknowledged nothing before the kill", round)
		}

		s, err := Open(path, &Options{NoCache: true, CleanupInterval: -1})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("round %d: indexes after kill -9: %v", round, err)
		}
		for token := range alive {
			if _, err := s.Load(ctx, token); err != nil {
				t.Fatalf("round %d: acknowledged session lost: %v", round, err)
			}
		}
		for token := range dead {
			if _, err := s.Load(ctx, token); err == nil {
				t.Fatalf("round %d: acknowledged deletion undone", round)
			}
		}
		s.Close()
		t.Logf("round %d: %d acknowledged writes, %d live sessions verified", round, acked, len(alive))
	}
}

// TestCrashChild is the child of TestCrashRecovery; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("USERSESSIONS_CRASH_DB")
	if path == "" {
		t.Skip("run by TestCrashRecovery only")
	}
	s, err := Open(path, &Options{CleanupInterval: -1, TouchInterval: time.Millisecond})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	say := func(w io.Writer, format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, args...)
		mu.Unlock()
	}
	say(os.Stdout, "ready\n")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				sess, err := s.Create(ctx, "crash", clientA)
				if err != nil {
					os.Exit(2)
				}
				sess.Set("n", i)
				if s.Save(ctx, sess) != nil {
					os.Exit(3)
				}
				s.Touch(ctx, sess.ID, clientB)
				say(os.Stdout, "created %s\n", sess.Token)
				if (i+w)%3 == 0 {
					say(os.Stdout, "deleting %s\n", sess.Token)
					if s.End(ctx, sess.ID, EndOptions{}) != nil {
						os.Exit(4)
					}
					say(os.Stdout, "deleted %s\n", sess.Token)
				}
			}
		}()
	}
	wg.Wait()
}
