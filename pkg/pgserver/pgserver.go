// Package pgserver runs a PostgreSQL cluster from the machine's PostgreSQL
// binaries: the ephemeral clusters of the test harness and the persistent one of
// the local stack. As root it drops to the "postgres" user, because initdb and
// postgres refuse to run as root.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options describe a cluster to start.
type Options struct {
	// DataDir holds the cluster. It is created with initdb when it holds none,
	// or copied from TemplateDir when that is set.
	DataDir string
	// TemplateDir, when set, is an initialised data directory copied into an
	// empty DataDir instead of running initdb (a copy is ~10x faster).
	TemplateDir string
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// Ephemeral turns off fsync and friends: fast, but a crash loses data.
	Ephemeral bool
	// BinDir holds initdb and postgres; empty finds the newest installed version.
	BinDir string
	// LogFile receives the server log; empty means DataDir/postgres.log.
	LogFile string
}

// Server is a running cluster.
type Server struct {
	opts    Options
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error         // how it exited; read after done is closed
	Port    int
}

// Superuser is the role every cluster started here is initialised with.
const Superuser = "postgres"

// URL returns a connection string for database db on this server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.Port, db)
}

// FindBinDir returns the directory holding the newest installed postgres binary.
func FindBinDir(ctx context.Context) (string, error) {
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.CommandContext(ctx, p, "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
				return dir, nil
			}
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", errors.New("finding PostgreSQL binaries: none under /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)")
	}
	sort.Slice(matches, func(i, j int) bool {
		return versionOf(matches[i]) > versionOf(matches[j])
	})
	return filepath.Dir(matches[0]), nil
}

func versionOf(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// credential returns the process credential to run PostgreSQL binaries with:
// nil when not root, the postgres user's otherwise.
func credential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, -1, -1, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("looking up the postgres user (needed to run PostgreSQL as root): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// InitDB creates a new cluster in dir (which must not exist or be empty).
func InitDB(ctx context.Context, binDir, dir string) error {
	cred, uid, gid, err := credential()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if cred != nil {
		if err := chownParents(dir, uid, gid); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", dir, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running initdb: %w: %s", err, out)
	}
	return nil
}

// chownParents hands dir to uid:gid and makes every parent traversable, so the
// postgres user can reach a data dir created by root under e.g. /tmp or ./.data.
func chownParents(dir string, uid, gid int) error {
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chowning %s: %w", dir, err)
	}
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stating %s: %w", p, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("making %s traversable: %w", p, err)
			}
		}
	}
	return nil
}

// Start starts (initialising if needed) a cluster and waits until it accepts
// connections. Stop it with Stop.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.BinDir == "" {
		d, err := FindBinDir(ctx)
		if err != nil {
			return nil, err
		}
		o.BinDir = d
	}
	cred, uid, gid, err := credential()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); err != nil {
		if o.TemplateDir != "" {
			if err := copyDir(ctx, o.TemplateDir, o.DataDir); err != nil {
				return nil, err
			}
		} else if err := InitDB(ctx, o.BinDir, o.DataDir); err != nil {
			return nil, err
		}
	}
	if cred != nil {
		if err := chownParents(o.DataDir, uid, gid); err != nil {
			return nil, err
		}
	}
	// A stale pid file from a killed run would stop postgres from starting.
	_ = os.Remove(filepath.Join(o.DataDir, "postmaster.pid"))

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := o.Port
		if port == 0 {
			if port, err = freePort(ctx); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, o, cred, uid, gid, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if o.Port != 0 {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, o Options, cred *syscall.Credential, uid, gid, port int) (*Server, error) {
	args := []string{"-D", o.DataDir, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-k", o.DataDir, // the unix socket lives in the data dir, not /var/run
		"-c", "max_connections=200", "-c", "shared_buffers=64MB"}
	if o.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "wal_level=minimal", "-c", "max_wal_senders=0")
	}
	logFile := o.LogFile
	if logFile == "" {
		logFile = filepath.Join(o.DataDir, "postgres.log")
	}
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening postgres log: %w", err)
	}
	if cred != nil {
		_ = lf.Chown(uid, gid)
	}
	// The server outlives Start's ctx (that only bounds starting it): detach
	// from its cancellation so ending ctx never kills postgres; Stop does.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), filepath.Join(o.BinDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = "/"
	// Pdeathsig: if the owning process dies without stopping us (a killed test
	// binary), postgres gets SIGQUIT (immediate shutdown) instead of leaking.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &Server{opts: o, cmd: cmd, done: make(chan struct{}), Port: port}
	go func() { s.exitErr = cmd.Wait(); lf.Close(); close(s.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return s, nil
		}
		select {
		case <-s.done:
			werr := s.exitErr
			tail, _ := os.ReadFile(logFile)
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return nil, fmt.Errorf("postgres exited while starting (%w): %s", werr, tail)
		case <-ctx.Done():
			_ = s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("waiting for postgres on port %d: %w", port, err)
		}
	}
}

// Stop shuts the cluster down (fast mode: sessions are disconnected, data kept)
// and waits for it to exit. The error is how the process ended when that was
// not a clean exit (it crashed earlier, or needed SIGQUIT after 15s).
func (s *Server) Stop() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		<-s.done
	}
	if s.exitErr != nil {
		return fmt.Errorf("stopping postgres: %w", s.exitErr)
	}
	return nil
}

// Done is closed when the server process has exited; Stop may be called any
// number of times, before or after.
func (s *Server) Done() <-chan struct{} { return s.done }

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyDir(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(dst), err)
	}
	// cp -a keeps ownership and modes, which postgres checks on its data dir.
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copying template data dir: %w: %s", err, out)
	}
	return nil
}
