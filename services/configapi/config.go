package configapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// Defaults applied to zero Config fields.
const (
	DefaultAddr            = ":8081"
	DefaultBodyLimit       = 256 << 10
	DefaultMaxIntegrations = 10
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures the configuration API service. Zero fields take the
// defaults above (see WithDefaults).
type Config struct {
	// Addr is the listen address of Run (CONFIGAPI_ADDR).
	Addr string
	// DatabaseURL is the catalog's Postgres URL (DATABASE_URL). The service
	// itself gets a ready *catalog.Store; main opens the pool with it.
	DatabaseURL string
	// Migrate applies the catalog migrations at start (CONFIGAPI_MIGRATE=true),
	// convenient for single-process setups; production runs the migrate command.
	Migrate bool
	// EncryptionKey is the 32-byte AES key sealing integration secrets (SECRETS_KEY).
	EncryptionKey []byte
	// Auth selects how bearer tokens are verified (AUTH_*).
	Auth auth.Config
	// BodyLimit caps request bodies in bytes; larger ones get 413 (CONFIGAPI_BODY_LIMIT).
	BodyLimit int64
	// MaxIntegrations is how many integrations one tenant may hold, counting
	// temporary and stopped ones (MAX_INTEGRATIONS_PER_TENANT).
	MaxIntegrations int
	// ShutdownTimeout bounds how long Run waits for in-flight requests after
	// its context ends (CONFIGAPI_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// WebhookAllowCIDRs are the non-public address ranges the _retry sender
	// may call (WEBHOOK_ALLOW_CIDRS, comma-separated; same as the delivery
	// workers'). Empty: only public addresses.
	WebhookAllowCIDRs []netip.Prefix
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxIntegrations == 0 {
		c.MaxIntegrations = DefaultMaxIntegrations
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// Validate checks the configuration before any connection opens.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("CONFIGAPI_ADDR is empty"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	if len(c.EncryptionKey) != 32 {
		errs = append(errs, errors.New("SECRETS_KEY is required: 32 bytes as 64 hex characters or base64"))
	}
	if c.BodyLimit <= 0 {
		errs = append(errs, errors.New("CONFIGAPI_BODY_LIMIT must be positive"))
	}
	if c.MaxIntegrations <= 0 {
		errs = append(errs, errors.New("MAX_INTEGRATIONS_PER_TENANT must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("CONFIGAPI_SHUTDOWN_TIMEOUT must be positive"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configapi config: %w", err)
	}
	return nil
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main) and
// validates it. It is the only place the service reads its environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:        getenv("CONFIGAPI_ADDR"),
		DatabaseURL: getenv("DATABASE_URL"),
		Auth:        auth.ConfigFromEnv(getenv),
	}
	var errs []error
	if v := getenv("SECRETS_KEY"); v != "" {
		k, err := secrets.ParseKey(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SECRETS_KEY: %w", err))
		}
		c.EncryptionKey = k
	}
	if v := getenv("CONFIGAPI_MIGRATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("CONFIGAPI_MIGRATE: %q is not a boolean", v))
		}
		c.Migrate = b
	}
	if v := getenv("CONFIGAPI_BODY_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("CONFIGAPI_BODY_LIMIT: %q is not a positive number of bytes", v))
		}
		c.BodyLimit = n
	}
	if v := getenv("MAX_INTEGRATIONS_PER_TENANT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("MAX_INTEGRATIONS_PER_TENANT: %q is not a positive integer", v))
		}
		c.MaxIntegrations = n
	}
	if v := getenv("WEBHOOK_ALLOW_CIDRS"); v != "" {
		p, err := webhook.ParseCIDRs(strings.Fields(strings.ReplaceAll(v, ",", " ")))
		if err != nil {
			errs = append(errs, fmt.Errorf("WEBHOOK_ALLOW_CIDRS: %w", err))
		}
		c.WebhookAllowCIDRs = p
	}
	if v := getenv("CONFIGAPI_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("CONFIGAPI_SHUTDOWN_TIMEOUT: %q is not a positive duration", v))
		}
		c.ShutdownTimeout = d
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("reading configapi config: %w", err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
