// Package telemetry sets up OpenTelemetry for a service: traces exported over
// OTLP/HTTP when an endpoint is configured (nothing is required locally), and
// metrics exposed in Prometheus format at /metrics (plus OTLP when configured).
// Instrumented code uses the global providers (otel.Tracer, otel.Meter), so a
// library never needs to know whether telemetry is on.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Config selects exporters.
type Config struct {
	ServiceName string
	// OTLPEndpoint (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318)
	// turns on OTLP export of traces and metrics; empty keeps traces local
	// (still propagated, never exported).
	OTLPEndpoint string
	// SampleRatio of new traces to record (parent decisions are honoured).
	SampleRatio float64
}

// ConfigFromEnv reads the standard OpenTelemetry variables.
func ConfigFromEnv(service string, getenv func(string) string) Config {
	c := Config{ServiceName: service, OTLPEndpoint: getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), SampleRatio: 1}
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		c.ServiceName = n
	}
	return c
}

// Telemetry owns the providers; Shutdown flushes them.
type Telemetry struct {
	registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// Setup installs global tracer and meter providers and the W3C propagator.
func Setup(ctx context.Context, c Config) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(c.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("building resource: %w", err)
	}
	t := &Telemetry{registry: prometheus.NewRegistry()}
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.registry))
	if err != nil {
		return nil, fmt.Errorf("creating prometheus exporter: %w", err)
	}
	mpOpts = append(mpOpts, sdkmetric.WithReader(promExp))
	if c.OTLPEndpoint != "" {
		te, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.OTLPEndpoint+"/v1/traces"))
		if err != nil {
			return nil, fmt.Errorf("creating OTLP trace exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(te))
		me, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(c.OTLPEndpoint+"/v1/metrics"))
		if err != nil {
			return nil, fmt.Errorf("creating OTLP metric exporter: %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me, sdkmetric.WithInterval(30*time.Second))))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	t.shutdown = append(t.shutdown, tp.Shutdown, mp.Shutdown)
	return t, nil
}

// MetricsHandler serves the Prometheus scrape endpoint.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
