package eventstream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// adminEnv resolves what the admin commands connect to: the process
// environment first, then the local stack running on the data folder
// (its stack.json and secrets.json).
type adminEnv struct {
	cfg    Config
	getenv func(string) string
}

func (a adminEnv) dataDir() string {
	if d, err := filepath.Abs(a.cfg.DataDir); err == nil {
		return d
	}
	return a.cfg.DataDir
}

func (a adminEnv) databaseURL() (string, error) {
	if a.cfg.DatabaseURL != "" {
		return a.cfg.DatabaseURL, nil
	}
	info, err := readStackInfo(a.dataDir())
	if err != nil {
		return "", err
	}
	return info.DatabaseURL, nil
}

func (a adminEnv) brokers() ([]string, error) {
	if len(a.cfg.KafkaBrokers) > 0 {
		return a.cfg.KafkaBrokers, nil
	}
	info, err := readStackInfo(a.dataDir())
	if err != nil {
		return nil, err
	}
	return info.KafkaBrokers, nil
}

// secret returns the variable name's value from the environment or the
// local stack's secrets.json.
func (a adminEnv) secret(name string) (string, error) {
	if v := a.getenv(name); v != "" {
		return v, nil
	}
	keys, err := readSecrets(a.dataDir())
	if err != nil {
		return "", fmt.Errorf("%s is not set and %w", name, err)
	}
	return localEnv(keys, "", nil, "")[name], nil
}

// getenvWithLocal is the environment services would see in the local stack,
// so provisioning from the CLI configures topics exactly like `run` does.
func (a adminEnv) getenvWithLocal() func(string) string {
	keys, _ := readSecrets(a.dataDir())
	info, _ := readStackInfo(a.dataDir())
	local := localEnv(keys, info.DatabaseURL, info.KafkaBrokers, info.S3Endpoint)
	return func(k string) string {
		if v := a.getenv(k); v != "" {
			return v
		}
		return local[k]
	}
}

func (a adminEnv) connect(ctx context.Context) (*pgxpool.Pool, error) {
	u, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return pool, nil
}

// Migrate applies the catalog migrations and prints what it applied.
func Migrate(ctx context.Context, a adminEnv, out io.Writer) error {
	pool, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := catalog.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "catalog is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(out, "applied", m)
	}
	return nil
}

// MigrateOptions are the flags of `eventstream migrate`.
type MigrateOptions struct {
	// Wait applies nothing: it polls until the catalog holds every migration
	// this binary embeds (--wait; the chart's init containers run it, so pods
	// wait for the schema their image needs, never for the hook Job).
	Wait bool
	// Timeout bounds Wait; past it the command fails (--timeout, 5m).
	Timeout time.Duration
	// Interval is the pause between polls (--interval, 2s).
	Interval time.Duration
}

func parseMigrateArgs(args []string, stderr io.Writer) (MigrateOptions, error) {
	o := MigrateOptions{}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.Wait, "wait", false, "apply nothing; wait until the catalog has every migration this binary embeds")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "with --wait: give up (exit 1) after this long")
	fs.DurationVar(&o.Interval, "interval", 2*time.Second, "with --wait: pause between checks")
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 || o.Timeout <= 0 || o.Interval <= 0 {
		fmt.Fprintln(stderr, "usage: eventstream migrate [--wait [--timeout d] [--interval d]]")
		return o, errUsage
	}
	return o, nil
}

// WaitForSchema polls the catalog until it holds every embedded migration
// (catalog.Pending), applying nothing; it fails after o.Timeout, naming what
// is still missing (or why the database could not be read). An unreachable
// database is waited for too: pods may start before Postgres answers.
func WaitForSchema(ctx context.Context, a adminEnv, o MigrateOptions, out io.Writer) error {
	u, err := a.databaseURL()
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer pool.Close()
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	said := ""
	for {
		qctx, qcancel := context.WithTimeout(wctx, 5*time.Second)
		pending, err := catalog.Pending(qctx, pool)
		qcancel()
		if err == nil && len(pending) == 0 {
			fmt.Fprintln(out, "catalog has every migration")
			return nil
		}
		state := "waiting for migrations: " + strings.Join(pending, ", ")
		if err != nil {
			state = "waiting for the catalog: " + err.Error()
		}
		if state != said {
			fmt.Fprintln(out, state)
			said = state
		}
		t := time.NewTimer(o.Interval)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("timed out after %s %s", o.Timeout, state)
		case <-t.C:
		}
	}
}

// TenantOptions are the flags of `eventstream tenant`.
type TenantOptions struct {
	Name   string
	Scopes []string
	TTL    time.Duration
}

// ProvisionTenant creates the tenant in the catalog and its Kafka topic, then
// prints a bearer token for it as the last line of out.
func ProvisionTenant(ctx context.Context, a adminEnv, o TenantOptions, out io.Writer, log *slog.Logger) error {
	if !validTenant(o.Name) {
		return fmt.Errorf("%q is not a tenant name: lowercase letters, digits and '-', at most 63, not starting with '-'", o.Name)
	}
	hs, err := a.secret("AUTH_HS256_SECRET")
	if err != nil {
		return err
	}
	pool, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Provisioning never reads integration secrets, so the store needs a key
	// only when one is at hand.
	var box *secrets.Box
	if k, err := a.secret("SECRETS_KEY"); err == nil {
		if key, err := secrets.ParseKey(k); err == nil {
			box, _ = secrets.New(key)
		}
	}
	brokers, err := a.brokers()
	if err != nil {
		return err
	}
	d := deps{getenv: a.getenvWithLocal(), pool: pool, store: catalog.New(pool, box), brokers: brokers, log: log, topics: a.cfg}
	if err := provisionTenant(ctx, d, o.Name); err != nil {
		return err
	}
	token, err := auth.Mint(hs, o.Name, o.Scopes, o.TTL)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "tenant %s provisioned; bearer token (scopes %s, valid %s):\n", o.Name, strings.Join(o.Scopes, " "), shortDuration(o.TTL))
	fmt.Fprintln(out, token)
	return nil
}

// MintToken prints a bearer token for a tenant, signed with the local stack's
// HS256 secret (or AUTH_HS256_SECRET).
func MintToken(a adminEnv, o TenantOptions, out io.Writer) error {
	if !validTenant(o.Name) {
		return fmt.Errorf("%q is not a tenant name", o.Name)
	}
	hs, err := a.secret("AUTH_HS256_SECRET")
	if err != nil {
		return err
	}
	token, err := auth.Mint(hs, o.Name, o.Scopes, o.TTL)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, token)
	return nil
}

func knownScope(s string) bool {
	if s == auth.ScopePlatform {
		return true
	}
	for _, k := range auth.AllTenantScopes {
		if s == k {
			return true
		}
	}
	return false
}

// parseScopes splits a comma- or space-separated scope list and refuses
// unknown scopes (a typo would mint a token every request rejects with 403).
func parseScopes(s string) ([]string, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	if len(f) == 0 {
		return nil, errors.New("--scopes is empty")
	}
	for _, sc := range f {
		if !knownScope(sc) {
			return nil, fmt.Errorf("unknown scope %q (known: %s %s)", sc, strings.Join(auth.AllTenantScopes, " "), auth.ScopePlatform)
		}
	}
	return f, nil
}
