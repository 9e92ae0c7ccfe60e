package chaos

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// broker is the in-process Kafka broker (kfake) with its log in a data dir,
// so it can be closed and opened again on the same address with its topics,
// records and committed offsets, and with switchable request errors.
type broker struct {
	dir string

	mu      sync.Mutex
	cluster *kfake.Cluster // nil while stopped
	addr    string         // host:port, fixed after the first start
	port    int
	// failing maps a request key to the error it is answered with, while a
	// broker-error fault is active.
	failing map[kmsg.Key]*kerr.Error
}

func startBroker(dir string) (*broker, error) {
	b := &broker{dir: dir, failing: map[kmsg.Key]*kerr.Error{}}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cluster != nil {
		return nil
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(b.port), // 0 the first time, the same port afterwards
		kfake.DataDir(b.dir),
		kfake.DefaultNumPartitions(4),
		// Workers use a short session timeout so a SIGKILLed one loses its
		// partitions within seconds, as a production worker does within its
		// (longer) timeout.
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		return fmt.Errorf("starting kfake on port %d: %w", b.port, err)
	}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.OffsetCommit} {
		c.ControlKey(int16(key), b.control(c, key))
	}
	b.cluster = c
	b.addr = c.ListenAddrs()[0]
	b.port = portOf(b.addr)
	return nil
}

// stop closes the broker; kfake persists its state to the data dir.
func (b *broker) stop() {
	b.mu.Lock()
	c := b.cluster
	b.cluster = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// setFailing makes requests of key fail with code (nil: normal service).
func (b *broker) setFailing(key kmsg.Key, code *kerr.Error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if code == nil {
		delete(b.failing, key)
		return
	}
	b.failing[key] = code
}

func (b *broker) failingWith(key kmsg.Key) *kerr.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failing[key]
}

// control is a ControlKey function that stays installed (KeepControl) and
// answers requests of key with the current error while one is set; otherwise
// the broker handles them normally.
func (b *broker) control(c *kfake.Cluster, key kmsg.Key) func(kmsg.Request) (kmsg.Response, error, bool) {
	return func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		code := b.failingWith(key)
		if code == nil {
			return nil, nil, false
		}
		switch r := req.(type) {
		case *kmsg.ProduceRequest:
			resp := r.ResponseKind().(*kmsg.ProduceResponse)
			for _, t := range r.Topics {
				rt := kmsg.NewProduceResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		case *kmsg.OffsetCommitRequest:
			resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, t := range r.Topics {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		default:
			// Fetch: a fetch session makes per-partition answers awkward (an
			// incremental request may carry no partitions); the broker drops
			// the connection instead, which the client sees as a broken
			// broker and retries.
			return nil, errors.New("chaos: request refused"), true
		}
	}
}
