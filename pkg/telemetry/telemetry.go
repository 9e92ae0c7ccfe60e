// Package telemetry sets up OpenTelemetry and logging for a service: traces
// and metrics exported over OTLP as the standard OTEL_* variables say (nothing
// is exported, and nothing is required, when none is set), metrics always
// exposed in Prometheus format at /metrics, and the default slog logger's
// level taken from EVENTSTREAM_LOG_LEVEL. Instrumented code uses the global
// providers (otel.Tracer, otel.Meter), so a library never needs to know
// whether telemetry is on.
//
// The exporters are built by go.opentelemetry.io/contrib/exporters/autoexport
// and the sampler by the SDK, both from the process environment: besides the
// variables ConfigFromEnv reads, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf,
// the default, or grpc), the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_TRACES_SAMPLER(_ARG), OTEL_METRIC_EXPORT_INTERVAL and
// OTEL_RESOURCE_ATTRIBUTES work as the OpenTelemetry specification says.
// Failure modes: a malformed EVENTSTREAM_LOG_LEVEL, OTEL_RESOURCE_ATTRIBUTES,
// exporter name or protocol makes Setup fail (the service does not start); a
// malformed sampler is reported by the SDK on stderr and the default
// (parentbased_always_on) is used; an unreachable collector only loses
// telemetry (the exporters retry, then drop), never blocks a request.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config selects exporters and the log level.
type Config struct {
	ServiceName string
	// LogLevel of the default slog logger (EVENTSTREAM_LOG_LEVEL: debug,
	// info, warn or error; empty means info). See setLogLevel.
	LogLevel string
	// ExportTraces and ExportMetrics build the OTLP (or console) exporters
	// from the OTEL_* variables. ConfigFromEnv turns them on when an endpoint
	// or an exporter other than none is named.
	ExportTraces, ExportMetrics bool
	// Disabled (OTEL_SDK_DISABLED=true) records no spans and exports nothing
	// over OTLP; /metrics, the platform's own scrape endpoint, stays.
	Disabled bool
	// SampleRatio, when above zero, fixes parent-based ratio sampling of new
	// traces (tests use it); zero leaves it to OTEL_TRACES_SAMPLER.
	SampleRatio float64
}

// ConfigFromEnv reads the standard OpenTelemetry variables and
// EVENTSTREAM_LOG_LEVEL (validated by Setup, which reports a bad value)
// through getenv. The settings of the exporters, the sampler and the resource
// themselves (protocol, endpoints, headers, OTEL_TRACES_SAMPLER,
// OTEL_RESOURCE_ATTRIBUTES) are read by the SDK from the process environment,
// which getenv is in every service's main.
func ConfigFromEnv(service string, getenv func(string) string) Config {
	c := Config{
		ServiceName: service,
		LogLevel:    getenv("EVENTSTREAM_LOG_LEVEL"),
		// OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://collector:4318) turns on
		// both signals; a per-signal endpoint or exporter name turns on one.
		ExportTraces: exporting(getenv, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
		// OTEL_METRICS_EXPORTER=prometheus: /metrics already serves them;
		// autoexport's exporter would be a second listener.
		ExportMetrics: exporting(getenv, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") &&
			strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER")) != "prometheus",
		Disabled: strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true"),
	}
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		c.ServiceName = n
	}
	return c
}

// exporting reports whether a signal is to be exported. An exporter named
// explicitly decides (anything but none); otherwise an OTLP endpoint does, so
// that a laptop with no collector exports nothing rather than retrying
// localhost:4318 forever (autoexport's default when no endpoint is set).
func exporting(getenv func(string) string, exporterVar, endpointVar string) bool {
	if e := strings.TrimSpace(getenv(exporterVar)); e != "" {
		return e != "none"
	}
	return getenv(endpointVar) != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Telemetry owns the providers; Shutdown flushes them.
type Telemetry struct {
	registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// Setup sets the default logger's level and installs global tracer and meter
// providers and the W3C propagator.
func Setup(ctx context.Context, c Config) (*Telemetry, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	// Resource attributes: the service's name, overridden by
	// OTEL_RESOURCE_ATTRIBUTES (service.name included) and then by
	// OTEL_SERVICE_NAME, the precedence the specification gives.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(c.ServiceName)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("building resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	t := &Telemetry{registry: prometheus.NewRegistry()}
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Propagation stays on when the SDK is disabled: a service in the middle
	// of a traced path still passes its caller's context on.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	promExp, err := otelprom.New(otelprom.WithRegisterer(t.registry))
	if err != nil {
		return nil, fmt.Errorf("creating prometheus exporter: %w", err)
	}
	var spans sdktrace.SpanExporter
	if c.ExportTraces && !c.Disabled {
		// OTLP/HTTP or gRPC as OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL says.
		if spans, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, fmt.Errorf("creating span exporter (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
		}
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	if c.ExportMetrics && !c.Disabled {
		// A periodic reader (OTEL_METRIC_EXPORT_INTERVAL, default 60 s).
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			if spans != nil {
				_ = spans.Shutdown(ctx)
			}
			return nil, fmt.Errorf("creating metric exporter (OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}

	if c.Disabled {
		otel.SetTracerProvider(noop.NewTracerProvider())
	} else {
		// No sampler option: the SDK reads OTEL_TRACES_SAMPLER and
		// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on).
		tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		if c.SampleRatio > 0 {
			tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))))
		}
		if spans != nil {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(spans))
		}
		tp := sdktrace.NewTracerProvider(tpOpts...)
		otel.SetTracerProvider(tp)
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	otel.SetMeterProvider(mp)
	t.shutdown = append(t.shutdown, mp.Shutdown)
	setLogLevel(level)
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
