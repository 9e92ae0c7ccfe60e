package s3sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/services/delivery"
)

// Factory builds S3 sinks that share one configuration, one client cache
// (per-integration S3 clients, rebuilt when an integration changes) and one
// pool of part buffers.
type Factory struct {
	cfg     Config
	clients *clientCache
	buffers *bufferPool
	log     *slog.Logger
	metrics *instruments
}

// NewFactory validates cfg and returns a Factory. Its NewSink method is a
// delivery.NewSinkFunc.
func NewFactory(cfg Config, log *slog.Logger) (*Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	m, err := newInstruments()
	if err != nil {
		return nil, fmt.Errorf("creating s3 metrics: %w", err)
	}
	return &Factory{cfg: cfg, clients: newClientCache(cfg), buffers: newBufferPool(bufferBudget(cfg)), log: log, metrics: m}, nil
}

// Option registers the factory's sinks with a delivery service:
//
//	svc, err := delivery.New(cfg, store, pool, factory.Option())
func (f *Factory) Option() delivery.Option { return delivery.WithSink(catalog.TargetS3, f.NewSink) }

// NewSink builds the sink of one run of one S3 integration (a
// delivery.NewSinkFunc).
func (f *Factory) NewSink(_ context.Context, env delivery.SinkEnv) (delivery.Sink, error) {
	return f.newSink(env)
}

// New builds one sink with a client cache and buffer pool of its own;
// workers with many integrations use a Factory instead.
func New(cfg Config, env delivery.SinkEnv) (*Sink, error) {
	f, err := NewFactory(cfg, nil)
	if err != nil {
		return nil, err
	}
	return f.newSink(env)
}

func (f *Factory) newSink(env delivery.SinkEnv) (*Sink, error) {
	in := env.Integration
	if in == nil || in.S3 == nil {
		return nil, errors.New("s3 sink: integration has no S3 target")
	}
	if env.Done == nil || env.Interrupt == nil || env.Attempts == nil || env.Logs == nil {
		return nil, errors.New("s3 sink: incomplete SinkEnv")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sink{
		cfg:        f.cfg,
		env:        env,
		in:         in,
		client:     f.clients.get(in),
		buffers:    f.buffers,
		log:        f.log.With("tenant", in.Tenant, "integration", in.ID, "bucket", in.S3.Bucket),
		metrics:    f.metrics,
		runCtx:     ctx,
		cancel:     cancel,
		lock:       make(chan struct{}, 1),
		completing: make(chan struct{}, maxCompleting),
	}, nil
}
