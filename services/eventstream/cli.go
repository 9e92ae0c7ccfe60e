// Package eventstream is the all-in-one local runner and admin CLI of Event
// Stream: `run` starts the whole system on loopback (Postgres, Kafka and S3
// embedded unless real ones are configured, every service behind one base
// URL); `migrate`, `tenant`, `token` and `rotate-secrets` administer a
// catalog; `loadgen` drives any deployment with events and measures it;
// `benchtable` turns `go test -bench` output into the table
// `make bench` prints.
package eventstream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/eventstream/eventstream/pkg/auth"
)

const usage = `usage: eventstream <command> [arguments]

commands:
  run                         start the local stack (Ctrl-C stops it)
  migrate                     apply catalog migrations to DATABASE_URL (or the running local stack)
  migrate --wait [--timeout d] apply nothing: wait until the catalog has every migration this
                              binary embeds (exit 1 after the timeout, default 5m)
  --version                   print the version and exit
  tenant <name> [--scopes s] [--ttl d]
                              provision a tenant (catalog row + Kafka topic) and print a
                              bearer token for it as the last line
  token <tenant> [--scopes s] [--ttl d]
                              print a bearer token signed with the local HS256 secret
  rotate-secrets [--batch n]  re-encrypt every stored integration secret with the first key
                              of SECRETS_KEYS (idempotent; exits non-zero if any is unreadable)
  chaos [--seed n] [--duration d] [flags]
                              run the fault-injection suite; exits non-zero on any loss
  loadgen [--rate n] [--duration d] [--batch n] [--receiver addr] ...
                              publish events to a deployment ($EVENTSTREAM_URL, $TOKEN) at a fixed
                              rate or flat out; progress each second, then a summary; with
                              --receiver also publish → delivery latency (loadgen -h: every flag)
  benchtable [--expect dir]   read 'go test -bench' output on stdin, print a table of metrics;
                              exits non-zero if a benchmark has no row (with --expect: any
                              func Benchmark* in the Go test files under dir)

Scopes are comma-separated: integrations:read, integrations:write, events:publish,
events:read (the default is all four) and platform.
Configuration comes from the environment; see README.md.
`

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "eventstream: configuration:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// The embedded services log through the default logger: one format, one stream.
	slog.SetDefault(log)
	a := adminEnv{cfg: cfg, getenv: getenv}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		if len(rest) > 0 {
			err = fmt.Errorf("run takes no arguments (configure it with environment variables)")
			break
		}
		var st *Stack
		if st, err = NewStack(cfg, getenv, stdout, log); err == nil {
			err = st.Run(ctx)
		}
	case "migrate":
		var o MigrateOptions
		if o, err = parseMigrateArgs(rest, stderr); err != nil {
			break
		}
		if o.Wait {
			err = WaitForSchema(ctx, a, o, stdout)
		} else {
			err = Migrate(ctx, a, stdout)
		}
	case "tenant", "token":
		var o TenantOptions
		if o, err = parseTenantArgs(cmd, rest, cfg, stderr); err != nil {
			break
		}
		if cmd == "tenant" {
			err = ProvisionTenant(ctx, a, o, stdout, log)
		} else {
			err = MintToken(a, o, stdout)
		}
	case "rotate-secrets":
		err = RotateSecrets(ctx, a, rest, stdout, stderr)
	case "loadgen":
		var lc LoadgenConfig
		if lc, err = parseLoadgenArgs(rest, getenv, stderr); err == nil {
			_, err = Loadgen(ctx, lc, stdout, stderr)
		}
	case "benchtable":
		err = runBenchTable(rest, stdin, stdout, stderr)
	case "chaos":
		err = RunChaos(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "eventstream: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "eventstream "+cmd+":", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// parseTenantArgs reads `<name> [--scopes s] [--ttl d]`, flags before or after the name.
func parseTenantArgs(cmd string, args []string, cfg Config, stderr io.Writer) (TenantOptions, error) {
	o := TenantOptions{Scopes: auth.AllTenantScopes, TTL: cfg.TokenTTL}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopes := fs.String("scopes", strings.Join(auth.AllTenantScopes, ","), "comma-separated scopes")
	fs.DurationVar(&o.TTL, "ttl", cfg.TokenTTL, "how long the token is valid")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.Name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if o.Name == "" && fs.NArg() > 0 {
		o.Name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return o, errUsage
		}
	}
	if o.Name == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: eventstream %s <tenant> [--scopes s] [--ttl d]\n", cmd)
		return o, errUsage
	}
	sc, err := parseScopes(*scopes)
	if err != nil {
		return o, err
	}
	o.Scopes = sc
	if o.TTL <= 0 {
		return o, errors.New("--ttl must be positive")
	}
	return o, nil
}
