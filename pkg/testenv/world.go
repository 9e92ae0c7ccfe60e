package testenv

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
)

var worldSeq atomic.Int64

// World is one delivery test's system: a fresh catalog database, a
// dedicated kfake cluster (short group sessions, so a killed worker's
// partitions move quickly), a provisioned tenant with its topic, and a
// producer for it. The delivery and S3 end-to-end tests share it.
type World struct {
	Store   *catalog.Store
	DB      *DB
	Brokers []string
	// Client produces with acks=all and no record delivery timeout
	// (kafka.ProducerOpts counts that from the record timestamp, and replay
	// tests produce records stamped hours ago).
	Client *kgo.Client
	Admin  *kadm.Client
	Tenant string
	Topic  string
}

// NewWorld starts a World whose tenant is named prefix-<pid>-<n>, with a
// topic of partitions partitions.
func NewWorld(t testing.TB, prefix string, partitions int32) *World {
	t.Helper()
	store, db := NewStore(t)
	cluster := NewKafka(t, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	brokers := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	w := &World{Store: store, DB: db, Brokers: brokers, Client: cl, Admin: kadm.NewClient(cl),
		Tenant: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), worldSeq.Add(1))}
	w.Topic = events.TopicName(w.Tenant)
	ctx := context.Background()
	if err := store.CreateTenant(ctx, w.Tenant); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopic(ctx, w.Admin, w.Topic, partitions, 1, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	return w
}
