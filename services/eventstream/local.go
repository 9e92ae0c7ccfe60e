package eventstream

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Files the local stack keeps in its data folder.
const (
	secretsFile = "secrets.json" // the local keys, 0600, made on first run
	stackFile   = "stack.json"   // where the running stack listens, for the admin commands
	lockFile    = "run.lock"     // one `eventstream run` per data folder
)

// LocalSecrets are the keys a local stack generates once and keeps, so tokens
// and encrypted integration secrets stay valid across runs.
type LocalSecrets struct {
	// SecretsKey encrypts integration secrets in the catalog (64 hex chars).
	SecretsKey string `json:"secrets_key"`
	// HS256Secret signs and verifies local bearer tokens.
	HS256Secret string `json:"auth_hs256_secret"`
}

// loadOrCreateSecrets reads dir/secrets.json, creating it with fresh random
// keys when it does not exist.
func loadOrCreateSecrets(dir string) (LocalSecrets, error) {
	path := filepath.Join(dir, secretsFile)
	s, err := readSecrets(dir)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s = LocalSecrets{SecretsKey: randomHex(32), HS256Secret: randomHex(32)}
	b, _ := json.MarshalIndent(s, "", "  ")
	// O_EXCL: two runners racing on a fresh folder must not overwrite each
	// other's keys; the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readSecrets(dir)
	}
	if err != nil {
		return s, fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return s, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return s, fmt.Errorf("writing %s: %w", path, err)
	}
	return s, nil
}

func readSecrets(dir string) (LocalSecrets, error) {
	var s LocalSecrets
	path := filepath.Join(dir, secretsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading local secrets: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parsing %s: %w", path, err)
	}
	if s.SecretsKey == "" || len(s.HS256Secret) < 32 {
		return s, fmt.Errorf("%s is incomplete; delete it to make new keys (tokens and stored integration secrets become invalid)", path)
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// StackInfo is what a running local stack tells the admin commands (and
// people) about itself, in dataDir/stack.json.
type StackInfo struct {
	PID          int      `json:"pid"`
	BaseURL      string   `json:"base_url"`
	DatabaseURL  string   `json:"database_url"`
	KafkaBrokers []string `json:"kafka_brokers"`
	S3Endpoint   string   `json:"s3_endpoint,omitempty"`
}

func writeStackInfo(dir string, info StackInfo) error {
	b, _ := json.MarshalIndent(info, "", "  ")
	tmp := filepath.Join(dir, stackFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing stack info: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stackFile)); err != nil {
		return fmt.Errorf("writing stack info: %w", err)
	}
	return nil
}

// readStackInfo returns the info of the stack running on dir, or an error
// telling the user to start one.
func readStackInfo(dir string) (StackInfo, error) {
	var info StackInfo
	b, err := os.ReadFile(filepath.Join(dir, stackFile))
	if errors.Is(err, fs.ErrNotExist) {
		return info, fmt.Errorf("no local stack is running on %s (start it with `make run`, or set DATABASE_URL and KAFKA_BROKERS)", dir)
	}
	if err != nil {
		return info, fmt.Errorf("reading stack info: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("parsing stack info: %w", err)
	}
	// A stack killed with SIGKILL leaves its stack.json behind.
	if !processAlive(info.PID) {
		return info, fmt.Errorf("the local stack that ran on %s (pid %d) is gone (start it with `make run`)", dir, info.PID)
	}
	return info, nil
}

// processAlive reports whether a process with this pid exists (EPERM: it
// exists but belongs to someone else).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lockDataDir takes an exclusive lock on the data folder for the life of the
// process, so a second `eventstream run` fails fast instead of fighting over
// the Postgres cluster and the broker's files.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: another `eventstream run` is using this data folder: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
