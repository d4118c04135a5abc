package usersessions_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

func TestValue(t *testing.T) {
	store, err := usersessions.Open(filepath.Join(t.TempDir(), "s.db"), &usersessions.Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sess, err := store.Create(t.Context(), "alice", usersessions.Client{})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	sess.Set("n", 3)
	sess.Set("theme", "dark")
	sess.Set("when", when)
	sess.Set("tags", []string{"a", "b"})
	sess.Set("nothing", nil)
	if err := store.Save(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	loaded, err := store.Load(t.Context(), sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := usersessions.Value[int](loaded, "n"); !ok || n != 3 {
		t.Errorf("Value[int] = %v, %v", n, ok)
	}
	if n, ok := usersessions.Value[int64](loaded, "n"); ok || n != 0 {
		t.Errorf("Value[int64] of an int = %v, %v; want no conversion", n, ok)
	}
	if s, ok := usersessions.Value[string](loaded, "theme"); !ok || s != "dark" {
		t.Errorf("Value[string] = %q, %v", s, ok)
	}
	if w, ok := usersessions.Value[time.Time](loaded, "when"); !ok || !w.Equal(when) {
		t.Errorf("Value[time.Time] = %v, %v", w, ok)
	}
	if tags, ok := usersessions.Value[[]string](loaded, "tags"); !ok || len(tags) != 2 || tags[1] != "b" {
		t.Errorf("Value[[]string] = %v, %v", tags, ok)
	}
	if _, ok := usersessions.Value[string](loaded, "missing"); ok {
		t.Error("missing key reported present")
	}
	if v, ok := usersessions.Value[any](loaded, "nothing"); !ok || v != nil {
		t.Errorf("Value[any] of nil = %v, %v", v, ok)
	}
	if _, ok := usersessions.Value[string](loaded, "nothing"); ok {
		t.Error("Value[string] of nil reported present")
	}
	if _, ok := usersessions.Value[string](nil, "theme"); ok {
		t.Error("nil session reported a value")
	}
}

func ExampleValue() {
	var sess usersessions.Session
	sess.Set("cart_items", 3)
	n, ok := usersessions.Value[int](&sess, "cart_items")
	_, wrong := usersessions.Value[string](&sess, "cart_items")
	fmt.Println(n, ok, wrong)
	// Output: 3 true false
}
