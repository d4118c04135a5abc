package control_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

// An app serves its control socket beside its database; an operator's
// tool (usually another process: the usersessions command) lists and
// ends sessions through it while the app holds the file.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// In the app:
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctl, err := control.Serve(store, "") // sessions.db.sock
	if err != nil {
		log.Fatal(err)
	}
	defer ctl.Close() // before store.Close
	store.Create(ctx, "alice", usersessions.Client{UserAgent: "Firefox"})
	store.Create(ctx, "alice", usersessions.Client{UserAgent: "Safari"})

	// In the operator's tool:
	c, err := control.Dial(ctx, control.SocketPath(filepath.Join(dir, "sessions.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	n := 0
	for s, err := range c.All(ctx, usersessions.Filter{UserID: "alice", State: usersessions.ActiveOnly}) {
		if err != nil {
			log.Fatal(err)
		}
		if s.Active(time.Now()) {
			n++
		}
	}
	fmt.Println("alice's active sessions:", n)
	ended, err := c.EndUser(ctx, "alice", "", usersessions.EndOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended:", ended)
	left, _ := store.ListByUser(ctx, "alice")
	fmt.Println("left:", len(left))
	// Output:
	// alice's active sessions: 2
	// ended: 2
	// left: 0
}
