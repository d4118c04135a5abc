package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The tests run the program as a person does: built, started in an empty
// folder (its sessions.db goes there), on a free loopback port.

// binary is the program, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the program into a temporary folder, runs the tests and
// removes the folder. Without a go command (the tests run from a test
// binary copied elsewhere) binary stays "" and the tests that need it skip.
func runTests(m *testing.M) int {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "quickstart")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "quickstart")
	if out, err := exec.Command(gobin, "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// program is the quick start, running.
type program struct {
	base string // "http://127.0.0.1:PORT"
	dir  string // its working folder, where sessions.db is
	cmd  *exec.Cmd
	done chan error // receives Wait's result when it exits
}

// startProgram starts the program on a free loopback port and waits until
// it answers. The test's end stops it if the test did not.
func startProgram(t *testing.T) *program {
	t.Helper()
	if binary == "" {
		t.Skip("no go command to build the program with")
	}
	addr := freeAddr(t)
	p := &program{base: "http://" + addr, dir: t.TempDir(), done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "-addr", addr)
	p.cmd.Dir = p.dir
	p.cmd.Stdout, p.cmd.Stderr = t.Output(), t.Output() // its log, shown when the test fails
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/login")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("the program exited before it served: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program does not answer at %s: %v", p.base, err)
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// stop sends an interrupt (Ctrl-C) and returns how the program exited.
func (p *program) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		return errors.New("still running 30 s after Ctrl-C")
	}
}

// testContext returns a context for one test's browser: nothing may
// hang.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}
