package deploytest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		cli.WithWorkingDirectory(repoRoot),
		// Every profile, so the services not started by default are checked too.
		cli.WithProfiles([]string{"*"}),
		// The file's own defaults only: the developer's shell must not change the test.
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return p
}

// requiredEnv is what each Event Stream service's configuration needs, taken
// from the code that reads it. from names the file that must mention every
// variable (so a renamed variable fails here); intended lists variables the
// deployment sets for an interface the binary does not read yet (issue 10,
// section 1), reported by TestComposeEnvironment as a log line, not a failure.
var requiredEnv = map[string]struct {
	from     []string
	vars     []string
	intended []string
	addrVar  string // the listen address variable; its port is the healthcheck's
}{
	// services/ingest/config.go ConfigFromEnv: KAFKA_BROKERS and DATABASE_URL
	// are required; pkg/auth ConfigFromEnv: AUTH_HS256_SECRET or AUTH_JWKS_URL;
	// pkg/telemetry: OTEL_EXPORTER_OTLP_ENDPOINT (optional, set for traces).
	"ingest": {
		from:    []string{"services/ingest/config.go", "pkg/auth/auth.go", "pkg/telemetry/telemetry.go"},
		vars:    []string{"KAFKA_BROKERS", "DATABASE_URL", "INGEST_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		addrVar: "INGEST_ADDR",
	},
	// services/configapi/config.go: DATABASE_URL required; SECRETS_KEY
	// required, read by pkg/secrets KeysFromEnv; AUTH_* (pkg/auth).
	"configapi": {
		from:    []string{"services/configapi/config.go", "pkg/secrets/secrets.go", "pkg/auth/auth.go"},
		vars:    []string{"DATABASE_URL", "SECRETS_KEY", "CONFIGAPI_ADDR"},
		addrVar: "CONFIGAPI_ADDR",
	},
	// services/delivery/config.go: KAFKA_BROKERS required, DELIVERY_POOL(_TENANTS),
	// DELIVERY_ADDR (the probes' and /metrics port); DATABASE_URL and
	// SECRETS_KEY required by the worker process (services/delivery/worker);
	// services/delivery/s3sink/config.go: S3_ENDPOINT for MinIO.
	"delivery": {
		from:    []string{"services/delivery/config.go", "services/delivery/s3sink/config.go", "pkg/telemetry/telemetry.go"},
		vars:    []string{"KAFKA_BROKERS", "DATABASE_URL", "SECRETS_KEY", "DELIVERY_ADDR", "DELIVERY_POOL", "DELIVERY_POOL_TENANTS", "DELIVERY_DRAIN_TIMEOUT", "S3_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		addrVar: "DELIVERY_ADDR",
	},
	// services/eventstream/admin.go: migrate needs DATABASE_URL; `tenant`
	// (docker compose run --rm migrate tenant <name>) also KAFKA_BROKERS and
	// AUTH_HS256_SECRET; config.go: EVENTSTREAM_DATA_DIR (a writable path).
	"migrate": {
		from: []string{"services/eventstream/admin.go", "services/eventstream/config.go"},
		vars: []string{"DATABASE_URL", "KAFKA_BROKERS", "AUTH_HS256_SECRET", "EVENTSTREAM_DATA_DIR"},
	},
	// services/observability/config.go: DATABASE_URL required, AUTH_*.
	"observability": {
		from:    []string{"services/observability/config.go", "pkg/auth/auth.go"},
		vars:    []string{"DATABASE_URL", "OBSERVABILITY_ADDR"},
		addrVar: "OBSERVABILITY_ADDR",
	},
}

// authServices verify bearer tokens (pkg/auth): exactly one of the two keys.
var authServices = []string{"ingest", "configapi", "observability", "migrate"}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	want := []string{"kafka", "postgres", "minio", "minio-init", "healthcheck-tools", "migrate", "ingest", "configapi",
		"delivery", "observability", "proxy", "otel-collector", "jaeger", "prometheus", "grafana"}
	got := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	oneShot := func(s types.ServiceConfig) bool { return s.Restart == "no" }
	completedBy := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is not a service", s.Name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", s.Name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				completedBy[dep] = true
				if !oneShot(target) {
					t.Errorf("%s waits for %s to complete, but %s restarts (set restart: \"no\")", s.Name, dep, dep)
				}
			case types.ServiceConditionStarted:
			default:
				t.Errorf("%s depends on %s with condition %q", s.Name, dep, d.Condition)
			}
		}
	}
	for _, s := range p.Services {
		t.Run(s.Name, func(t *testing.T) {
			hc := s.HealthCheck
			switch {
			case oneShot(s):
				if !completedBy[s.Name] {
					t.Error("a one-shot service nothing waits for (service_completed_successfully)")
				}
			case hc == nil || hc.Disable || len(hc.Test) < 2:
				t.Error("no healthcheck")
			case hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil:
				t.Error("healthcheck needs interval, timeout and retries")
			}
			if s.Image == "" {
				t.Fatal("no image")
			}
			if s.Build != nil {
				if !strings.HasPrefix(s.Image, "eventstream/") {
					t.Errorf("built image %q: want eventstream/<name>:<tag>", s.Image)
				}
				df := s.Build.Dockerfile
				if !filepath.IsAbs(df) {
					df = filepath.Join(s.Build.Context, df)
				}
				if _, err := os.Stat(df); err != nil {
					t.Errorf("Dockerfile: %v", err)
				}
			} else {
				// Third-party images: a pinned version, never a floating tag.
				ref := s.Image
				i := strings.LastIndex(ref, ":")
				if i < 0 || strings.Contains(ref[i:], "/") {
					t.Errorf("image %q has no tag", ref)
				} else if tag := ref[i+1:]; tag == "latest" || !regexp.MustCompile(`[0-9]+\.[0-9]+|RELEASE\.`).MatchString(tag) {
					t.Errorf("image %q: pin a version tag", ref)
				}
			}
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("port %s published on %q: publish on 127.0.0.1 only", port.Published, port.HostIP)
				}
			}
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind {
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("bind mount: %v", err)
					}
					if !v.ReadOnly {
						t.Errorf("bind mount %s should be read-only", v.Source)
					}
				}
			}
		})
	}
	published := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			published[port.Published] = s.Name
		}
	}
	for port, svc := range map[string]string{"8080": "proxy", "3000": "grafana", "16686": "jaeger", "9090": "prometheus"} {
		if published[port] != svc {
			t.Errorf("port %s is published by %q, want %s", port, published[port], svc)
		}
	}
	if len(published) != 4 {
		t.Errorf("published ports %v: only the proxy and the three UIs", published)
	}
}

func TestComposeEnvironment(t *testing.T) {
	p := loadCompose(t)
	for name, req := range requiredEnv {
		t.Run(name, func(t *testing.T) {
			s, ok := p.Services[name]
			if !ok {
				t.Fatal("no such service")
			}
			env := map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					env[k] = *v
				}
			}
			var source string
			for _, f := range req.from {
				source += string(readRepoFile(t, f))
			}
			for _, v := range req.vars {
				if env[v] == "" {
					t.Errorf("%s is not set", v)
				}
				if source != "" && !strings.Contains(source, `"`+v+`"`) {
					t.Errorf("%s is not read by %v any more: update requiredEnv and docker-compose.yml", v, req.from)
				}
			}
			for _, v := range req.intended {
				if env[v] == "" {
					t.Errorf("%s is not set", v)
				}
				if source != "" && !strings.Contains(source, `"`+v+`"`) {
					t.Logf("binary-side work: %s sets %s, which %v does not read yet", name, v, req.from)
				}
			}
			checkEnvValues(t, env)
			if slices.Contains(authServices, name) {
				hs, jwks := env["AUTH_HS256_SECRET"], env["AUTH_JWKS_URL"]
				if (hs == "") == (jwks == "") {
					t.Error("set exactly one of AUTH_HS256_SECRET and AUTH_JWKS_URL (pkg/auth Validate)")
				}
				if hs != "" && len(hs) < 32 {
					t.Error("AUTH_HS256_SECRET must be at least 32 bytes (pkg/auth Validate)")
				}
			}
			if req.addrVar != "" {
				addr := env[req.addrVar]
				port := strings.TrimPrefix(addr, ":")
				if _, err := strconv.Atoi(port); err != nil {
					t.Fatalf("%s=%q: want :<port>", req.addrVar, addr)
				}
				if s.HealthCheck == nil || !slices.ContainsFunc(s.HealthCheck.Test, func(a string) bool {
					return strings.Contains(a, "127.0.0.1:"+port+"/readyz")
				}) {
					t.Errorf("healthcheck %v does not ask /readyz on %s's port %s", s.HealthCheck, req.addrVar, port)
				}
				checkScraped(t, name+":"+port)
			}
			if name != "migrate" && s.Profiles == nil {
				if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
					t.Error("must wait for migrate (service_completed_successfully)")
				}
			}
			if s.User != "65532:65532" || !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
				t.Errorf("user %q read_only %v cap_drop %v: want 65532:65532, true, [ALL]", s.User, s.ReadOnly, s.CapDrop)
			}
		})
	}
}

// checkEnvValues checks the values the services validate at start.
func checkEnvValues(t *testing.T, env map[string]string) {
	t.Helper()
	if v, ok := env["SECRETS_KEY"]; ok {
		// pkg/secrets ParseKey: 32 bytes as 64 hex characters or base64.
		b, err := hex.DecodeString(v)
		if err != nil {
			b, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil || len(b) != 32 {
			t.Errorf("SECRETS_KEY=%q is not 32 bytes in hex or base64", v)
		}
	}
	if v, ok := env["DATABASE_URL"]; ok {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
			t.Errorf("DATABASE_URL=%q: want postgres://...@postgres:5432/...", v)
		}
	}
	if v, ok := env["KAFKA_BROKERS"]; ok && v != "kafka:9092" {
		t.Errorf("KAFKA_BROKERS=%q, want kafka:9092 (the broker's advertised listener)", v)
	}
	if v, ok := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; ok && v != "http://otel-collector:4318" {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT=%q, want the collector's OTLP/HTTP receiver", v)
	}
	if v, ok := env["DELIVERY_POOL_TENANTS"]; ok && v != "*" {
		t.Errorf("DELIVERY_POOL_TENANTS=%q: the single compose pool serves every tenant", v)
	}
}

// checkScraped: Prometheus scrapes the service's /metrics.
func checkScraped(t *testing.T, target string) {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, target) && (sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
				return
			}
		}
	}
	t.Errorf("deploy/prometheus/prometheus.yml does not scrape %s/metrics", target)
}

// Kafka runs in KRaft mode with the broker settings of deploy/kafka/broker.properties.
func TestComposeKafka(t *testing.T) {
	p := loadCompose(t)
	k := p.Services["kafka"]
	if !strings.HasPrefix(k.Image, "apache/kafka:") {
		t.Errorf("image %q: want the official apache/kafka", k.Image)
	}
	env := map[string]string{}
	for n, v := range k.Environment {
		if v != nil {
			env[n] = *v
		}
	}
	if !strings.Contains(env["KAFKA_PROCESS_ROLES"], "controller") || env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Error("not KRaft: KAFKA_PROCESS_ROLES must include controller, with KAFKA_CONTROLLER_QUORUM_VOTERS")
	}
	for n := range env {
		if strings.Contains(strings.ToLower(n), "zookeeper") {
			t.Errorf("%s: KRaft needs no ZooKeeper", n)
		}
	}
	props := 0
	for _, l := range strings.Split(string(readRepoFile(t, "deploy/kafka/broker.properties")), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		key, val, _ := strings.Cut(l, "=")
		props++
		envName := "KAFKA_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if env[envName] != val {
			t.Errorf("%s=%q, but deploy/kafka/broker.properties has %s=%s", envName, env[envName], key, val)
		}
	}
	if props == 0 {
		t.Error("deploy/kafka/broker.properties sets nothing")
	}
	if env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
		t.Error("auto topic creation must be off")
	}
	// Stopped integrations resume from their offsets within 30 days: the group
	// offsets must outlive that, with a margin.
	minutes, err := strconv.Atoi(env["KAFKA_OFFSETS_RETENTION_MINUTES"])
	if err != nil || minutes < 30*24*60+24*60 {
		t.Errorf("KAFKA_OFFSETS_RETENTION_MINUTES=%q: want at least 30 days plus a day of margin", env["KAFKA_OFFSETS_RETENTION_MINUTES"])
	}
	if adv := env["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "//kafka:9092") {
		t.Errorf("KAFKA_ADVERTISED_LISTENERS=%q must advertise kafka:9092 to the other containers", adv)
	}
}

// The proxy serves the public paths of `make run` (services/eventstream/router.go).
func TestComposeProxyRoutes(t *testing.T) {
	p := loadCompose(t)
	caddy := string(readRepoFile(t, "deploy/caddy/Caddyfile"))
	ports := map[string]string{}
	for name, req := range requiredEnv {
		if s, ok := p.Services[name]; ok && req.addrVar != "" {
			if v := s.Environment[req.addrVar]; v != nil {
				ports[name] = strings.TrimPrefix(*v, ":")
			}
		}
	}
	// Each route: a named matcher for the exact prefix and below, then its handle.
	matcher := regexp.MustCompile(`@(\S+) path (\S+) (\S+)\s+handle @(\S+) \{\s+reverse_proxy (\S+)`)
	routes := map[string]string{}
	for _, m := range matcher.FindAllStringSubmatch(caddy, -1) {
		if m[1] != m[4] || m[3] != m[2]+"/*" {
			t.Errorf("Caddyfile: matcher @%s (%s %s) must cover the prefix and everything below it", m[1], m[2], m[3])
		}
		routes[m[2]] = m[5]
	}
	for prefix, svc := range ingressRoutes(t) {
		prefix = strings.TrimSuffix(prefix, "/")
		want := svc + ":" + ports[svc]
		if routes[prefix] != want {
			t.Errorf("Caddyfile routes %s to %q, want %s", prefix, routes[prefix], want)
		}
	}
	proxy := p.Services["proxy"]
	if len(proxy.Ports) != 1 || proxy.Ports[0].Target != 8080 || !strings.Contains(caddy, ":8080 {") {
		t.Errorf("the proxy must listen on 8080 and publish it, got %+v", proxy.Ports)
	}
	if !strings.Contains(caddy, "admin off") {
		t.Error("Caddy's admin API must be off")
	}
}

// Grafana gets the dashboard and the data sources it names; the collector
// sends traces to Jaeger.
func TestComposeObservabilityStack(t *testing.T) {
	p := loadCompose(t)
	g := p.Services["grafana"]
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		mounts[v.Target] = v.Source
	}
	if _, err := os.Stat(filepath.Join(mounts["/var/lib/grafana/dashboards"], "eventstream.json")); err != nil {
		t.Errorf("the dashboard is not mounted where the provider reads it: %v", err)
	}
	prov := string(readRepoFile(t, "deploy/grafana/provisioning/dashboards/dashboards.yaml"))
	if !strings.Contains(prov, "path: /var/lib/grafana/dashboards") {
		t.Error("dashboard provider does not read /var/lib/grafana/dashboards")
	}
	if _, err := os.Stat(filepath.Join(mounts["/etc/grafana/provisioning"], "datasources", "datasources.yaml")); err != nil {
		t.Errorf("data sources are not provisioned: %v", err)
	}
	ds := string(readRepoFile(t, "deploy/grafana/provisioning/datasources/datasources.yaml"))
	for _, want := range []string{"uid: prometheus", "url: http://prometheus:9090", "type: jaeger", "url: http://jaeger:16686"} {
		if !strings.Contains(ds, want) {
			t.Errorf("datasources.yaml lacks %q", want)
		}
	}
	var col struct {
		Receivers map[string]struct {
			Protocols map[string]struct {
				Endpoint string `json:"endpoint"`
			} `json:"protocols"`
		} `json:"receivers"`
		Exporters map[string]map[string]any `json:"exporters"`
		Service   struct {
			Pipelines map[string]struct {
				Receivers []string `json:"receivers"`
				Exporters []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/otel/collector.yaml"), &col); err != nil {
		t.Fatal(err)
	}
	if ep := col.Receivers["otlp"].Protocols["http"].Endpoint; !strings.HasSuffix(ep, ":4318") {
		t.Errorf("collector OTLP/HTTP receiver on %q, want :4318", ep)
	}
	traces := col.Service.Pipelines["traces"]
	if !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) == 0 {
		t.Fatal("no traces pipeline from otlp")
	}
	if ep, _ := col.Exporters[traces.Exporters[0]]["endpoint"].(string); ep != "jaeger:4317" {
		t.Errorf("traces are exported to %q, want jaeger:4317", ep)
	}
	if _, ok := col.Service.Pipelines["metrics"]; !ok {
		t.Error("no metrics pipeline: the services' OTLP metric exports would fail")
	}
}

// The Dockerfiles build static binaries into a scratch image run by the
// numeric non-root user.
func TestDockerfiles(t *testing.T) {
	for _, svc := range []string{"ingest", "delivery", "configapi", "eventstream", "observability"} {
		t.Run(svc, func(t *testing.T) {
			df := string(readRepoFile(t, "deploy/docker/"+svc+".Dockerfile"))
			for _, want := range []string{
				"CGO_ENABLED=0",
				"\nFROM scratch\n",
				"\nUSER 65532:65532\n",
				`ENTRYPOINT ["/usr/local/bin/` + svc + `"]`,
				"/etc/ssl/certs/ca-certificates.crt",
				"./cmd/" + svc,
			} {
				if !strings.Contains(df, want) {
					t.Errorf("lacks %q", want)
				}
			}
			for _, from := range regexp.MustCompile(`(?m)^ARG GO_IMAGE=(\S+)`).FindAllStringSubmatch(df, -1) {
				if !regexp.MustCompile(`:[0-9]+\.[0-9]+\.[0-9]+`).MatchString(from[1]) {
					t.Errorf("builder image %s: pin a patch version", from[1])
				}
			}
		})
	}
}
