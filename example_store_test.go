package usersessions_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/usersessions/usersessions"
)

// All lists sessions for admin views and tools, narrowed by a Filter: one
// user, an address range, live or expired (expired sessions stay until
// ClearExpired removes them). It yields sessions in ID order; the lines
// printed here are sorted.
func ExampleStore_All() {
	dir, _ := os.MkdirTemp("", "usersessions-all")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// A clock the example moves by hand.
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), &usersessions.Options{
		Lifetime:        24 * time.Hour,
		CleanupInterval: -1, // keep expired sessions, to list them
		Now:             func() time.Time { return time.Unix(0, now.Load()) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	create := func(user, ip string) {
		c := usersessions.Client{IP: netip.MustParseAddr(ip), UserAgent: "curl/8.5.0"}
		if _, err := store.Create(ctx, user, c); err != nil {
			log.Fatal(err)
		}
	}
	create("bob", "198.51.100.4") // expired by the time we list
	now.Add(int64(25 * time.Hour))
	create("alice", "203.0.113.7")   // the office
	create("alice", "198.51.100.20") // at home
	create("bob", "203.0.113.9")     // the office
	create("", "203.0.113.80")       // an anonymous visitor

	list := func(title string, f usersessions.Filter) {
		var lines []string
		for s, err := range store.All(ctx, f) {
			if err != nil {
				log.Fatal(err)
			}
			user := s.UserID
			if user == "" {
				user = "(anonymous)"
			}
			lines = append(lines, fmt.Sprintf("  %s %s", user, s.IP))
		}
		slices.Sort(lines)
		fmt.Println(title)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	list("alice:", usersessions.Filter{UserID: "alice"})
	list("active, from 203.0.113.0/24:", usersessions.Filter{
		IPPrefix: netip.MustParsePrefix("203.0.113.0/24"),
		State:    usersessions.ActiveOnly,
	})
	list("expired:", usersessions.Filter{State: usersessions.ExpiredOnly})

	n, _ := store.ClearExpired(ctx)
	fmt.Println("cleared:", n)
	// Output:
	// alice:
	//   alice 198.51.100.20
	//   alice 203.0.113.7
	// active, from 203.0.113.0/24:
	//   (anonymous) 203.0.113.80
	//   alice 203.0.113.7
	//   bob 203.0.113.9
	// expired:
	//   bob 198.51.100.4
	// cleared: 1
}
