package redisstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/redisstore"
)

// Every instance of the app opens the same Redis server (or cluster) with
// the same prefix; the Store's cache on each hears of the others'
// revocations through the notices the scripts publish.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redisstore.Open(ctx, os.Getenv("REDIS_URL"), &redisstore.Options{Prefix: "myapp:sessions"})
	if err != nil {
		log.Fatal(err)
	}
	store, err := usersessions.NewStore(b, &usersessions.Options{IdleTimeout: 30 * time.Minute})
	if err != nil {
		log.Fatal(err) // NewStore closed b
	}
	defer store.Close() // closes b
}
