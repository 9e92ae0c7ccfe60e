package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/eventstream/eventstream/pkg/pgserver"
)

// postgres is the catalog's cluster (pkg/pgserver), which the suite pauses
// (SIGSTOP of the whole process group: postmaster and backends, so open
// connections hang as on a frozen host) and restarts on the same port.
type postgres struct {
	dir string

	mu  sync.Mutex
	srv *pgserver.Server // nil while stopped
	// port is fixed after the first start, so DATABASE_URL stays valid.
	port int
}

func startPostgres(ctx context.Context, dir string) (*postgres, error) {
	p := &postgres{dir: dir}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *postgres) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return nil
	}
	tmpl, err := templateDataDir(ctx)
	if err != nil {
		return err
	}
	// fsync stays on (not Ephemeral): a restart must keep what was committed.
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: p.dir, TemplateDir: tmpl, Port: p.port})
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	p.srv, p.port = srv, srv.Port
	return nil
}

// url is the URL of database db.
func (p *postgres) url(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgserver.Superuser, p.port, db)
}

// stop shuts the cluster down (fast mode: sessions are cut, data kept).
func (p *postgres) stop() error {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Stop()
}

// signal sends sig to the postmaster's process group (pgserver starts it
// with Setpgid, so every backend is in it).
func (p *postgres) signal(sig syscall.Signal) error {
	b, err := os.ReadFile(filepath.Join(p.dir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("reading postmaster.pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return fmt.Errorf("parsing postmaster.pid: %q", b)
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("signalling postgres (pgid %d): %w", pid, err)
	}
	return nil
}

// templateDataDir returns an initialised, empty cluster made once per machine
// and PostgreSQL version (copying it is much faster than initdb).
func templateDataDir(ctx context.Context) (string, error) {
	bin, err := pgserver.FindBinDir(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "eventstream-chaos-pg-template-"+filepath.Base(filepath.Dir(bin)))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp("", "eventstream-chaos-initdb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := pgserver.InitDB(ctx, bin, filepath.Join(tmp, "data")); err != nil {
		return "", err
	}
	// Rename is atomic: of two runs racing here, one wins, both use its dir.
	if err := os.Rename(filepath.Join(tmp, "data"), dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "PG_VERSION")); statErr != nil {
			return "", fmt.Errorf("installing the template data dir: %w", err)
		}
	}
	return dir, nil
}
