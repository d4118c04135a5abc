package control_test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

// A client that asks for a listing or a backup and stops reading is cut
// off once a write of the reply stalls for long: its handler returns, and
// what it holds (the listing's place, the backup's copy) goes, while the
// server goes on.
func TestStalledClientIsCutOff(t *testing.T) {
	const stall = 200 * time.Millisecond
	defer control.SetWriteStall(stall)()
	store := openStore(t, filepath.Join(t.TempDir(), "s.db"), nil)
	// A listing and a file far larger than the socket's buffers, created
	// from many goroutines so the store's group commit shares the syncs.
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := range 100 {
				if _, err := store.Create(ctx, fmt.Sprintf("u%d-%d", w, i), usersessions.Client{UserAgent: strings.Repeat("x", 500)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ctl, err := control.Serve(store, filepath.Join(shortDir(t), "c.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	for _, target := range []string{"/v1/sessions", "/v1/backup"} {
		conn, err := net.Dial("unix", ctl.Path())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target)
		// Read nothing for far longer than the stall allowed: the server gives
		// up and closes the connection. Then what was buffered drains and
		// the reply ends without its last chunk.
		time.Sleep(10 * stall)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || strings.HasSuffix(string(got), "\r\n0\r\n\r\n") || len(got) == 0 {
			t.Errorf("%s, stalled: %d bytes, ends %q, %v; want a reply cut short", target, len(got), tail(got), err)
		}
	}
	// The server serves on.
	if n, err := dial(t, ctl.Path()).Count(ctx); n != 2000 || err != nil {
		t.Errorf("Count after the stalled clients: %d, %v", n, err)
	}
}

func tail(b []byte) []byte { return b[max(len(b)-20, 0):] }
