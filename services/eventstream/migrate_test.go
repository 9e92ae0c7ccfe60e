package eventstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// `eventstream migrate --wait` applies nothing: it waits until the catalog
// holds every embedded migration, fails (exit 1) naming what is missing
// when the timeout passes first, and succeeds as soon as the migrations
// arrive (here: the Job's row for the newest one).
func TestMigrateWait(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t) // every migration applied
	env := map[string]string{"DATABASE_URL": db.URL}
	getenv := func(k string) string { return env[k] }
	run := func(ctx context.Context, out *testenv.SyncBuffer, args ...string) int {
		return Main(ctx, append([]string{"migrate"}, args...), nil, out, out, getenv)
	}

	var out testenv.SyncBuffer
	if code := run(ctx, &out, "--wait", "--timeout", "5s"); code != 0 || !strings.Contains(out.String(), "every migration") {
		t.Fatalf("--wait on an up-to-date catalog: exit %d, %q", code, out.String())
	}

	// The newest migration "not yet applied": its row is taken away.
	var newest struct {
		version int
		name    string
	}
	if err := db.Pool.QueryRow(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version, name").
		Scan(&newest.version, &newest.name); err != nil {
		t.Fatal(err)
	}
	if p, err := catalog.Pending(ctx, db.Pool); err != nil || len(p) != 1 || p[0] != newest.name {
		t.Fatalf("Pending = %v, %v; want [%s]", p, err, newest.name)
	}
	out = testenv.SyncBuffer{}
	start := time.Now()
	if code := run(ctx, &out, "--wait", "--timeout", "1s", "--interval", "100ms"); code != 1 ||
		!strings.Contains(out.String(), "timed out after 1s") || !strings.Contains(out.String(), newest.name) {
		t.Fatalf("--wait with a missing migration: exit %d, %q; want 1, naming %s", code, out.String(), newest.name)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("--wait --timeout 1s took %s", took)
	}
	if p, _ := catalog.Pending(ctx, db.Pool); len(p) != 1 {
		t.Fatalf("--wait applied something: pending %v", p)
	}

	// Waiting, then the migration arrives.
	out = testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, &out, "--wait", "--timeout", "30s", "--interval", "50ms") }()
	testenv.WaitFor(t, 10*time.Second, "--wait reporting the missing migration", func() bool {
		return strings.Contains(out.String(), "waiting for migrations: "+newest.name)
	})
	if _, err := db.Pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", newest.version, newest.name); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("--wait after the migration arrived: exit %d, %q", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("--wait did not return after the migration arrived")
	}

	// A database never migrated: everything is pending.
	if _, err := db.Pool.Exec(ctx, "DROP TABLE schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if p, err := catalog.Pending(ctx, db.Pool); err != nil || len(p) < 3 {
		t.Fatalf("Pending without schema_migrations = %v, %v; want every migration", p, err)
	}

	// Usage errors exit 2.
	for _, args := range [][]string{{"--wait", "--timeout", "0s"}, {"extra"}, {"--nope"}} {
		out = testenv.SyncBuffer{}
		if code := run(ctx, &out, args...); code != 2 {
			t.Errorf("migrate %v: exit %d, want 2 (usage)", args, code)
		}
	}
}
