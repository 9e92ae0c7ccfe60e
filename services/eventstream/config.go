package eventstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// Config is the local runner's own configuration. The embedded services read
// theirs through their own ConfigFromEnv, over an environment the runner
// completes with the local values (see Stack.env).
type Config struct {
	// DataDir holds everything the local stack keeps between runs: the
	// Postgres cluster, the broker's log, the S3 files and the local secrets
	// (EVENTSTREAM_DATA_DIR, default ./.data).
	DataDir string
	// Addr is where the one base URL listens (EVENTSTREAM_ADDR, default
	// 127.0.0.1:8080; a URL such as http://127.0.0.1:8080 is accepted too).
	Addr string
	// PostgresPort, KafkaPort and S3Port are the loopback ports of the
	// embedded Postgres, broker and S3 endpoint (EVENTSTREAM_POSTGRES_PORT
	// 5433, EVENTSTREAM_KAFKA_PORT 9092, EVENTSTREAM_S3_PORT 9000; 0 = any
	// free port).
	PostgresPort int
	KafkaPort    int
	S3Port       int
	// DatabaseURL, KafkaBrokers and S3Endpoint point the stack at real servers
	// instead of the embedded ones (DATABASE_URL, KAFKA_BROKERS, S3_ENDPOINT).
	DatabaseURL  string
	KafkaBrokers []string
	S3Endpoint   string
	// TopicPartitions, TopicReplication and TopicRetention shape the topic
	// each provisioned tenant gets (KAFKA_TOPIC_PARTITIONS, default 3;
	// KAFKA_TOPIC_REPLICATION, default -1 = the broker's default;
	// KAFKA_TOPIC_RETENTION, default 840h = 35 days, at least 720h).
	TopicPartitions  int32
	TopicReplication int16
	TopicRetention   time.Duration
	// TopicMinInsync is the tenant topics' min.insync.replicas
	// (KAFKA_TOPIC_MIN_INSYNC_REPLICAS, default 0 = min(2, replication factor)).
	TopicMinInsync int16
	// PublicHosts are the stack's own public hosts, to which no webhook may
	// deliver (PUBLIC_HOSTS, comma-separated URLs, host:port or hosts; default
	// the base URL http://<EVENTSTREAM_ADDR>, none when its port is 0). The
	// embedded services read it from their environment.
	PublicHosts string
	// DemoTenant is provisioned at start and gets the printed token
	// (EVENTSTREAM_DEMO_TENANT, default demo).
	DemoTenant string
	// TokenTTL is how long minted tokens stay valid (EVENTSTREAM_TOKEN_TTL, default 24h).
	TokenTTL time.Duration
	// ShutdownTimeout bounds the drain after Ctrl-C (EVENTSTREAM_SHUTDOWN_TIMEOUT, default 20s).
	ShutdownTimeout time.Duration
	// LogLevel of the stderr log (EVENTSTREAM_LOG_LEVEL: debug, info, warn, error; default info).
	LogLevel slog.Level
}

// Defaults of the local stack: the ports the README documents.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultPostgresPort = 5433
	DefaultKafkaPort    = 9092
	DefaultS3Port       = 9000
	DefaultDataDir      = ".data"
	DefaultDemoTenant   = "demo"
)

// settings lists every variable of the runner, one line each with its
// default and meaning (see package config): ConfigFromEnv reads them,
// DefaultConfig applies the defaults. A port of 0 means any free port, so
// the defaults apply to unset variables only.
func (c *Config) settings(s *config.Set) {
	s.String(&c.DataDir, "EVENTSTREAM_DATA_DIR", DefaultDataDir, "what the local stack keeps between runs")
	config.Custom(s, &c.Addr, "EVENTSTREAM_ADDR", DefaultAddr, "the base URL's listen address (host:port or http://host:port)", parseAddr)
	config.Custom(s, &c.PostgresPort, "EVENTSTREAM_POSTGRES_PORT", strconv.Itoa(DefaultPostgresPort), "embedded Postgres port (0: any)", parsePort)
	config.Custom(s, &c.KafkaPort, "EVENTSTREAM_KAFKA_PORT", strconv.Itoa(DefaultKafkaPort), "embedded Kafka port (0: any)", parsePort)
	config.Custom(s, &c.S3Port, "EVENTSTREAM_S3_PORT", strconv.Itoa(DefaultS3Port), "embedded S3 endpoint port (0: any)", parsePort)
	s.String(&c.DatabaseURL, "DATABASE_URL", "", "use this Postgres instead of the embedded one")
	s.List(&c.KafkaBrokers, "KAFKA_BROKERS", nil, "use these brokers instead of the embedded one")
	s.String(&c.S3Endpoint, "S3_ENDPOINT", "", "use this S3-compatible endpoint instead of the embedded one")
	config.Custom(s, &c.TopicPartitions, "KAFKA_TOPIC_PARTITIONS", "3", "partitions of each tenant topic (-1: the broker's default)", parseTopicPartitions)
	config.Custom(s, &c.TopicReplication, "KAFKA_TOPIC_REPLICATION", "-1", "replication factor of each tenant topic (-1: the broker's default)", parseTopicReplication)
	s.Duration(&c.TopicRetention, "KAFKA_TOPIC_RETENTION", kafka.DefaultRetention, "retention of each tenant topic (at least 720h)")
	config.Custom(s, &c.TopicMinInsync, "KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "0", "min.insync.replicas of each tenant topic (0: min(2, replication))", parseMinInsync)
	s.String(&c.PublicHosts, "PUBLIC_HOSTS", defaultPublicHosts(c.Addr), "the stack's own hosts, passed to the services")
	s.String(&c.DemoTenant, "EVENTSTREAM_DEMO_TENANT", DefaultDemoTenant, "tenant provisioned at start, whose token is printed")
	s.Duration(&c.TokenTTL, "EVENTSTREAM_TOKEN_TTL", 24*time.Hour, "validity of printed and minted tokens")
	s.Duration(&c.ShutdownTimeout, "EVENTSTREAM_SHUTDOWN_TIMEOUT", 20*time.Second, "how long Ctrl-C waits for the services to drain")
	config.Custom(s, &c.LogLevel, "EVENTSTREAM_LOG_LEVEL", "info", "debug, info, warn or error", parseLevel)
}

func parseAddr(v string) (string, error) {
	return strings.TrimSuffix(strings.TrimPrefix(v, "http://"), "/"), nil
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", v)
	}
	return n, nil
}

func parseTopicPartitions(v string) (int32, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || (n < 1 && n != -1) {
		return 0, fmt.Errorf("%q is not a positive number (or -1)", v)
	}
	return int32(n), nil
}

func parseTopicReplication(v string) (int16, error) {
	n, err := strconv.ParseInt(v, 10, 16)
	if err != nil || (n < 1 && n != -1) {
		return 0, fmt.Errorf("%q is not a positive number (or -1)", v)
	}
	return int16(n), nil
}

func parseMinInsync(v string) (int16, error) {
	n, err := strconv.ParseInt(v, 10, 16)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a positive number (or 0 for min(2, replication))", v)
	}
	return int16(n), nil
}

func parseLevel(v string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(v))
	return l, err
}

// DefaultConfig returns the configuration used when no variable is set.
func DefaultConfig() Config {
	var c Config
	c.settings(config.Defaults())
	return c
}

// ConfigFromEnv reads the runner's variables; unset ones take their defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	s := config.FromEnv(getenv)
	c.settings(s)
	if err := s.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("EVENTSTREAM_DATA_DIR must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("EVENTSTREAM_ADDR: %q is not host:port: %w", c.Addr, err))
	}
	if !validTenant(c.DemoTenant) {
		errs = append(errs, fmt.Errorf("EVENTSTREAM_DEMO_TENANT: %q is not a tenant name (lowercase letters, digits and '-', at most 63)", c.DemoTenant))
	}
	if c.TopicReplication > 0 && c.TopicMinInsync > c.TopicReplication {
		errs = append(errs, fmt.Errorf("KAFKA_TOPIC_MIN_INSYNC_REPLICAS: %d exceeds KAFKA_TOPIC_REPLICATION %d (every publish would fail)", c.TopicMinInsync, c.TopicReplication))
	}
	if c.TopicRetention < kafka.MinRetention {
		errs = append(errs, fmt.Errorf("KAFKA_TOPIC_RETENTION: %s is below the %s minimum (stopped integrations resume within 30 days)", c.TopicRetention, kafka.MinRetention))
	}
	if c.TokenTTL <= 0 {
		errs = append(errs, errors.New("EVENTSTREAM_TOKEN_TTL must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("EVENTSTREAM_SHUTDOWN_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// defaultPublicHosts is the base URL's host:port, or "" when the port is
// chosen at listen time (0): a bare host would refuse every port of it,
// including the loopback receivers developers test with.
func defaultPublicHosts(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		// Listening on every interface: loopback reaches it too.
		return "http://" + net.JoinHostPort("127.0.0.1", port) + ",http://" + net.JoinHostPort("::1", port) +
			",http://" + net.JoinHostPort("localhost", port)
	}
	return "http://" + addr
}

// validTenant mirrors the catalog's CHECK on tenants.name, so a bad name is
// refused with a clear message before any connection opens.
func validTenant(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}
