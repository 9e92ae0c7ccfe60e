package chaos

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// The suite runs ingest and the config API as built binaries, as it runs
// the workers: each must be up (its /readyz answering) before events flow,
// a crash must be seen and repaired, the stop must be a clean drain, and a
// service that cannot start must fail the run at once with its own words.
func TestAPIServicesRunAsBuiltBinaries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Only the two API services are needed here: a non-empty Delivery path
	// is not built.
	bins, err := Binaries{Delivery: "not-needed"}.build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := startPostgres(ctx, filepath.Join(dir, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.stop() })
	if err := createDatabase(ctx, pg.url("postgres"), "eventstream"); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pg.url("eventstream"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := catalog.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	b, err := startBroker(filepath.Join(dir, "kafka"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	env := []string{
		"DATABASE_URL=" + pg.url("eventstream"), "KAFKA_BROKERS=" + b.addr,
		"SECRETS_KEY=" + randomHex(32), "AUTH_HS256_SECRET=" + randomHex(32),
	}
	get := func(url string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	for _, svc := range []struct{ name, bin, addrVar string }{
		{"ingest", bins.Ingest, "INGEST_ADDR"},
		{"configapi", bins.ConfigAPI, "CONFIGAPI_ADDR"},
	} {
		t.Run(svc.name, func(t *testing.T) {
			a, err := startAPI(ctx, svc.name, svc.bin, env, svc.addrVar, dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.signal(syscall.SIGKILL, 10*time.Second) })
			if code, err := get(a.url + "/readyz"); code != http.StatusOK {
				t.Fatalf("GET /readyz right after the start = %d, %v; want 200", code, err)
			}
			if r := a.current(); r == nil || r.cmd.Process.Pid == os.Getpid() {
				t.Fatal("the service does not run as a process of its own")
			}
			if log, _ := os.ReadFile(a.log); !strings.Contains(string(log), svc.name+" listening") {
				t.Errorf("%s has no %q line:\n%s", a.log, svc.name+" listening", log)
			}

			// A process that dies is reported once, and starts again on
			// its address.
			if err := a.current().cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			var crash error
			if err := waitUntil(ctx, 10*time.Second, func() bool { crash = a.crashed(); return crash != nil }); err != nil {
				t.Fatalf("a killed %s was not reported: %v", svc.name, err)
			}
			if !strings.Contains(crash.Error(), "exited on its own") {
				t.Errorf("crash = %v", crash)
			}
			if err := a.start(); err != nil {
				t.Fatal(err)
			}
			if err := a.waitReady(ctx, readyTimeout); err != nil {
				t.Fatalf("after a restart: %v", err)
			}

			// SIGTERM drains: exit status 0, and the port closes.
			if err := a.signal(syscall.SIGTERM, 20*time.Second); err != nil {
				t.Fatalf("stopping %s: %v", svc.name, err)
			}
			if _, err := get(a.url + "/healthz"); err == nil {
				t.Errorf("%s still answers after its stop", svc.name)
			}
		})
	}

	t.Run("a service that cannot start fails at once", func(t *testing.T) {
		start := time.Now()
		_, err := startAPI(ctx, "broken-configapi", bins.ConfigAPI, []string{"DATABASE_URL="}, "CONFIGAPI_ADDR", dir)
		if err == nil {
			t.Fatal("a config API without DATABASE_URL started")
		}
		if !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("the error does not quote the service's own message: %v", err)
		}
		if d := time.Since(start); d > readyTimeout/2 {
			t.Errorf("failing took %s: the suite waited for a dead service", d)
		}
	})
}
