package usersessions_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/usersessions/usersessions"
)

// The main flow: create a session at login, load it from the cookie's token
// on later requests, and let the user see and end their sessions.
func Example() {
	dir, _ := os.MkdirTemp("", "usersessions-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Alice signs in on her laptop and on her phone.
	laptop, _ := store.Create(ctx, "alice", usersessions.Client{
		IP:        netip.MustParseAddr("203.0.113.7"),
		UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
	})
	phone, _ := store.Create(ctx, "alice", usersessions.Client{
		IP:        netip.MustParseAddr("198.51.100.20"),
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
	})

	// Later requests carry the token (in a cookie); values round-trip.
	sess, _ := store.Load(ctx, laptop.Token)
	sess.Set("theme", "dark")
	if err := store.Save(ctx, sess); err != nil {
		log.Fatal(err)
	}

	// "Your active sessions".
	list, _ := store.ListByUser(ctx, "alice")
	for _, s := range list {
		fmt.Printf("%s from %v (this session: %v)\n", usersessions.Device(s.UserAgent), s.IP, s.ID == sess.ID)
	}

	// She ends every other session from the laptop.
	n, _ := store.EndUser(ctx, "alice", sess.ID, usersessions.EndOptions{})
	fmt.Println("ended", n)
	_, err = store.Load(ctx, phone.Token)
	fmt.Println("phone signed out:", errors.Is(err, usersessions.ErrNotFound))
	// Output:
	// Chrome on Windows from 203.0.113.7 (this session: true)
	// Safari on iPhone from 198.51.100.20 (this session: false)
	// ended 1
	// phone signed out: true
}

// Rotate the token at sign-in so that a token planted before it (session
// fixation) is worthless.
func ExampleStore_RotateUser() {
	dir, _ := os.MkdirTemp("", "usersessions-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, _ := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	defer store.Close()

	anon, _ := store.Create(ctx, "", usersessions.Client{})
	anon.Set("cart", []string{"book"})
	store.Save(ctx, anon)

	signedIn, _ := store.RotateUser(ctx, anon.Token, "bob")
	cart, _ := signedIn.Get("cart")
	_, err := store.Load(ctx, anon.Token)
	fmt.Println(signedIn.UserID, cart, signedIn.ID == anon.ID, errors.Is(err, usersessions.ErrNotFound))
	// Output: bob [book] true true
}

// Custom types are stored once registered under a stable name.
func ExampleRegisterType() {
	type Prefs struct {
		Language string
		Fonts    int
	}
	usersessions.RegisterType[Prefs]("example.Prefs")

	dir, _ := os.MkdirTemp("", "usersessions-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, _ := usersessions.Open(filepath.Join(dir, "sessions.db"), &usersessions.Options{NoCache: true})
	defer store.Close()

	sess, _ := store.Create(ctx, "carol", usersessions.Client{})
	sess.Set("prefs", Prefs{Language: "nl", Fonts: 2})
	store.Save(ctx, sess)

	loaded, _ := store.Load(ctx, sess.Token)
	v, _ := loaded.Get("prefs")
	fmt.Printf("%+v\n", v.(Prefs))
	// Output: {Language:nl Fonts:2}
}
