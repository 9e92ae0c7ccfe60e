package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
	"github.com/eventstream/eventstream/services/configapi"
	"github.com/eventstream/eventstream/services/ingest"
)

// system is everything a run starts: the infrastructure under the suite's
// control, ingest and the config API in this process, the worker processes,
// and the tenants with their integrations.
type system struct {
	opts Options
	dir  string

	pg      *postgres
	pool    *pgxpool.Pool
	broker  *broker
	s3      *s3Endpoint
	workers *workers

	hs256      string
	ingestURL  string
	configURL  string
	stopAPIs   []func()
	tokens     map[string]string // tenant → bearer token
	tenants    []string
	integs     []*integration
	httpClient *http.Client
}

// topicPartitions: more partitions than workers, so each gets several.
const topicPartitions = 4

func startSystem(ctx context.Context, o Options, dir string, l *Ledger, logf func(string, ...any)) (s *system, err error) {
	s = &system{opts: o, dir: dir, tokens: map[string]string{},
		httpClient: &http.Client{Timeout: 15 * time.Second}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.pg, err = startPostgres(ctx, filepath.Join(dir, "postgres")); err != nil {
		return s, err
	}
	dbURL := s.pg.url("eventstream")
	if err := createDatabase(ctx, s.pg.url("postgres"), "eventstream"); err != nil {
		return s, err
	}
	if s.pool, err = pgxpool.New(ctx, dbURL); err != nil {
		return s, fmt.Errorf("connecting to postgres: %w", err)
	}
	if _, err := catalog.Migrate(ctx, s.pool); err != nil {
		return s, err
	}
	logf("postgres up on port %d, catalog migrated", s.pg.port)
	if s.broker, err = startBroker(filepath.Join(dir, "kafka")); err != nil {
		return s, err
	}
	if s.s3, err = startS3(ctx, filepath.Join(dir, "s3")); err != nil {
		return s, err
	}
	secretsKey, hs256 := randomHex(32), randomHex(32)
	s.hs256 = hs256
	key, err := secrets.ParseKey(secretsKey)
	if err != nil {
		return s, err
	}
	box, err := secrets.New(key)
	if err != nil {
		return s, err
	}
	store := catalog.New(s.pool, box)
	env := map[string]string{
		"DATABASE_URL":        dbURL,
		"KAFKA_BROKERS":       s.broker.addr,
		"SECRETS_KEY":         secretsKey,
		"AUTH_HS256_SECRET":   hs256,
		"WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8",
		"INGEST_ADDR":         "127.0.0.1:0",
		"CONFIGAPI_ADDR":      "127.0.0.1:0",
		// A producer that cannot reach the broker answers 503 within this;
		// the publisher retries with the same idempotency keys.
		"INGEST_PRODUCE_TIMEOUT": "5s",
		// Tenants never change during a run; a paused catalog must not
		// fail publishing more than it has to.
		"INGEST_TENANT_CACHE_TTL": "10m",
	}
	getenv := func(k string) string { return env[k] }
	if err := s.startAPIs(ctx, getenv, store); err != nil {
		return s, err
	}
	if err := s.provision(ctx, store, l); err != nil {
		return s, err
	}

	bin := o.DeliveryBin
	if bin == "" {
		logf("building the delivery worker (go build)")
		if bin, err = buildDelivery(ctx, dir); err != nil {
			return s, err
		}
	}
	s.workers = newWorkers(bin, workerEnv(env, s.s3.URL()), o.Workers, dir)
	for i := range o.Workers {
		if err := s.workers.start(i); err != nil {
			return s, err
		}
	}
	return s, nil
}

// workerEnv is the delivery workers' configuration: the run's servers, and
// timings scaled to a run of minutes (see each line).
func workerEnv(env map[string]string, s3URL string) []string {
	kv := map[string]string{
		"DATABASE_URL":        env["DATABASE_URL"],
		"KAFKA_BROKERS":       env["KAFKA_BROKERS"],
		"SECRETS_KEY":         env["SECRETS_KEY"],
		"WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8", // the receivers listen on loopback
		"S3_ENDPOINT":         s3URL,
		"S3_FORCE_PATH_STYLE": "true",
		// Several workers on one host: each its own probe/metrics port.
		"DELIVERY_ADDR": "127.0.0.1:0",
		// A dead worker's partitions move within seconds (production: 45 s).
		"KAFKA_SESSION_TIMEOUT":   "6s",
		"KAFKA_REBALANCE_TIMEOUT": "12s",
		"DELIVERY_DRAIN_TIMEOUT":  "5s",
		// Faults last seconds: retry quickly, and never give up during a
		// run (stopping after N retries is tested elsewhere; here a stopped
		// integration would only hide whether anything is lost).
		"DELIVERY_RETRY_BASE":     "200ms",
		"DELIVERY_RETRY_MAX":      "2s",
		"DELIVERY_MAX_RETRIES":    "100000",
		"WEBHOOK_ATTEMPT_TIMEOUT": "4s",
		"S3_RETRY_BASE":           "200ms",
		"S3_RETRY_MAX":            "2s",
		"S3_MAX_RETRIES":          "100000",
		"S3_REQUEST_TIMEOUT":      "20s",
		// Files close quickly so S3 deliveries are seen within the run.
		"S3_MAX_FILE_AGE":          "8s",
		"DELIVERY_RESYNC_INTERVAL": "10s",
		"EVENTSTREAM_LOG_LEVEL":    "info",
	}
	out := make([]string, 0, len(kv))
	for k, v := range kv {
		out = append(out, k+"="+v)
	}
	return out
}

// buildDelivery builds cmd/delivery into dir (go.work resolves the module).
func buildDelivery(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "delivery")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/eventstream/eventstream/services/delivery/cmd/delivery")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the delivery worker: %w: %s", err, out)
	}
	return bin, nil
}

// startAPIs starts ingest and the config API in this process. They log
// through slog.Default() as it is when they are built: it points at
// dir/services.log meanwhile, so their (expected) errors while Postgres or
// the broker is down do not drown the suite's progress.
func (s *system) startAPIs(ctx context.Context, getenv func(string) string, store *catalog.Store) error {
	lf, err := os.OpenFile(filepath.Join(s.dir, "services.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.stopAPIs = append(s.stopAPIs, func() { lf.Close() })
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lf, nil)))
	defer slog.SetDefault(prev)
	if err := s.startIngest(ctx, getenv, store); err != nil {
		return err
	}
	return s.startConfigAPI(ctx, getenv, store)
}

func (s *system) startIngest(ctx context.Context, getenv func(string) string, store *catalog.Store) error {
	cfg, err := ingest.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	client, err := kafka.NewProducer(cfg.Brokers, cfg.ProduceTimeout, kgo.ClientID("chaos-ingest"))
	if err != nil {
		return err
	}
	srv, err := ingest.New(cfg, client, store, verifier)
	if err != nil {
		client.Close()
		return err
	}
	url, stop, err := serve(ctx, srv.Serve)
	if err != nil {
		client.Close()
		return err
	}
	s.ingestURL = url
	s.stopAPIs = append(s.stopAPIs, func() { stop(); client.Close() })
	return nil
}

func (s *system) startConfigAPI(ctx context.Context, getenv func(string) string, store *catalog.Store) error {
	cfg, err := configapi.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	retrier := webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: cfg.WebhookAllowCIDRs})}
	srv, err := configapi.New(cfg, store, verifier, retrier)
	if err != nil {
		return err
	}
	url, stop, err := serve(ctx, srv.Serve)
	if err != nil {
		return err
	}
	s.configURL = url
	s.stopAPIs = append(s.stopAPIs, stop)
	return nil
}

// serve runs an HTTP service on a loopback listener until stop.
func serve(ctx context.Context, run func(context.Context, net.Listener) error) (string, func(), error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = run(sctx, ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// The tenants and their integrations: webhooks and S3, some filtered. The
// last tenant gets the big events (multipart S3 files).
var plan = []struct {
	tenant string
	integs []integration
}{
	{"acme", []integration{
		{ID: "wh-all", Target: catalog.TargetWebhook},
		{ID: "wh-orders", Target: catalog.TargetWebhook, EventFilter: []string{"order.created", "order.shipped"}},
		{ID: "s3-all", Target: catalog.TargetS3},
	}},
	{"globex", []integration{
		{ID: "wh-all", Target: catalog.TargetWebhook},
		{ID: "wh-customers", Target: catalog.TargetWebhook, EventFilter: []string{"invoice.created"}, EntityFilter: []string{"customer"}},
		{ID: "s3-orders", Target: catalog.TargetS3, EntityFilter: []string{"order"}},
	}},
	{"initech", []integration{
		{ID: "wh-all", Target: catalog.TargetWebhook},
		{ID: "s3-all", Target: catalog.TargetS3},
	}},
}

// eventNames are the names the publisher draws from (the filters above
// select some of them).
var eventNames = []string{
	"order.created", "order.shipped", "order.cancelled", "customer.created", "customer.updated",
	"invoice.created", "return.processed", "gift_card.deactivated", "inventory_count.items_counted",
}

// provision creates the tenants (catalog row, topic) and registers their
// integrations through the config API, each webhook with its own receiver.
func (s *system) provision(ctx context.Context, store *catalog.Store, l *Ledger) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker.addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for ti, p := range plan {
		if err := store.CreateTenant(ctx, p.tenant); err != nil {
			return err
		}
		if err := kafka.ProvisionTenant(ctx, adm, p.tenant, topicPartitions, -1, kafka.DefaultRetention); err != nil {
			return err
		}
		tok, err := auth.Mint(s.hs256, p.tenant, auth.AllTenantScopes, 24*time.Hour)
		if err != nil {
			return err
		}
		s.tokens[p.tenant] = tok
		s.tenants = append(s.tenants, p.tenant)
		for ii := range p.integs {
			c := p.integs[ii] // a copy: plan stays pristine for the next run
			in := &c
			in.Tenant = p.tenant
			in.filter = events.NewFilter(in.EventFilter, in.EntityFilter)
			body := map[string]any{"id": in.ID, "integration_type": "permanent"}
			if len(in.EventFilter)+len(in.EntityFilter) > 0 {
				fc := map[string]any{}
				if len(in.EventFilter) > 0 {
					fc["event_filter"] = in.EventFilter
				}
				if len(in.EntityFilter) > 0 {
					fc["entity_filter"] = in.EntityFilter
				}
				body["filter_conditions"] = fc
			}
			switch in.Target {
			case catalog.TargetWebhook:
				in.secret = "chaos-signing-secret-" + p.tenant + "-" + in.ID
				r, err := startReceiver(ctx, in, l, s.opts.Seed+uint64(ti*100+ii))
				if err != nil {
					return err
				}
				in.receiver = r
				body["callback_parameters"] = map[string]any{
					"callback_url": r.URL(), "api_key": "chaos-key-" + p.tenant, "signing_secret": in.secret,
				}
			case catalog.TargetS3:
				in.bucket = "chaos-" + p.tenant + "-" + in.ID
				body["s3_parameters"] = map[string]any{
					"aws_access_key_id": "AKIACHAOS", "aws_secret_access_key": "chaos-secret",
					"aws_region": "us-east-1", "bucket": in.bucket, "key_prefix": "chaos",
				}
			}
			if _, err := s.api(ctx, p.tenant, http.MethodPost, "", body); err != nil {
				return fmt.Errorf("registering %s: %w", in.key(), err)
			}
			s.integs = append(s.integs, in)
		}
	}
	return nil
}

// api calls the config API for tenant: method on the integrations
// collection + path, with body as JSON; it returns the response body of a
// 2xx.
func (s *system) api(ctx context.Context, tenant, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.configURL+configapi.BasePath+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.tokens[tenant])
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out, nil
}

func (s *system) close() {
	if s.workers != nil {
		s.workers.stopAll()
	}
	for i := len(s.stopAPIs) - 1; i >= 0; i-- {
		s.stopAPIs[i]()
	}
	for _, in := range s.integs {
		if in.receiver != nil {
			in.receiver.close()
		}
	}
	if s.s3 != nil {
		s.s3.close()
	}
	if s.broker != nil {
		s.broker.stop()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.pg != nil {
		_ = s.pg.signal(syscall.SIGCONT) // in case a pause was never healed
		_ = s.pg.stop()
	}
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
