package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Binaries are the built services a run starts. An empty path is built
// with `go build` into the run's directory (which needs the source tree and
// the Go toolchain): TestChaos does that, make chaos passes the binaries it
// built.
type Binaries struct {
	Delivery  string // cmd/delivery
	Ingest    string // cmd/ingest
	ConfigAPI string // cmd/configapi
}

// binaryPackages are the main packages of Binaries, by file name.
var binaryPackages = map[string]string{
	"delivery":  "github.com/eventstream/eventstream/services/delivery/cmd/delivery",
	"ingest":    "github.com/eventstream/eventstream/services/ingest/cmd/ingest",
	"configapi": "github.com/eventstream/eventstream/services/configapi/cmd/configapi",
}

// build fills in every empty path with a binary built into dir, all in one
// `go build` (go.work resolves the modules).
func (b Binaries) build(ctx context.Context, dir string) (Binaries, error) {
	paths := map[string]*string{"delivery": &b.Delivery, "ingest": &b.Ingest, "configapi": &b.ConfigAPI}
	var pkgs []string
	for name, p := range paths {
		if *p == "" {
			pkgs = append(pkgs, binaryPackages[name])
			*p = filepath.Join(dir, name)
		}
	}
	if len(pkgs) == 0 {
		return b, nil
	}
	// Built as the images are (static, -trimpath), which also reuses the
	// packages `make images` compiled.
	args := append([]string{"build", "-trimpath", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("building the services (go %s): %w: %s", strings.Join(args, " "), err, out)
	}
	return b, nil
}

// apiService is ingest or the config API as a built binary on a loopback
// port of its own.
type apiService struct {
	*process
	url string // http://127.0.0.1:port
}

// readyTimeout bounds a service's start: from exec to /readyz answering 200.
const readyTimeout = time.Minute

// startAPI starts bin with env plus addrVar set to a free loopback port,
// logging to dir/name.log, and waits until its /readyz answers 200. The port
// is reserved by binding and releasing it, so another process may take it
// before the service binds it: a service that exits for that reason is
// started again on another port (twice at most). Any other exit before it
// is ready fails at once, quoting the end of its log.
func startAPI(ctx context.Context, name, bin string, env []string, addrVar, dir string) (*apiService, error) {
	var err error
	for range 3 {
		var addr string
		if addr, err = freeLoopbackPort(ctx); err != nil {
			return nil, err
		}
		s := &apiService{
			process: &process{name: name, bin: bin, env: append(env[:len(env):len(env)], addrVar+"="+addr),
				log: filepath.Join(dir, name+".log")},
			url: "http://" + addr,
		}
		if err = s.start(); err != nil {
			return nil, err
		}
		if err = s.waitReady(ctx, readyTimeout); err == nil {
			return s, nil
		}
		_ = s.signal(syscall.SIGKILL, 10*time.Second)
		if !errors.Is(err, errExited) || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

// errExited: the service exited before it was ready.
var errExited = errors.New("exited before it was ready")

// waitReady polls /readyz until it answers 200, the process exits (an
// error quoting the end of its log) or within passes.
func (s *apiService) waitReady(ctx context.Context, within time.Duration) error {
	r := s.current()
	if r == nil {
		return fmt.Errorf("%s is not running", s.name)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	exited := false
	err := waitUntil(ctx, within, func() bool {
		select {
		case <-r.exited:
			exited = true
			return true
		default:
		}
		return ready()
	})
	switch {
	case exited:
		status := r.err
		if status == nil {
			status = errors.New("exit status 0")
		}
		return fmt.Errorf("%s %w (%w): %s", s.name, errExited, status, logTail(s.log, 1024))
	case err != nil:
		return fmt.Errorf("waiting for %s to be ready at %s/readyz: %w (log %s)", s.name, s.url, err, s.log)
	}
	return nil
}

// freeLoopbackPort returns a loopback address that was free a moment ago.
func freeLoopbackPort(ctx context.Context) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("reserving a port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// logTail is the last n bytes of the file at path (for error messages).
func logTail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}
