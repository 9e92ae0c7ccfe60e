package telemetry_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/eventstream/eventstream/pkg/telemetry"
)

// otelVars are every variable these tests set; each test starts with all
// of them unset so the machine's environment cannot leak in.
var otelVars = []string{
	"EVENTSTREAM_LOG_LEVEL", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_METRICS_PRODUCERS", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT",
}

// setEnv clears otelVars, then sets env for the test's duration.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// collector is an OTLP receiver over both transports, HTTP (protobuf
// bodies on /v1/traces and /v1/metrics) and gRPC (the collector's services),
// recording what it is sent.
type collector struct {
	httpURL  string // http://127.0.0.1:port
	grpcAddr string // 127.0.0.1:port

	mu      sync.Mutex
	spans   []received // one per span
	metrics []received // one per metric
	tokens  []string   // x-test-token of each request
}

type received struct {
	name      string
	transport string // "http" or "grpc"
	resource  map[string]string
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(c.serveHTTP))
	t.Cleanup(srv.Close)
	c.httpURL = srv.URL

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, grpcTraces{c: c})
	colmetricspb.RegisterMetricsServiceServer(gs, grpcMetrics{c: c})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	c.grpcAddr = lis.Addr().String()
	return c
}

func (c *collector) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp proto.Message
	switch r.URL.Path {
	case "/v1/traces":
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.addTraces(&req, "http", r.Header.Get("x-test-token"))
		resp = &coltracepb.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.addMetrics(&req, "http", r.Header.Get("x-test-token"))
		resp = &colmetricspb.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	c *collector
}

func (g grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.c.addTraces(req, "grpc", grpcToken(ctx))
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	c *collector
}

func (g grpcMetrics) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	g.c.addMetrics(req, "grpc", grpcToken(ctx))
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

func grpcToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-test-token"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c *collector) addTraces(req *coltracepb.ExportTraceServiceRequest, transport, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = append(c.tokens, token)
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, received{s.GetName(), transport, attrs(rs.GetResource())})
			}
		}
	}
}

func (c *collector) addMetrics(req *colmetricspb.ExportMetricsServiceRequest, transport, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = append(c.tokens, token)
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				c.metrics = append(c.metrics, received{m.GetName(), transport, attrs(rm.GetResource())})
			}
		}
	}
}

func attrs(r *resourcepb.Resource) map[string]string {
	out := map[string]string{}
	for _, kv := range r.GetAttributes() {
		out[kv.GetKey()] = anyString(kv.GetValue())
	}
	return out
}

func anyString(v *commonpb.AnyValue) string { return v.GetStringValue() }

func (c *collector) received() (spans, metrics []received, tokens []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans), slices.Clone(c.metrics), slices.Clone(c.tokens)
}

// setup runs telemetry.Setup as a service does and restores the default
// logger's level afterwards.
func setup(t *testing.T, service string) *telemetry.Telemetry {
	t.Helper()
	prev := slog.SetLogLoggerLevel(slog.LevelInfo)
	t.Cleanup(func() { slog.SetLogLoggerLevel(prev) })
	tel, err := telemetry.Setup(context.Background(), telemetry.ConfigFromEnv(service, os.Getenv))
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// emit ends one span and adds to one counter, then flushes: Shutdown
// exports whatever the batcher and the periodic reader hold, so what has not
// reached the collector when it returns was never going to.
func emit(t *testing.T, tel *telemetry.Telemetry) {
	t.Helper()
	ctx := context.Background()
	_, span := otel.Tracer("telemetry_test").Start(ctx, "publish event")
	span.End()
	counter, err := otel.Meter("telemetry_test").Int64Counter("test_events")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 1)
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestSpansReachTheCollectorTheVariablesName(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		env       func(c *collector) map[string]string
	}{
		{"OTEL_EXPORTER_OTLP_ENDPOINT, default protocol", "http", func(c *collector) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": c.httpURL}
		}},
		{"traces endpoint over http/protobuf", "http", func(c *collector) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.httpURL + "/v1/traces",
			}
		}},
		{"traces endpoint over grpc", "grpc", func(c *collector) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://" + c.grpcAddr,
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t)
			env := tc.env(c)
			env["OTEL_EXPORTER_OTLP_HEADERS"] = "x-test-token=s3cret"
			env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=staging,team=platform"
			setEnv(t, env)

			emit(t, setup(t, "ingest"))

			spans, metrics, tokens := c.received()
			if len(spans) != 1 || spans[0].name != "publish event" || spans[0].transport != tc.transport {
				t.Fatalf("collector received spans %+v, want one %q over %s", spans, "publish event", tc.transport)
			}
			for k, want := range map[string]string{"service.name": "ingest", "deployment.environment": "staging", "team": "platform"} {
				if got := spans[0].resource[k]; got != want {
					t.Errorf("resource %s=%q, want %q (resource %v)", k, got, want, spans[0].resource)
				}
			}
			if _, ok := env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]; ok && len(metrics) != 0 {
				t.Errorf("metrics exported with only a traces endpoint set: %+v", metrics)
			}
			for _, tok := range tokens {
				if tok != "s3cret" {
					t.Errorf("request carried x-test-token %q, want OTEL_EXPORTER_OTLP_HEADERS' s3cret", tok)
				}
			}
		})
	}
}

func TestMetricsReachTheCollectorTheVariablesName(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		env       func(c *collector) map[string]string
	}{
		{"metrics endpoint over http/protobuf", "http", func(c *collector) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": c.httpURL + "/v1/metrics"}
		}},
		{"metrics endpoint over grpc", "grpc", func(c *collector) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://" + c.grpcAddr,
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t)
			setEnv(t, tc.env(c))
			tel := setup(t, "delivery")
			scrape := httptest.NewServer(tel.MetricsHandler())
			defer scrape.Close()

			emit(t, tel)

			spans, metrics, _ := c.received()
			if len(spans) != 0 {
				t.Errorf("spans exported with only a metrics endpoint set: %+v", spans)
			}
			i := slices.IndexFunc(metrics, func(r received) bool { return r.name == "test_events" })
			if i < 0 || metrics[i].transport != tc.transport || metrics[i].resource["service.name"] != "delivery" {
				t.Fatalf("collector received metrics %+v, want test_events of service delivery over %s", metrics, tc.transport)
			}
		})
	}
}

func TestPrometheusEndpointServesMetricsWithoutACollector(t *testing.T) {
	setEnv(t, nil)
	tel := setup(t, "configapi")
	counter, err := otel.Meter("telemetry_test").Int64Counter("scraped_events")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "scraped_events_total") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics lacks the counter or the Go collector:\n%s", body)
	}
}

// Each case points the exporters at a live collector, so what keeps spans
// from it is the variable under test alone.
func TestSpansWithheldAsTheVariablesSay(t *testing.T) {
	cases := map[string]map[string]string{
		"OTEL_TRACES_SAMPLER=always_off":       {"OTEL_TRACES_SAMPLER": "always_off"},
		"parentbased_traceidratio with arg 0":  {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
		"OTEL_TRACES_EXPORTER=none":            {"OTEL_TRACES_EXPORTER": "none"},
		"OTEL_SDK_DISABLED=true":               {"OTEL_SDK_DISABLED": "true"},
		"no endpoint, no exporter named: none": {},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			c := newCollector(t)
			env = maps.Clone(env)
			if len(env) > 0 {
				// The endpoint that turned export on before the other
				// variables were read.
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = c.httpURL
			}
			setEnv(t, env)

			emit(t, setup(t, "ingest"))

			if spans, _, _ := c.received(); len(spans) != 0 {
				t.Fatalf("collector received %+v, want no span", spans)
			}
		})
	}
}

// OTLP metrics stay home as these variables say; /metrics serves them still.
func TestMetricsWithheldAsTheVariablesSay(t *testing.T) {
	cases := map[string]map[string]string{
		"OTEL_METRICS_EXPORTER=none":       {"OTEL_METRICS_EXPORTER": "none"},
		"OTEL_METRICS_EXPORTER=prometheus": {"OTEL_METRICS_EXPORTER": "prometheus"},
		"OTEL_SDK_DISABLED=true":           {"OTEL_SDK_DISABLED": "true"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			c := newCollector(t)
			env = maps.Clone(env)
			env["OTEL_EXPORTER_OTLP_ENDPOINT"] = c.httpURL
			// The port a Prometheus exporter of autoexport's own would bind
			// is taken: starting a second listener fails Setup.
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			env["OTEL_EXPORTER_PROMETHEUS_HOST"] = "127.0.0.1"
			env["OTEL_EXPORTER_PROMETHEUS_PORT"] = strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
			setEnv(t, env)
			tel := setup(t, "delivery")
			counter, err := otel.Meter("telemetry_test").Int64Counter("withheld_events")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(context.Background(), 1)
			rec := httptest.NewRecorder()
			tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if !strings.Contains(rec.Body.String(), "withheld_events_total") {
				t.Errorf("/metrics lacks the counter:\n%s", rec.Body.String())
			}
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, metrics, _ := c.received(); len(metrics) != 0 {
				t.Fatalf("collector received %+v, want no metric", metrics)
			}
		})
	}
}

func TestMalformedSettingsStopSetup(t *testing.T) {
	cases := []struct {
		name, wantInErr string
		env             map[string]string
	}{
		{"log level", "EVENTSTREAM_LOG_LEVEL", map[string]string{"EVENTSTREAM_LOG_LEVEL": "verbose"}},
		{"protocol", "OTEL_EXPORTER_OTLP", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
		}},
		{"resource attributes", "OTEL_RESOURCE_ATTRIBUTES", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "team"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			tel, err := telemetry.Setup(context.Background(), telemetry.ConfigFromEnv("ingest", os.Getenv))
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatal("Setup accepted a malformed setting")
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not name %s", err, tc.wantInErr)
			}
		})
	}
}

// captureLog points the log package, which slog's built-in default handler
// writes through, at a buffer for the test.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	w, flags := log.Writer(), log.Flags()
	log.SetOutput(&buf)
	t.Cleanup(func() { log.SetOutput(w); log.SetFlags(flags) })
	return &buf
}

func TestLogLevelFromEnvironment(t *testing.T) {
	cases := []struct {
		level         string
		shown, hidden []string
	}{
		{"", []string{"INFO"}, []string{"DEBUG"}},
		{"debug", []string{"DEBUG", "INFO"}, nil},
		{"info", []string{"INFO", "WARN"}, []string{"DEBUG"}},
		{"warn", []string{"WARN", "ERROR"}, []string{"INFO"}},
		{"error", []string{"ERROR"}, []string{"WARN"}},
	}
	for _, tc := range cases {
		t.Run("EVENTSTREAM_LOG_LEVEL="+tc.level, func(t *testing.T) {
			setEnv(t, map[string]string{"EVENTSTREAM_LOG_LEVEL": tc.level})
			buf := captureLog(t)
			setup(t, "ingest")

			slog.Debug("probe", "level", "DEBUG")
			slog.Info("probe", "level", "INFO")
			slog.Warn("probe", "level", "WARN")
			slog.Error("probe", "level", "ERROR")

			out := buf.String()
			for _, l := range tc.shown {
				if !strings.Contains(out, l+" probe level="+l) {
					t.Errorf("%s record missing from the log:\n%s", l, out)
				}
			}
			for _, l := range tc.hidden {
				if strings.Contains(out, "level="+l) {
					t.Errorf("%s record logged at level %q:\n%s", l, tc.level, out)
				}
			}
		})
	}
}

// A program with its own handler (the eventstream CLI) set its level there;
// Setup must not relabel the log package's lines that handler receives.
func TestLogLevelLeavesAnInstalledHandlerAlone(t *testing.T) {
	setEnv(t, map[string]string{"EVENTSTREAM_LOG_LEVEL": "error"})
	captureLog(t)
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	setup(t, "eventstream")

	slog.Info("still shown")
	log.Print("from the log package")

	out := buf.String()
	if !strings.Contains(out, "msg=\"still shown\"") || !strings.Contains(out, "level=INFO msg=\"from the log package\"") {
		t.Fatalf("installed handler changed by Setup:\n%s", out)
	}
}
