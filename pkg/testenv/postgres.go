// Package testenv gives tests real dependencies: an ephemeral PostgreSQL cluster
// (one per test binary, a fresh migrated database per test) and an in-process
// Kafka broker (franz-go's kfake). DATABASE_URL and KAFKA_BROKERS in the
// environment point them at real servers instead.
//
// Packages using testenv call it from TestMain so the cluster stops at exit
// (and, while benchmarks run, service logs stay out of the bench output):
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/pgserver"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// templateDB is the migrated database every test database is cloned from.
const templateDB = "eventstream_template"

var (
	pgOnce    sync.Once
	pgErr     error
	pgServer  *pgserver.Server // nil when DATABASE_URL is used
	pgBaseURL string           // URL of the admin database
	pgDataDir string
	dbSeq     atomic.Int64
	stops     []func()
	stopsMu   sync.Mutex
)

// Main runs the tests of a package and then stops whatever testenv started.
// While benchmarks run, the services' logs go to a file (see BenchLogsEnv).
func Main(m *testing.M) {
	closeLogs := routeBenchLogs(os.Getenv)
	code := m.Run()
	Shutdown()
	closeLogs()
	os.Exit(code)
}

// Shutdown stops the ephemeral servers. Main calls it; tests need not.
func Shutdown() {
	stopsMu.Lock()
	defer stopsMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stops = nil
}

func onShutdown(f func()) {
	stopsMu.Lock()
	defer stopsMu.Unlock()
	stops = append(stops, f)
}

func startPostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("DATABASE_URL"); u != "" {
		pgBaseURL = u
	} else {
		bin, err := pgserver.FindBinDir(ctx)
		if err != nil {
			return err
		}
		tmpl, err := templateDataDir(ctx, bin)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "eventstream-pg-")
		if err != nil {
			return fmt.Errorf("creating temp dir: %w", err)
		}
		pgDataDir = filepath.Join(dir, "data")
		srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: pgDataDir, TemplateDir: tmpl, BinDir: bin, Ephemeral: true})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		pgServer = srv
		pgBaseURL = srv.URL("postgres")
		onShutdown(func() { _ = srv.Stop(); os.RemoveAll(dir) })
	}
	// Build the migrated template once per test binary.
	admin, err := pgx.Connect(ctx, pgBaseURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer admin.Close(ctx)
	name := templateDB
	if pgServer == nil {
		// A shared server may be used by several test binaries at once.
		name = fmt.Sprintf("%s_%d", templateDB, os.Getpid())
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("dropping old template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	pool, err := pgxpool.New(ctx, withDB(pgBaseURL, name))
	if err != nil {
		return fmt.Errorf("connecting to template: %w", err)
	}
	_, err = catalog.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return err
	}
	tmplName = name
	if pgServer == nil {
		onShutdown(func() {
			c, err := pgx.Connect(context.Background(), pgBaseURL)
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
				c.Close(context.Background())
			}
		})
	}
	return nil
}

var tmplName string

// templateDataDir returns an initialised (empty) cluster data dir, made once
// per machine and PostgreSQL version and reused by every later test run.
func templateDataDir(ctx context.Context, bin string) (string, error) {
	dir := filepath.Join(os.TempDir(), "eventstream-pg-template-"+filepath.Base(filepath.Dir(bin)))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp("", "eventstream-pg-initdb-")
	if err != nil {
		return "", fmt.Errorf("creating temp dir: %w", err)
	}
	if err := pgserver.InitDB(ctx, bin, filepath.Join(tmp, "data")); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	// Rename is atomic: of several test binaries racing here, one wins and the
	// others use its directory.
	if err := os.Rename(filepath.Join(tmp, "data"), dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "PG_VERSION")); statErr != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("installing template data dir: %w", err)
		}
	}
	os.RemoveAll(tmp)
	return dir, nil
}

func withDB(base, db string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("parsing DATABASE_URL: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

// DB is a fresh, migrated database for one test.
type DB struct {
	URL  string
	Pool *pgxpool.Pool
}

// NewDB creates a fresh database with every migration applied, dropped when the
// test ends.
func NewDB(t testing.TB) *DB {
	t.Helper()
	pgOnce.Do(func() { pgErr = startPostgres() })
	if pgErr != nil {
		t.Fatalf("starting test postgres: %v", pgErr)
	}
	ctx := context.Background()
	name := fmt.Sprintf("t_%d_%d_%s", os.Getpid(), dbSeq.Add(1), sanitize(t.Name()))
	admin, err := pgx.Connect(ctx, pgBaseURL)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %q TEMPLATE %s", name, tmplName)); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	u := withDB(pgBaseURL, name)
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), pgBaseURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %q WITH (FORCE)", name))
	})
	return &DB{URL: u, Pool: pool}
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	b := make([]byte, 0, 20)
	for i := 0; i < len(s) && len(b) < 20; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// TestKey is the secrets key tests encrypt with.
var TestKey = []byte("0123456789abcdef0123456789abcdef")

// NewStore returns a catalog store over a fresh database, with TestKey.
func NewStore(t testing.TB) (*catalog.Store, *DB) {
	t.Helper()
	db := NewDB(t)
	box, err := secrets.New(TestKey)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.New(db.Pool, box), db
}
