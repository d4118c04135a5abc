package pgstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/pgstore"
)

// Every instance of the app opens the same database; the Store's cache on
// each hears of the others' revocations through LISTEN/NOTIFY.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"), &pgstore.Options{Table: "usersessions"})
	if err != nil {
		log.Fatal(err)
	}
	store, err := usersessions.NewStore(b, &usersessions.Options{IdleTimeout: 30 * time.Minute})
	if err != nil {
		log.Fatal(err) // NewStore closed b
	}
	defer store.Close() // closes b
}
