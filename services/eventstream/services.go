package eventstream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// deps are what the local stack shares with the services it embeds.
type deps struct {
	// getenv is the environment the services read their Config from
	// (process environment over the local stack's values).
	getenv     func(string) string
	pool       *pgxpool.Pool
	store      *catalog.Store
	brokers    []string
	s3Endpoint string
	log        *slog.Logger
	// topics holds the tenant topic settings (the Topic* fields).
	topics Config
}

// localEnv holds the values the embedded services need that the local stack
// makes up itself. The process environment overrides any of them.
func localEnv(keys LocalSecrets, dbURL string, brokers []string, s3Endpoint string) map[string]string {
	return map[string]string{
		"DATABASE_URL":      dbURL,
		"KAFKA_BROKERS":     strings.Join(brokers, ","),
		"S3_ENDPOINT":       s3Endpoint,
		"SECRETS_KEY":       keys.SecretsKey,
		"AUTH_HS256_SECRET": keys.HS256Secret,
	}
}

// buildServices builds every service this build embeds, in the order their
// Run functions start. Adding a service is one block here.
func buildServices(ctx context.Context, d deps) ([]Service, error) {
	_ = ctx
	var out []Service
	return out, nil
}

// provisionTenant makes tenant usable: its catalog row and its Kafka topic.
// It is idempotent.
func provisionTenant(ctx context.Context, d deps, tenant string) error {
	if err := d.store.CreateTenant(ctx, tenant); err != nil {
		return err
	}
	return provisionTopic(ctx, d, tenant)
}

// provisionTopic creates the tenant's topic (or raises its settings).
func provisionTopic(ctx context.Context, d deps, tenant string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.brokers...))
	if err != nil {
		return fmt.Errorf("creating kafka admin client: %w", err)
	}
	defer cl.Close()
	t := d.topics
	return kafka.ProvisionTenant(ctx, kadm.NewClient(cl), tenant, t.TopicPartitions, t.TopicReplication, t.TopicRetention)
}

// startEmbeddedS3 serves an S3-compatible endpoint over dir.
func startEmbeddedS3(ctx context.Context, s *Stack, dir string) (string, error) {
	_, _, _ = ctx, s, dir
	return "", nil
}
