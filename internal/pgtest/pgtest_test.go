package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func query(t *testing.T, dsn string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&n)
	return n, err
}

// alive reports whether process pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestSharedClusterAnswersAndKeepsDefaults(t *testing.T) {
	c := Shared(t)
	if n, err := query(t, c.DSN("")); err != nil || n != 42 {
		t.Fatalf("query: %d, %v", n, err)
	}
	if Shared(t) != c {
		t.Fatal("Shared started a second cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for setting, want := range map[string]string{"fsync": "on", "synchronous_commit": "on", "listen_addresses": ""} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
		}
	}
	dsn := c.NewDatabase(t)
	if n, err := query(t, dsn); err != nil || n != 42 {
		t.Fatalf("new database: %d, %v", n, err)
	}
	if a, b := c.Table("x"), c.Table("x"); a == b {
		t.Fatalf("Table gave %q twice", a)
	}
}

func TestRestartAndBackendPIDs(t *testing.T) {
	c := Start(t)
	pid, err := c.PostmasterPID()
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("postmaster pid %d: %v", pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("")+" application_name=pgtest_probe")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	bpid := c.WaitBackendPID(t, "pgtest_probe", 5*time.Second)
	if got := conn.PgConn().PID(); uint32(bpid) != got {
		t.Fatalf("WaitBackendPID = %d, connection says %d", bpid, got)
	}
	c.Terminate(t, bpid)
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping after pg_terminate_backend succeeded")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, c.DSN("")); err == nil {
		t.Fatal("query succeeded with the server stopped")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if n, err := query(t, c.DSN("")); err != nil || n != 42 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
	pid, err = c.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if alive(pid) {
		t.Fatalf("postmaster %d still alive after Close", pid)
	}
}
