package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// MinIOServer is a real MinIO server started for the tests of one binary.
type MinIOServer struct {
	Endpoint  string // http://127.0.0.1:<port>
	AccessKey string // root user
	SecretKey string // root password
	Region    string // the region MinIO signs for
}

var (
	minioOnce sync.Once
	minioSrv  *MinIOServer
	minioErr  error
)

// NoMinIOEnv, set to 1, turns the MinIO tier off explicitly; without it a
// missing minio binary fails the tests that need one.
const NoMinIOEnv = "EVENTSTREAM_NO_MINIO"

// MinIO returns a MinIO server shared by the test binary, started on first
// use on a random loopback port with a temporary data dir and stopped by
// Main. Tests keep apart by using their own buckets.
//
// The binary is looked up as $MINIO_BIN, then minio on PATH, then in
// $GOBIN and $(go env GOPATH)/bin (where `go install github.com/minio/minio@latest`
// puts it; `make test` does that when it is missing). Without a binary the
// test fails, unless EVENTSTREAM_NO_MINIO=1 says the tier is off on purpose,
// in which case it is skipped with that reason.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	bin, err := FindMinIO()
	if err != nil {
		if os.Getenv(NoMinIOEnv) == "1" {
			t.Skipf("MinIO tier off (%s=1): %v", NoMinIOEnv, err)
		}
		t.Fatalf("MinIO tier: %v; install it with `go install github.com/minio/minio@latest` "+
			"(or run `make test`, which does), point MINIO_BIN at it, or set %s=1 to turn this tier off", err, NoMinIOEnv)
	}
	minioOnce.Do(func() { minioSrv, minioErr = startMinIO(bin) })
	if minioErr != nil {
		t.Fatalf("starting MinIO (%s): %v", bin, minioErr)
	}
	return minioSrv
}

// FindMinIO returns the path of a minio binary, or an error naming the places
// it looked.
func FindMinIO() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("MINIO_BIN=%s is not an executable file", p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.CommandContext(context.Background(), "go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// One line each; GOBIN's is empty when unset.
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				dirs = append(dirs, lines[0])
			}
			for _, gp := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "minio"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no minio binary (looked at $MINIO_BIN, PATH, %s)", strings.Join(dirs, ", "))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// freePort reserves a loopback port by binding and releasing it. Another
// process could take it in between; startMinIO retries on a new port then.
func freePort() (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startMinIO(bin string) (*MinIOServer, error) {
	var lastErr error
	for range 3 {
		srv, err := startMinIOOnce(bin)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startMinIOOnce(bin string) (*MinIOServer, error) {
	addr, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	dir, err := os.MkdirTemp("", "eventstream-minio-")
	if err != nil {
		return nil, fmt.Errorf("creating minio data dir: %w", err)
	}
	srv := &MinIOServer{
		Endpoint:  "http://" + addr,
		AccessKey: "eventstream-test",
		SecretKey: "eventstream-test-secret",
		Region:    "us-east-1",
	}
	var logs bytes.Buffer
	// Stopped by stop below (SIGINT, then SIGKILL), not by a context.
	cmd := exec.CommandContext(context.Background(), bin, "server", "--quiet", "--address", addr, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+srv.AccessKey,
		"MINIO_ROOT_PASSWORD="+srv.SecretKey,
		"MINIO_REGION="+srv.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CONFIG_ENV_FILE=",
		"HOME="+dir, // keeps MinIO's ~/.minio (certs, config) inside the temp dir
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := waitReady(ctx, srv.Endpoint, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w (exit: %w); minio output:\n%s", err, waitErr, logs.String())
	}
	onShutdown(stop)
	return srv, nil
}

// waitReady polls MinIO's readiness endpoint until it answers 200.
func waitReady(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("minio exited before it was ready")
		case <-ctx.Done():
			return errors.New("minio not ready within 90s")
		case <-tick.C:
		}
	}
}
