package observability

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/config"
)

// Defaults applied to zero Config fields.
const (
	DefaultAddr            = ":8084"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultTailInterval    = 500 * time.Millisecond
	DefaultTailLookback    = 30 * time.Second
	DefaultTailBuffer      = 256
	DefaultHeartbeat       = 15 * time.Second
	DefaultQueryTimeout    = 30 * time.Second
)

// Config configures the observability service. Zero fields take the defaults
// above (see WithDefaults).
type Config struct {
	// Addr is the listen address of Run (OBSERVABILITY_ADDR).
	Addr string
	// DatabaseURL is the catalog's Postgres URL (DATABASE_URL); Run opens the
	// pool with it (OpenPool), the server receives the pool.
	DatabaseURL string
	// Auth selects how bearer tokens are verified (AUTH_*).
	Auth auth.Config
	// ShutdownTimeout bounds draining in-flight requests after Run's context
	// ends (OBSERVABILITY_SHUTDOWN_TIMEOUT). Open live tails are cut at once.
	ShutdownTimeout time.Duration
	// QueryTimeout bounds one list or summary query (OBSERVABILITY_QUERY_TIMEOUT).
	// The NDJSON export is bounded by the client's connection instead.
	QueryTimeout time.Duration
	// TailInterval is how often the one process-wide live-tail poller reads
	// new attempt rows while anyone listens (OBSERVABILITY_TAIL_INTERVAL).
	TailInterval time.Duration
	// TailLookback is how far back (by attempted_at) each poll looks for rows
	// it has not seen yet (OBSERVABILITY_TAIL_LOOKBACK). A row stored later
	// than this after its attempt is not tailed (the list still has it).
	TailLookback time.Duration
	// TailBuffer is how many rows a live-tail client may lag behind before it
	// is disconnected (OBSERVABILITY_TAIL_BUFFER).
	TailBuffer int
	// Heartbeat is the interval of SSE comment lines keeping idle streams
	// open through proxies (OBSERVABILITY_HEARTBEAT).
	Heartbeat time.Duration
}

// settings lists every variable of the service, one line each with its
// default and meaning: ConfigFromEnv reads them, WithDefaults applies the
// defaults to a Config built in code.
func (c *Config) settings(s *config.Set) {
	s.String(&c.Addr, "OBSERVABILITY_ADDR", DefaultAddr, "listen address (the API, the console, /healthz, /readyz, /metrics)")
	s.String(&c.DatabaseURL, "DATABASE_URL", "", "the catalog's Postgres URL (required)")
	s.PositiveDuration(&c.QueryTimeout, "OBSERVABILITY_QUERY_TIMEOUT", DefaultQueryTimeout, "bound of one list or summary query (not the export)")
	s.PositiveDuration(&c.TailInterval, "OBSERVABILITY_TAIL_INTERVAL", DefaultTailInterval, "how often the live-tail poller reads new attempts while anyone listens")
	s.PositiveDuration(&c.TailLookback, "OBSERVABILITY_TAIL_LOOKBACK", DefaultTailLookback, "how far back (by attempted_at) each poll looks for unseen rows")
	s.PositiveInt(&c.TailBuffer, "OBSERVABILITY_TAIL_BUFFER", DefaultTailBuffer, "rows a live-tail client may lag behind before it is disconnected")
	s.PositiveDuration(&c.Heartbeat, "OBSERVABILITY_HEARTBEAT", DefaultHeartbeat, "interval of the SSE heartbeat comment")
	s.PositiveDuration(&c.ShutdownTimeout, "OBSERVABILITY_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "drain time for in-flight requests")
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.settings(config.Defaults())
	return c
}

// Validate checks the configuration before any connection opens.
func (c Config) Validate() error {
	if err := c.check(); err != nil {
		return fmt.Errorf("observability config: %w", err)
	}
	return nil
}

// check is Validate's list of problems, joined, without the prefix, so that
// ConfigFromEnv reports them together with the malformed variables.
func (c Config) check() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("OBSERVABILITY_ADDR is empty"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"OBSERVABILITY_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"OBSERVABILITY_QUERY_TIMEOUT", c.QueryTimeout},
		{"OBSERVABILITY_TAIL_INTERVAL", c.TailInterval},
		{"OBSERVABILITY_TAIL_LOOKBACK", c.TailLookback},
		{"OBSERVABILITY_HEARTBEAT", c.Heartbeat},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if c.TailLookback < c.TailInterval {
		errs = append(errs, errors.New("OBSERVABILITY_TAIL_LOOKBACK must be at least OBSERVABILITY_TAIL_INTERVAL"))
	}
	if c.TailBuffer <= 0 {
		errs = append(errs, errors.New("OBSERVABILITY_TAIL_BUFFER must be positive"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main) and
// validates it: every malformed or missing variable is reported at once,
// before any connection opens. It is the only place the service reads its
// environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	s := config.FromEnv(getenv)
	c.settings(s)
	c.Auth = auth.ConfigFromEnv(getenv)
	if c.DatabaseURL != "" {
		// Parsed here, not first by OpenPool, so a malformed URL is reported
		// with the other variables. pgconn's error masks the password.
		if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
			s.Fail(fmt.Errorf("DATABASE_URL: %w", err))
		}
	}
	// A malformed variable left its field zero, so check sees its default
	// and does not report it twice.
	c = c.WithDefaults()
	if err := c.check(); err != nil {
		s.Fail(err)
	}
	if err := s.Err(); err != nil {
		return Config{}, fmt.Errorf("reading observability config: %w", err)
	}
	return c, nil
}
