package kafka

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventstream/eventstream/pkg/events"
)

// MinRetention is the shortest retention a tenant topic may have: an
// integration restarted within 30 days must find everything it missed.
const MinRetention = 30 * 24 * time.Hour

// DefaultRetention is MinRetention plus a margin, so an integration stopped
// for exactly 30 days never races the log cleaner.
const DefaultRetention = 35 * 24 * time.Hour

// Topic config keys ProvisionTenant manages.
const (
	ConfigRetentionMs      = "retention.ms"
	ConfigMaxMessageBytes  = "max.message.bytes"
	ConfigMinInsync        = "min.insync.replicas"
	topicMaxMessageBytes   = MaxRecordBatchBytes + 64<<10 // room for batch framing
	infiniteRetentionValue = "-1"
)

// tenantName mirrors the catalog's CHECK on tenants.name; it also keeps the
// topic name within Kafka's legal characters.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// TopicSettings shape a tenant topic.
type TopicSettings struct {
	// Partitions and Replication: positive, or -1 for the broker's default.
	Partitions  int32
	Replication int16
	// Retention is at least MinRetention.
	Retention time.Duration
	// MinInsyncReplicas is how many replicas must have a record before an
	// acks=all produce succeeds. 0 means min(2, replication factor): with a
	// single in-sync replica an acknowledged event lives on one disk only,
	// and a broker lost right after the 202 loses it. A value above the
	// replication factor is refused (every produce would fail).
	MinInsyncReplicas int16
}

// ProvisionTenant makes sure the topic eventstream.<tenant>.events exists with
// partitions partitions (-1 = broker default), replication replicas (-1 =
// broker default), a retention of at least retention (>= MinRetention),
// min.insync.replicas of min(2, replication factor) and room for 1 MiB
// events. It is ProvisionTenantTopic with the default min.insync.replicas.
func ProvisionTenant(ctx context.Context, adm *kadm.Client, tenant string, partitions int32, replication int16, retention time.Duration) error {
	return ProvisionTenantTopic(ctx, adm, tenant, TopicSettings{Partitions: partitions, Replication: replication, Retention: retention})
}

// ProvisionTenantTopic makes sure the tenant's topic exists with settings. It
// is idempotent: for an existing topic it only raises settings that fall
// short and never lowers a longer retention or a higher min.insync.replicas,
// nor changes the partition count (that would move keys between partitions;
// an operator does it on purpose with kadm's CreatePartitions).
func ProvisionTenantTopic(ctx context.Context, adm *kadm.Client, tenant string, t TopicSettings) error {
	if !tenantName.MatchString(tenant) {
		return fmt.Errorf("provisioning tenant %q: name must match %s", tenant, tenantName)
	}
	if t.Retention < MinRetention {
		return fmt.Errorf("provisioning tenant %q: retention %s is below the %s minimum", tenant, t.Retention, MinRetention)
	}
	if t.Partitions == 0 || t.Partitions < -1 {
		return fmt.Errorf("provisioning tenant %q: partitions must be positive or -1 (broker default), got %d", tenant, t.Partitions)
	}
	if t.Replication == 0 || t.Replication < -1 {
		return fmt.Errorf("provisioning tenant %q: replication must be positive or -1 (broker default), got %d", tenant, t.Replication)
	}
	if err := EnsureTopicSettings(ctx, adm, events.TopicName(tenant), t); err != nil {
		return fmt.Errorf("provisioning tenant %q: %w", tenant, err)
	}
	return nil
}

// EnsureTopic creates topic with the event-log settings, or brings an existing
// one up to them (see ProvisionTenant).
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16, retention time.Duration) error {
	return EnsureTopicSettings(ctx, adm, topic, TopicSettings{Partitions: partitions, Replication: replication, Retention: retention})
}

// EnsureTopicSettings creates topic with settings, or brings an existing one
// up to them (see ProvisionTenantTopic).
func EnsureTopicSettings(ctx context.Context, adm *kadm.Client, topic string, t TopicSettings) error {
	if t.MinInsyncReplicas < 0 {
		return fmt.Errorf("topic %s: min.insync.replicas must be positive (or 0 for the default), got %d", topic, t.MinInsyncReplicas)
	}
	if t.Replication > 0 && t.MinInsyncReplicas > t.Replication {
		return fmt.Errorf("topic %s: min.insync.replicas %d exceeds the replication factor %d (every acks=all produce would fail)",
			topic, t.MinInsyncReplicas, t.Replication)
	}
	retentionMs := strconv.FormatInt(t.Retention.Milliseconds(), 10)
	maxBytes := strconv.Itoa(topicMaxMessageBytes)
	configs := map[string]*string{
		ConfigRetentionMs:     &retentionMs,
		ConfigMaxMessageBytes: &maxBytes,
	}
	if t.Replication > 0 {
		// Known replication: set it at creation. With the broker's default
		// replication the factor is read back after creation instead.
		minInsync := strconv.Itoa(int(wantMinInsync(t.MinInsyncReplicas, t.Replication)))
		configs[ConfigMinInsync] = &minInsync
	}
	resp, err := adm.CreateTopic(ctx, t.Partitions, t.Replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil && t.Replication > 0:
		return nil
	case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
		return raiseTopicConfigs(ctx, adm, topic, t)
	default:
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
}

// wantMinInsync is the min.insync.replicas for a topic of replication
// factor rf: the configured value, or min(2, rf).
func wantMinInsync(configured, rf int16) int16 {
	if configured > 0 {
		return configured
	}
	return min(2, max(rf, 1))
}

// raiseTopicConfigs raises retention, max message size and
// min.insync.replicas of an existing topic where they are below what the
// event log needs.
func raiseTopicConfigs(ctx context.Context, adm *kadm.Client, topic string, t TopicSettings) error {
	cur, err := TopicConfigs(ctx, adm, topic)
	if err != nil {
		return err
	}
	var alter []kadm.AlterConfig
	if v, ok := cur[ConfigRetentionMs]; !ok || retentionTooShort(v, t.Retention) {
		s := strconv.FormatInt(t.Retention.Milliseconds(), 10)
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: ConfigRetentionMs, Value: &s})
	}
	if n, err := strconv.Atoi(cur[ConfigMaxMessageBytes]); err != nil || n < topicMaxMessageBytes {
		s := strconv.Itoa(topicMaxMessageBytes)
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: ConfigMaxMessageBytes, Value: &s})
	}
	rf, err := replicationFactor(ctx, adm, topic)
	if err != nil {
		return err
	}
	want := wantMinInsync(t.MinInsyncReplicas, rf)
	if want > rf {
		return fmt.Errorf("topic %s: min.insync.replicas %d exceeds its replication factor %d (every acks=all produce would fail)", topic, want, rf)
	}
	if n, err := strconv.Atoi(cur[ConfigMinInsync]); err != nil || n < int(want) {
		s := strconv.Itoa(int(want))
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: ConfigMinInsync, Value: &s})
	}
	if len(alter) == 0 {
		return nil
	}
	rs, err := adm.AlterTopicConfigs(ctx, alter, topic)
	if err != nil {
		return fmt.Errorf("altering configs of topic %s: %w", topic, err)
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("altering configs of topic %s: %w (%s)", topic, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// replicationFactor is the replica count of topic's first partition.
func replicationFactor(ctx context.Context, adm *kadm.Client, topic string) (int16, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok {
		return 0, fmt.Errorf("describing topic %s: not listed", topic)
	}
	if d.Err != nil {
		return 0, fmt.Errorf("describing topic %s: %w", topic, d.Err)
	}
	rf := 0
	for _, p := range d.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	if rf == 0 {
		return 0, fmt.Errorf("describing topic %s: no partitions", topic)
	}
	return int16(rf), nil
}

func retentionTooShort(v string, want time.Duration) bool {
	if v == infiniteRetentionValue {
		return false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	return err != nil || ms < want.Milliseconds()
}

// TopicConfigs returns the effective configuration of topic (explicit and
// inherited values) by name.
func TopicConfigs(ctx context.Context, adm *kadm.Client, topic string) (map[string]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describing configs of topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return nil, fmt.Errorf("describing configs of topic %s: %w", topic, err)
	}
	if rc.Err != nil {
		return nil, fmt.Errorf("describing configs of topic %s: %w", topic, rc.Err)
	}
	out := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		out[c.Key] = c.MaybeValue()
	}
	return out, nil
}
