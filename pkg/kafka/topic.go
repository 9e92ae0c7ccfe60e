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
	topicMaxMessageBytes   = MaxRecordBatchBytes + 64<<10 // room for batch framing
	infiniteRetentionValue = "-1"
)

// tenantName mirrors the catalog's CHECK on tenants.name; it also keeps the
// topic name within Kafka's legal characters.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ProvisionTenant makes sure the topic eventstream.<tenant>.events exists with
// partitions partitions (-1 = broker default), replication replicas (-1 =
// broker default), a retention of at least retention (>= MinRetention) and
// room for 1 MiB events. It is idempotent: for an existing topic it only raises
// settings that fall short and never lowers a longer retention, nor changes the
// partition count (that would move keys between partitions; an operator does
// it on purpose with kadm's CreatePartitions).
func ProvisionTenant(ctx context.Context, adm *kadm.Client, tenant string, partitions int32, replication int16, retention time.Duration) error {
	if !tenantName.MatchString(tenant) {
		return fmt.Errorf("provisioning tenant %q: name must match %s", tenant, tenantName)
	}
	if retention < MinRetention {
		return fmt.Errorf("provisioning tenant %q: retention %s is below the %s minimum", tenant, retention, MinRetention)
	}
	if partitions == 0 || partitions < -1 {
		return fmt.Errorf("provisioning tenant %q: partitions must be positive or -1 (broker default), got %d", tenant, partitions)
	}
	if replication == 0 || replication < -1 {
		return fmt.Errorf("provisioning tenant %q: replication must be positive or -1 (broker default), got %d", tenant, replication)
	}
	if err := EnsureTopic(ctx, adm, events.TopicName(tenant), partitions, replication, retention); err != nil {
		return fmt.Errorf("provisioning tenant %q: %w", tenant, err)
	}
	return nil
}

// EnsureTopic creates topic with the event-log settings, or brings an existing
// one up to them (see ProvisionTenant).
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16, retention time.Duration) error {
	retentionMs := strconv.FormatInt(retention.Milliseconds(), 10)
	maxBytes := strconv.Itoa(topicMaxMessageBytes)
	resp, err := adm.CreateTopic(ctx, partitions, replication, map[string]*string{
		ConfigRetentionMs:     &retentionMs,
		ConfigMaxMessageBytes: &maxBytes,
	}, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return raiseTopicConfigs(ctx, adm, topic, retention)
	default:
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
}

// raiseTopicConfigs raises retention and max message size of an existing topic
// where they are below what the event log needs.
func raiseTopicConfigs(ctx context.Context, adm *kadm.Client, topic string, retention time.Duration) error {
	cur, err := TopicConfigs(ctx, adm, topic)
	if err != nil {
		return err
	}
	var alter []kadm.AlterConfig
	if v, ok := cur[ConfigRetentionMs]; !ok || retentionTooShort(v, retention) {
		s := strconv.FormatInt(retention.Milliseconds(), 10)
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: ConfigRetentionMs, Value: &s})
	}
	if n, err := strconv.Atoi(cur[ConfigMaxMessageBytes]); err != nil || n < topicMaxMessageBytes {
		s := strconv.Itoa(topicMaxMessageBytes)
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: ConfigMaxMessageBytes, Value: &s})
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
