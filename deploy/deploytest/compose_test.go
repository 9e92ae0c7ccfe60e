package deploytest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
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

	"github.com/eventstream/eventstream/pkg/webhook"
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
	// required, read by pkg/secrets KeysFromEnv; AUTH_* (pkg/auth);
	// PUBLIC_HOSTS (TestComposePublicHosts checks its value).
	"configapi": {
		from:    []string{"services/configapi/config.go", "pkg/secrets/secrets.go", "pkg/auth/auth.go"},
		vars:    []string{"DATABASE_URL", "SECRETS_KEY", "CONFIGAPI_ADDR", "PUBLIC_HOSTS"},
		addrVar: "CONFIGAPI_ADDR",
	},
	// services/delivery/config.go: KAFKA_BROKERS required, DELIVERY_POOL(_TENANTS),
	// DELIVERY_ADDR (the probes' and /metrics port); DATABASE_URL and
	// SECRETS_KEY required by the worker process (services/delivery/worker);
	// services/delivery/s3sink/config.go: S3_ENDPOINT for MinIO; PUBLIC_HOSTS.
	"delivery": {
		from:    []string{"services/delivery/config.go", "services/delivery/s3sink/config.go", "pkg/telemetry/telemetry.go"},
		vars:    []string{"KAFKA_BROKERS", "DATABASE_URL", "SECRETS_KEY", "DELIVERY_ADDR", "DELIVERY_POOL", "DELIVERY_POOL_TENANTS", "DELIVERY_DRAIN_TIMEOUT", "S3_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "PUBLIC_HOSTS"},
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

// serviceEnv is a compose service's environment (unset variables left out).
func serviceEnv(p *types.Project, name string) map[string]string {
	env := map[string]string{}
	for k, v := range p.Services[name].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// servicePorts maps each Event Stream service to the port of its listen
// address variable (requiredEnv's addrVar).
func servicePorts(p *types.Project) map[string]string {
	ports := map[string]string{}
	for name, req := range requiredEnv {
		if req.addrVar != "" {
			if v := serviceEnv(p, name)[req.addrVar]; v != "" {
				ports[name] = strings.TrimPrefix(v, ":")
			}
		}
	}
	return ports
}

// The services that refuse callback URLs to the deployment's own hosts
// (configapi at registration, delivery when sending) know them: the public
// port as the host sees it and the proxy and ingest inside the compose
// network, while a receiver elsewhere on the host stays allowed.
func TestComposePublicHosts(t *testing.T) {
	p := loadCompose(t)
	proxy := p.Services["proxy"]
	if len(proxy.Ports) != 1 {
		t.Fatalf("proxy publishes %d ports, want 1", len(proxy.Ports))
	}
	public := proxy.Ports[0].Published
	ports := servicePorts(p)
	own := []string{
		"http://127.0.0.1:" + public + "/v1/events",
		"http://localhost:" + public + "/v1/events",
		"http://host.docker.internal:" + public + "/v1/events",
		"http://proxy:" + strconv.Itoa(int(proxy.Ports[0].Target)) + "/v1/events",
		"http://ingest:" + ports["ingest"] + "/v1/events",
	}
	allowed := []string{"http://host.docker.internal:9999/hook", "https://receiver.example.com/hook"}
	for _, name := range []string{"configapi", "delivery"} {
		t.Run(name, func(t *testing.T) {
			v := serviceEnv(p, name)["PUBLIC_HOSTS"]
			if v == "" {
				t.Fatal("PUBLIC_HOSTS is not set: webhooks could call the deployment itself")
			}
			// Parsed as the services parse it (their config's parseOwnHosts).
			hosts, err := webhook.ParseOwnHosts(strings.Split(v, ","))
			if err != nil {
				t.Fatalf("PUBLIC_HOSTS=%q: %v", v, err)
			}
			for _, raw := range own {
				if u, _ := url.Parse(raw); !hosts.MatchURL(u) {
					t.Errorf("PUBLIC_HOSTS=%q does not refuse %s", v, raw)
				}
			}
			for _, raw := range allowed {
				if u, _ := url.Parse(raw); hosts.MatchURL(u) {
					t.Errorf("PUBLIC_HOSTS=%q refuses the receiver %s", v, raw)
				}
			}
		})
	}
}

// servesOpenAPI reports whether services/<svc> routes "/openapi.json" (in
// any of its non-test Go files).
func servesOpenAPI(t *testing.T, svc string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "services", svc, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("services/%s: no Go files (%v)", svc, err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"/openapi.json"`) {
			return true
		}
	}
	return false
}

// caddyBlock returns the body of the block opened by the line `header {`
// (e.g. "handle /readyz"), braces inside backtick strings not counted; ""
// when there is none.
func caddyBlock(caddy, header string) string {
	i := strings.Index(caddy, "\t"+header+" {\n")
	if i < 0 {
		return ""
	}
	start := i + len(header) + 3
	depth, quoted := 1, false
	for j := start; j < len(caddy); j++ {
		switch c := caddy[j]; {
		case c == '`':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			if depth--; depth == 0 {
				return caddy[start:j]
			}
		}
	}
	return ""
}

// caddyRespond is the status and JSON body of the block's `respond`.
func caddyRespond(t *testing.T, block string) (int, map[string]any) {
	t.Helper()
	m := regexp.MustCompile("respond `([^`]*)` ([0-9]+)").FindStringSubmatch(block)
	if m == nil {
		return 0, nil
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(m[1]), &body); err != nil {
		t.Errorf("Caddyfile: respond body %s is not JSON: %v", m[1], err)
	}
	if !strings.Contains(block, "header Content-Type application/json") {
		t.Errorf("Caddyfile: respond %s without Content-Type application/json", m[1])
	}
	code, _ := strconv.Atoi(m[2])
	return code, body
}

// The proxy serves what `make run`'s base URL serves
// (services/eventstream/router.go): the ingress routes, each service's
// OpenAPI document at /openapi/<service>.json, /healthz, /readyz over every
// service, and the index at /.
func TestComposeProxyRoutes(t *testing.T) {
	p := loadCompose(t)
	caddy := string(readRepoFile(t, "deploy/caddy/Caddyfile"))
	ports := servicePorts(p)
	// Each route: a named matcher for the exact prefix and below, then its handle.
	matcher := regexp.MustCompile(`@(\S+) path (\S+) (\S+)\s+handle @(\S+) \{\s+reverse_proxy (\S+)`)
	routes := map[string]string{}
	for _, m := range matcher.FindAllStringSubmatch(caddy, -1) {
		if m[1] != m[4] || m[3] != m[2]+"/*" {
			t.Errorf("Caddyfile: matcher @%s (%s %s) must cover the prefix and everything below it", m[1], m[2], m[3])
		}
		routes[m[2]] = m[5]
	}
	proxy := p.Services["proxy"]
	wantRoutes := map[string]any{}
	var reported []string
	for prefix, svc := range ingressRoutes(t) {
		prefix = strings.TrimSuffix(prefix, "/")
		wantRoutes[prefix] = svc
		want := svc + ":" + ports[svc]
		if routes[prefix] != want {
			t.Errorf("Caddyfile routes %s to %q, want %s", prefix, routes[prefix], want)
		}
	}
	// The proxy starts once what it routes to is healthy.
	for _, svc := range slices.Sorted(maps.Values(ingressRoutes(t))) {
		if d, ok := proxy.DependsOn[svc]; (!ok || d.Condition != types.ServiceConditionHealthy) && !slices.Contains(reported, svc) {
			reported = append(reported, svc)
			t.Errorf("proxy does not wait for %s to be healthy (depends_on: service_healthy)", svc)
		}
	}

	// /openapi/<service>.json: every service that serves /openapi.json.
	var docs []any
	for _, svc := range slices.Sorted(maps.Keys(ports)) {
		if !servesOpenAPI(t, svc) {
			continue
		}
		doc := "/openapi/" + svc + ".json"
		docs = append(docs, doc)
		b := caddyBlock(caddy, "handle "+doc)
		if !strings.Contains(b, "rewrite * /openapi.json") || !strings.Contains(b, "reverse_proxy "+svc+":"+ports[svc]) {
			t.Errorf("Caddyfile: %s must be %s:%s/openapi.json (rewrite and reverse_proxy), got block %q", doc, svc, ports[svc], b)
		}
	}
	if len(docs) < 3 {
		t.Errorf("OpenAPI documents %v: want ingest, configapi and observability", docs)
	}

	// /readyz asks every service's own /readyz in turn, then answers ready.
	ready := caddyBlock(caddy, "handle /readyz")
	if ready == "" {
		t.Error("Caddyfile: no handle /readyz")
	}
	route := caddyBlock(ready, "route")
	for _, svc := range slices.Sorted(maps.Keys(ports)) {
		fa := caddyBlock(route, "forward_auth "+svc+":"+ports[svc])
		if strings.TrimSpace(fa) != "uri /readyz" {
			t.Errorf("Caddyfile: /readyz does not ask %s:%s/readyz (a forward_auth with uri /readyz inside route), got %q", svc, ports[svc], fa)
		}
	}
	if code, body := caddyRespond(t, route); code != 200 || body["status"] != "ready" {
		t.Errorf("Caddyfile: /readyz answers %d %v once every service is ready, want 200 and status ready", code, body)
	}
	if code, body := caddyRespond(t, caddyBlock(caddy, "handle /healthz")); code != 200 || body["status"] != "ok" {
		t.Errorf("Caddyfile: /healthz answers %d %v, want 200 and status ok", code, body)
	}

	// The index at /, like router.go's: the routes, the documents, the health paths.
	code, index := caddyRespond(t, caddyBlock(caddy, "handle /"))
	if code != 200 {
		t.Fatalf("Caddyfile: / answers %d, want the index with 200", code)
	}
	if got, _ := index["routes"].(map[string]any); !maps.Equal(got, wantRoutes) {
		t.Errorf("Caddyfile: the index lists routes %v, want %v", got, wantRoutes)
	}
	if got, _ := index["openapi"].([]any); !slices.Equal(got, docs) {
		t.Errorf("Caddyfile: the index lists OpenAPI documents %v, want %v", got, docs)
	}
	if got, _ := index["health"].([]any); !slices.Equal(got, []any{"/healthz", "/readyz"}) {
		t.Errorf("Caddyfile: the index lists health paths %v, want [/healthz /readyz]", got)
	}

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
