package httpapi

import (
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracing starts a server span per request, named after the matched route
// (echo's e.Use middleware runs after routing, so c.Path() is the template,
// keeping span and metric cardinality bounded), continuing any W3C trace
// context the caller sent, and records request duration by route and status.
func tracing(service string) echo.MiddlewareFunc {
	tracer := otel.Tracer("github.com/eventstream/eventstream/pkg/httpapi")
	duration, _ := otel.Meter("github.com/eventstream/eventstream/pkg/httpapi").Float64Histogram(
		"http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			ctx, span := tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method),
					attribute.String("http.route", route), attribute.String("service.component", service)))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // render now so the status is known
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, "server error")
			}
			duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
				attribute.String("http.request.method", r.Method), attribute.String("http.route", route),
				attribute.Int("http.response.status_code", status), attribute.String("service.component", service)))
			return nil
		}
	}
}
