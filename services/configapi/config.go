package configapi

import (
	"errors"
	"fmt"
	"math"
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
	// DefaultRetryRate and DefaultRetryBurst limit each tenant's _retry calls:
	// each one makes the service call the tenant's endpoint, so unlimited
	// retries would let a tenant aim this service's traffic at a host.
	DefaultRetryRate  = 1.0 // per second
	DefaultRetryBurst = 10
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
	// EncryptionKey is the 32-byte AES key sealing integration secrets
	// (SECRETS_KEY), used when EncryptionKeys is empty.
	EncryptionKey []byte
	// EncryptionKeys is the keyring (SECRETS_KEYS, comma-separated; it wins
	// over SECRETS_KEY): the first key encrypts, every key decrypts.
	EncryptionKeys [][]byte
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
	// OwnHosts are this service's own public hosts (PUBLIC_HOSTS,
	// comma-separated URLs, host:port or hosts; see webhook.OwnHosts): a
	// callback_url pointing at one is refused (400), and the _retry sender
	// refuses them too. Nil: none (the local stack sets its base URL).
	OwnHosts *webhook.OwnHosts
	// RetryRate and RetryBurst limit each tenant's _retry calls (a token
	// bucket: CONFIGAPI_RETRY_RATE per second, CONFIGAPI_RETRY_BURST at
	// once); past it _retry answers 429 with Retry-After.
	// CONFIGAPI_RETRY_RATE=0 turns the limit off (RetryRate < 0 here; 0
	// takes the default).
	RetryRate  float64
	RetryBurst int
}

// Keyring returns the encryption keys, first key first.
func (c Config) Keyring() [][]byte {
	if len(c.EncryptionKeys) > 0 {
		return c.EncryptionKeys
	}
	if c.EncryptionKey != nil {
		return [][]byte{c.EncryptionKey}
	}
	return nil
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
	if c.RetryRate == 0 {
		c.RetryRate = DefaultRetryRate
	}
	if c.RetryBurst == 0 {
		c.RetryBurst = DefaultRetryBurst
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
	if ring := c.Keyring(); len(ring) == 0 {
		errs = append(errs, errors.New("SECRETS_KEY (or SECRETS_KEYS) is required: 32 bytes as 64 hex characters or base64"))
	} else if _, err := secrets.NewRing(ring); err != nil {
		errs = append(errs, fmt.Errorf("SECRETS_KEY/SECRETS_KEYS: %w", err))
	}
	if c.RetryBurst < 0 {
		errs = append(errs, errors.New("CONFIGAPI_RETRY_BURST must be positive"))
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
	keys, err := secrets.KeysFromEnv(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	if len(keys) > 0 {
		c.EncryptionKey, c.EncryptionKeys = keys[0], keys
	}
	if v := getenv("PUBLIC_HOSTS"); v != "" {
		own, err := webhook.ParseOwnHosts(strings.Split(v, ","))
		if err != nil {
			errs = append(errs, fmt.Errorf("PUBLIC_HOSTS: %w", err))
		}
		c.OwnHosts = own
	}
	if v := getenv("CONFIGAPI_RETRY_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0):
			errs = append(errs, fmt.Errorf("CONFIGAPI_RETRY_RATE: %q is not a number of retries per second (0 = off)", v))
		case f == 0:
			c.RetryRate = -1 // off
		default:
			c.RetryRate = f
		}
	}
	if v := getenv("CONFIGAPI_RETRY_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("CONFIGAPI_RETRY_BURST: %q is not a positive integer", v))
		}
		c.RetryBurst = n
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
