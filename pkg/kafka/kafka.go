// Package kafka holds how Event Stream talks to Kafka: the franz-go producer
// settings every publisher shares, tenant topic provisioning (kadm), and the
// record layout of the event log (key = domain entity id, value = the protobuf
// Event envelope, headers = W3C trace context).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxRecordBatchBytes caps one produced record batch. The contract allows
// events of up to 1 MiB of JSON; with the protobuf envelope around the payload
// a record is slightly larger, so the client and the topic (max.message.bytes,
// see ProvisionTenant) both allow twice that. Kafka's 1 MB default would refuse
// a legitimate 1 MiB event with MESSAGE_TOO_LARGE.
const MaxRecordBatchBytes = 2 << 20

// DefaultDeliveryTimeout bounds how long a produced record may wait for its
// acknowledgement when the caller sets none.
const DefaultDeliveryTimeout = 10 * time.Second

// ProducerOpts returns the franz-go options of a producer whose
// acknowledgements mean "durably in the log": a publisher answers its caller
// only after the record's promise reports success. deliveryTimeout bounds how
// long a record may be buffered or retried while the cluster is unreachable,
// so callers fail in bounded time instead of piling up records.
func ProducerOpts(deliveryTimeout time.Duration) []kgo.Opt {
	if deliveryTimeout <= 0 {
		deliveryTimeout = DefaultDeliveryTimeout
	}
	return []kgo.Opt{
		// acks=all: the leader answers only once every in-sync replica has the
		// batch, so an acknowledged event survives the loss of the leader.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Idempotent writes are franz-go's default with acks=all; we spell out
		// that we depend on it: internal retries after a lost response must
		// not write a record twice or reorder a partition. (Never call
		// kgo.DisableIdempotentWrite here.)
		//
		// A record may wait at most this long (buffered, retried) before its
		// promise fails: an unreachable cluster becomes an error the caller
		// can turn into 503, not an ever-growing buffer.
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		// The broker-side wait for the in-sync replicas: no longer than the
		// caller is willing to wait for the whole delivery.
		kgo.ProduceRequestTimeout(deliveryTimeout),
		// By default an idempotent producer refuses to give up on a record
		// that was already sent, waiting for its outcome to keep sequence
		// numbers exact; against a hung broker that is unbounded. We prefer a
		// bounded answer: the caller gets an error, retries, and event ids are
		// deterministic, so a record that did land twice is recognisable
		// downstream (delivery is at-least-once anyway).
		kgo.AllowIdempotentProduceCancellation(),
		// Events of up to 1 MiB must fit (see MaxRecordBatchBytes).
		kgo.ProducerBatchMaxBytes(MaxRecordBatchBytes),
		// No artificial linger: a single-event POST is answered as soon as
		// possible. Batching still happens naturally: records produced while
		// a request is in flight travel together in the next one.
		kgo.ProducerLinger(0),
		// Never create topics implicitly: a topic exists only for a
		// provisioned tenant (ProvisionTenant), so a typo cannot create one.
		// (Auto-creation is off unless kgo.AllowAutoTopicCreation is given;
		// franz-go's default of failing a record after a few
		// UNKNOWN_TOPIC_OR_PARTITION answers stays.)
	}
}

// NewProducer returns a client for seed brokers with ProducerOpts plus extra
// options (client id, hooks, SASL/TLS).
func NewProducer(brokers []string, deliveryTimeout time.Duration, extra ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("creating kafka producer: no seed brokers")
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, ProducerOpts(deliveryTimeout)...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka producer: %w", err)
	}
	return cl, nil
}

// Ping checks that some broker answers, for readiness probes.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging kafka: %w", err)
	}
	return nil
}
