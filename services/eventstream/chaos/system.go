package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/eventstream/eventstream/services/configapi"
)

// system is everything a run starts: the infrastructure under the suite's
// control, the services as built binaries (ingest, the config API, the
// delivery workers), and the tenants with their integrations.
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
	ingest     *apiService
	configAPI  *apiService
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
		// A producer that cannot reach the broker answers 503 within this;
		// the publisher retries with the same idempotency keys.
		"INGEST_PRODUCE_TIMEOUT": "5s",
		// Tenants never change during a run; a paused catalog must not
		// fail publishing more than it has to.
		"INGEST_TENANT_CACHE_TTL": "10m",
	}
	if b := o.Binaries; b.Delivery == "" || b.Ingest == "" || b.ConfigAPI == "" {
		logf("building the services not given (go build)")
	}
	bins, err := o.Binaries.build(ctx, dir)
	if err != nil {
		return s, err
	}
	if err := s.startAPIs(ctx, bins, env); err != nil {
		return s, err
	}
	logf("ingest and the config API up (%s, %s)", bins.Ingest, bins.ConfigAPI)
	if err := s.provision(ctx, store, l); err != nil {
		return s, err
	}
	s.workers = newWorkers(bins.Delivery, workerEnv(env, s.s3.URL()), o.Workers, dir)
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

// startAPIs starts ingest and the config API, built binaries with env
// (each reads its own variables), and waits until both are ready. Their
// logs are ingest.log and configapi.log in the run's directory.
func (s *system) startAPIs(ctx context.Context, bins Binaries, env map[string]string) error {
	kv := make([]string, 0, len(env))
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	var err error
	if s.ingest, err = startAPI(ctx, "ingest", bins.Ingest, kv, "INGEST_ADDR", s.dir); err != nil {
		return err
	}
	if s.configAPI, err = startAPI(ctx, "configapi", bins.ConfigAPI, kv, "CONFIGAPI_ADDR", s.dir); err != nil {
		return err
	}
	s.ingestURL, s.configURL = s.ingest.url, s.configAPI.url
	return nil
}

// apis are the API services that run (for crash checks and the stop).
func (s *system) apis() []*apiService {
	var out []*apiService
	for _, a := range []*apiService{s.ingest, s.configAPI} {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
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

// close stops everything; the errors are services that did not stop
// cleanly (SIGTERM answered late or with a non-zero exit status).
func (s *system) close() []error {
	var errs []error
	if s.workers != nil {
		if err := s.workers.stopAll(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, a := range s.apis() {
		// Ingest drains within INGEST_SHUTDOWN_TIMEOUT, the config API
		// within CONFIGAPI_SHUTDOWN_TIMEOUT (10 s each by default).
		if err := a.signal(syscall.SIGTERM, 20*time.Second); err != nil {
			errs = append(errs, err)
		}
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
	return errs
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
