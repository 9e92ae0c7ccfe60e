package observability

import (
	"errors"
	"fmt"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
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
	// DatabaseURL is the catalog's Postgres URL (DATABASE_URL); main opens the
	// pool with it, the server receives the pool.
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

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.TailInterval == 0 {
		c.TailInterval = DefaultTailInterval
	}
	if c.TailLookback == 0 {
		c.TailLookback = DefaultTailLookback
	}
	if c.TailBuffer == 0 {
		c.TailBuffer = DefaultTailBuffer
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	return c
}

// Validate checks the configuration before any connection opens.
func (c Config) Validate() error {
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("observability config: %w", err)
	}
	return nil
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main) and
// validates it. It is the only place the service reads its environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:        getenv("OBSERVABILITY_ADDR"),
		DatabaseURL: getenv("DATABASE_URL"),
		Auth:        auth.ConfigFromEnv(getenv),
	}
	var errs []error
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"OBSERVABILITY_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"OBSERVABILITY_QUERY_TIMEOUT", &c.QueryTimeout},
		{"OBSERVABILITY_TAIL_INTERVAL", &c.TailInterval},
		{"OBSERVABILITY_TAIL_LOOKBACK", &c.TailLookback},
		{"OBSERVABILITY_HEARTBEAT", &c.Heartbeat},
	}
	for _, d := range durations {
		if v := getenv(d.name); v != "" {
			p, err := time.ParseDuration(v)
			if err != nil || p <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", d.name, v))
			}
			*d.dst = p
		}
	}
	if v := getenv("OBSERVABILITY_TAIL_BUFFER"); v != "" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != v {
			errs = append(errs, fmt.Errorf("OBSERVABILITY_TAIL_BUFFER: %q is not a positive integer", v))
		}
		c.TailBuffer = n
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("reading observability config: %w", err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
