package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/boltmeta"
	bolt "go.etcd.io/bbolt"
)

// A damaged bbolt file can make bbolt panic in a goroutine of its own (the
// page walk that rebuilds the free list on open) or fault on a page past
// the end of a truncated file: no recover can catch either, and the process
// dies with the Go runtime's status 2, which this program reserves for bad
// usage. So before an operator command opens a file, a child process (this
// program, re-executed with the hidden probeCommand) opens it read-only
// and runs bbolt's consistency check; if the child reports damage, or dies,
// the command says the file is damaged and exits 1 without touching it.

// probeCommand is the hidden subcommand the child runs.
const probeCommand = "__probe"

// probeTimeout bounds the child; a hang is reported, not waited out.
var probeTimeout = 10 * time.Minute

// Probe statuses.
const (
	probeOK      = "ok"
	probeLocked  = "locked"  // another process holds the file: not checked
	probeCorrupt = "corrupt" // bbolt found damage
	probeSchema  = "schema"  // a sound bbolt file, but not a usersessions one
	probeError   = "error"   // could not open or read (permissions, ...)
)

// probeResult is the child's report, one JSON object on its stdout.
type probeResult struct {
	Status    string   `json:"status"`
	Detail    string   `json:"detail,omitempty"`
	Problems  []string `json:"problems,omitempty"` // at most maxProblems
	PageSize  int      `json:"page_size,omitempty"`
	Pages     int64    `json:"pages,omitempty"`      // high-water mark, in pages
	FreePages int      `json:"free_pages,omitempty"` // free and pending pages
}

// maxProblems bounds the problems a probe reports.
const maxProblems = 20

// runProbe is the child: it checks path and writes its probeResult.
func runProbe(args []string, stdout io.Writer) int {
	if len(args) != 1 {
		return exitUsage
	}
	res := probe(args[0])
	json.NewEncoder(stdout).Encode(res)
	return exitOK
}

func probe(path string) (res probeResult) {
	// Faults on the mapped file become panics in this goroutine; those in
	// bbolt's own goroutines still kill the child, which the parent reports.
	debug.SetPanicOnFault(true)
	defer func() {
		if p := recover(); p != nil {
			res = probeResult{Status: probeCorrupt, Detail: fmt.Sprint(p)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: operatorOpenTimeout})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return probeResult{Status: probeLocked}
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch):
		return probeResult{Status: probeSchema, Detail: "not a bbolt database: " + err.Error()}
	case errors.Is(err, bolt.ErrChecksum):
		return probeResult{Status: probeCorrupt, Detail: err.Error()}
	case err != nil:
		return probeResult{Status: probeError, Detail: err.Error()}
	}
	defer db.Close()
	res.Status = probeOK
	err = db.View(func(tx *bolt.Tx) error {
		res.PageSize = tx.DB().Info().PageSize
		res.Pages = int64(tx.Size()) / int64(max(res.PageSize, 1))
		for err := range tx.Check() {
			if len(res.Problems) < maxProblems {
				res.Problems = append(res.Problems, err.Error())
			}
		}
		if len(res.Problems) > 0 {
			res.Status = probeCorrupt
			return nil
		}
		meta := tx.Bucket([]byte("meta"))
		if meta == nil || meta.Get([]byte("schema")) == nil {
			res.Status = probeSchema
			res.Detail = "no usersessions meta bucket"
		}
		return nil
	})
	if err != nil {
		return probeResult{Status: probeCorrupt, Detail: err.Error()}
	}
	st := db.Stats()
	res.FreePages = st.FreePageN + st.PendingPageN
	return res
}

// probeFile checks path in a child process, after a header check in this
// one. A damaged file gives an error naming it that wraps
// usersessions.ErrCorrupt; a file that is not a usersessions database one
// wrapping usersessions.ErrSchema. A file held by another process is not
// checked (res.Status is probeLocked, err nil): opening it fails, or goes
// through the app's control socket.
func probeFile(path string) (probeResult, error) {
	if err := checkHeader(path); err != nil {
		return probeResult{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, probeCommand, path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	runErr := cmd.Run()
	var res probeResult
	if jerr := json.Unmarshal(out.Bytes(), &res); runErr != nil || jerr != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("checking %s: gave up after %v", path, probeTimeout)
		}
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) && runErr != nil {
			return res, fmt.Errorf("checking %s: %w", path, runErr) // could not start
		}
		return res, damaged(path, "bbolt crashed reading it: "+firstLine(errb.String()))
	}
	switch res.Status {
	case probeCorrupt:
		detail := res.Detail
		if len(res.Problems) > 0 {
			detail = strings.Join(res.Problems, "; ")
		}
		return res, damaged(path, detail)
	case probeSchema:
		return res, &openError{fmt.Errorf("%s: %w: %s", path, usersessions.ErrSchema, res.Detail),
			fmt.Sprintf("%s is not a usersessions database (%s)", path, res.Detail)}
	case probeError:
		return res, fmt.Errorf("%s: %s", path, res.Detail)
	}
	return res, nil
}

// probeEnv marks the child's environment (tests dispatch on it).
const probeEnv = "USERSESSIONS_PROBE_CHILD"

// damaged is the error for a damaged file.
func damaged(path, detail string) error {
	return &openError{fmt.Errorf("%s: %w: %s", path, usersessions.ErrCorrupt, detail),
		fmt.Sprintf("%s is damaged and cannot be read safely (%s); keep a copy, restore a backup or start a new file", path, detail)}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		s = "no message"
	}
	return s
}

// checkHeader reads bbolt's two meta pages without mapping the file and
// refuses an empty file (bbolt would write a new database into it) and a
// truncated one (reading it faults). A file whose meta pages are not
// bbolt's is left to Open, which names the problem.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a session database", path)
	}
	if fi.Size() == 0 {
		return &openError{fmt.Errorf("%s: %w: empty file", path, usersessions.ErrSchema),
			fmt.Sprintf("%s is an empty file, not a session database", path)}
	}
	m, err := boltmeta.Newest(f, fi.Size())
	if err != nil {
		return nil // not bbolt's, or both meta pages damaged: Open names the problem
	}
	if need := int64(m.HWM) * int64(m.PageSize); fi.Size() < need {
		return damaged(path, fmt.Sprintf("truncated: %d bytes, its pages reach to byte %d", fi.Size(), need))
	}
	return nil
}
