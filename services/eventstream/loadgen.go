package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventstream/eventstream/pkg/events"
)

// LoadgenConfig is one `eventstream loadgen` run.
type LoadgenConfig struct {
	// BaseURL of the deployment (EVENTSTREAM_URL): /v1/events and the
	// configuration API are under it.
	BaseURL string
	// Token is a bearer token with events:publish (and integrations:write
	// with a receiver), TOKEN in the environment.
	Token string
	// Rate in events per second; 0 publishes flat out.
	Rate float64
	// Duration of the publishing phase.
	Duration time.Duration
	// Batch is events per request: 1 sends the single-event body, more the
	// {"events": [...]} body.
	Batch int
	// Concurrency bounds the requests in flight.
	Concurrency int
	// Names are the event names published, in turn.
	Names []string
	// Timeout of one request.
	Timeout time.Duration
	// Receiver, when set, is the listen address of loadgen's own webhook
	// endpoint; a webhook integration pointing at it is registered for the
	// run and deleted after it.
	Receiver string
	// ReceiverURL is the callback URL the deployment calls; default
	// http://<the receiver's address>/loadgen.
	ReceiverURL string
	// Drain is how long to wait, after publishing, for the accepted events
	// to be delivered.
	Drain time.Duration
	// Warmup bounds the wait for the integration's first delivery (a probe
	// event) before the measured run starts.
	Warmup time.Duration
	// JSON prints the summary as JSON.
	JSON bool
}

// Validate reports the first invalid setting.
func (c LoadgenConfig) Validate() error {
	switch {
	case c.BaseURL == "":
		return errors.New("--url (or EVENTSTREAM_URL) is required")
	case !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://"):
		return fmt.Errorf("--url %q: must be an http:// or https:// URL", c.BaseURL)
	case c.Token == "":
		return errors.New("--token (or TOKEN) is required")
	case c.Rate < 0:
		return errors.New("--rate must be 0 (flat out) or positive")
	case c.Duration <= 0:
		return errors.New("--duration must be positive")
	case c.Batch < 1 || c.Batch > 500:
		return errors.New("--batch must be 1 to 500 (ingest's INGEST_MAX_BATCH default)")
	case c.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case c.Timeout <= 0, c.Drain < 0, c.Warmup <= 0:
		return errors.New("--timeout and --warmup must be positive, --drain not negative")
	}
	for _, n := range c.Names {
		if !events.IsKnownName(n) {
			return fmt.Errorf("--names: %q is not a known event name", n)
		}
	}
	if len(c.Names) == 0 {
		return errors.New("--names: at least one event name")
	}
	return nil
}

// parseLoadgenArgs fills a LoadgenConfig from flags, with EVENTSTREAM_URL and
// TOKEN (what `make run` prints to export) as the defaults of --url and --token.
func parseLoadgenArgs(args []string, getenv func(string) string, stderr io.Writer) (LoadgenConfig, error) {
	c := LoadgenConfig{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.BaseURL, "url", "", "base URL of the deployment (default $EVENTSTREAM_URL)")
	fs.StringVar(&c.Token, "token", "", "bearer token: events:publish, and integrations:write with --receiver (default $TOKEN)")
	fs.Float64Var(&c.Rate, "rate", 100, "events per second; 0 publishes as fast as the deployment accepts")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&c.Batch, "batch", 1, "events per request (1: single-event body)")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "requests in flight at most")
	names := fs.String("names", "", "comma-separated event names published in turn (default: all 42)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.StringVar(&c.Receiver, "receiver", "", "listen address of a webhook receiver run by loadgen (e.g. :9999); measures publish → delivery")
	fs.StringVar(&c.ReceiverURL, "receiver-url", "", "callback URL the deployment should call (default http://<receiver address>/loadgen)")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "after publishing, how long to wait for deliveries")
	fs.DurationVar(&c.Warmup, "warmup", 60*time.Second, "how long to wait for the receiver's first delivery before the run")
	fs.BoolVar(&c.JSON, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return c, errUsage
	}
	// The environment is read here, not as the flags' defaults: -h would
	// print the token.
	if c.BaseURL == "" {
		c.BaseURL = getenv("EVENTSTREAM_URL")
	}
	if c.Token == "" {
		c.Token = getenv("TOKEN")
	}
	c.Names = events.Names()
	if *names != "" {
		c.Names = strings.Split(*names, ",")
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c, c.Validate()
}

// loadgen is one run: its configuration, counters and latency records.
type loadgen struct {
	cfg    LoadgenConfig
	client *http.Client
	runID  string
	seq    atomic.Int64 // events handed to the workers
	keys   atomic.Int64 // payload ids made

	stats    *loadStats
	tracker  *deliveryTracker // nil without a receiver
	pauseMu  sync.Mutex
	pauseTil time.Time // a 429's Retry-After: no request before this
}

// Loadgen publishes events to cfg.BaseURL as configured, reporting progress
// on progress every second and the summary on out. It returns the summary,
// and an error when setting up failed or the run lost events: an event not
// accepted, or (with a receiver) an accepted event not delivered within
// cfg.Drain.
func Loadgen(ctx context.Context, cfg LoadgenConfig, out, progress io.Writer) (*LoadSummary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &loadgen{
		cfg:   cfg,
		runID: randomHex(4),
		client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			// One kept-alive connection per request in flight: opening
			// connections would be measured as the deployment's latency.
			MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout: 90 * time.Second,
		}},
		stats: newLoadStats(),
	}
	defer g.client.CloseIdleConnections()

	if cfg.Receiver != "" {
		rcv, err := startReceiver(ctx, g)
		if err != nil {
			return nil, err
		}
		defer rcv.stop(progress)
		if err := rcv.warmUp(ctx, progress); err != nil {
			return nil, err
		}
		g.tracker = rcv.tracker
	}

	p := newProgress(progress, g)
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	stopProgress := p.run(start)
	g.publish(ctx, pctx)
	cancel()
	elapsed := time.Since(start)
	if g.tracker != nil {
		g.waitDelivered(ctx, time.Now().Add(cfg.Drain))
	}
	stopProgress()

	s := g.summary(elapsed)
	if err := s.write(out, cfg.JSON); err != nil {
		return s, err
	}
	return s, s.err()
}

// publish runs the workers until pctx ends (the duration); the pacer hands
// them batches at the configured rate. A request started before the end
// finishes within ctx.
func (g *loadgen) publish(ctx, pctx context.Context) {
	jobs := make(chan []string)
	var wg sync.WaitGroup
	for range g.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for names := range jobs {
				g.send(ctx, names)
			}
		}()
	}
	g.pace(pctx, jobs)
	close(jobs)
	wg.Wait()
}

// pace hands out one batch of names per slot: every Batch/Rate seconds, or
// as soon as a worker is free at rate 0. When every worker is busy the
// pacer waits for one, then makes up the slots it missed as workers free up
// (never more than Concurrency requests in flight), so a slow answer does
// not lower the offered rate, and an achieved rate below it means the
// deployment did not keep up. After a 429's Retry-After the schedule
// restarts from then instead: missed slots are not made up in a burst the
// rate limiter would refuse again.
func (g *loadgen) pace(pctx context.Context, jobs chan<- []string) {
	var interval time.Duration
	if g.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(g.cfg.Batch) / g.cfg.Rate)
	}
	base, slot := time.Now(), 0
	end, _ := pctx.Deadline()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if til := g.pausedUntil(); time.Now().Before(til) {
			if !sleepCtx(pctx, timer, time.Until(til)) {
				return
			}
			base, slot = time.Now(), 0
		}
		at := base.Add(time.Duration(slot) * interval)
		if !at.Before(end) {
			return
		}
		if wait := time.Until(at); wait > 0 {
			if !sleepCtx(pctx, timer, wait) {
				return
			}
			continue // a 429 may have come meanwhile
		}
		names := make([]string, g.cfg.Batch)
		for i := range names {
			n := g.seq.Add(1)
			names[i] = g.cfg.Names[int(n-1)%len(g.cfg.Names)]
		}
		select {
		case jobs <- names:
		case <-pctx.Done():
			g.seq.Add(-int64(len(names))) // never sent
			return
		}
		slot++
	}
}

func sleepCtx(ctx context.Context, t *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *loadgen) pausedUntil() time.Time {
	g.pauseMu.Lock()
	defer g.pauseMu.Unlock()
	return g.pauseTil
}

func (g *loadgen) pauseFor(d time.Duration) {
	g.pauseMu.Lock()
	defer g.pauseMu.Unlock()
	if til := time.Now().Add(d); til.After(g.pauseTil) {
		g.pauseTil = til
	}
}

// maxRateLimited bounds the 429s one batch takes before its events count as failed.
const maxRateLimited = 10

// send publishes one batch. A 429 is retried after its Retry-After, even
// past the duration (nothing of a refused request was published, and a
// rate-limited run should not end with events counted as lost), up to
// maxRateLimited times; any other failure counts the batch's events as failed.
func (g *loadgen) send(ctx context.Context, names []string) {
	body := g.body(names)
	g.stats.sent.Add(int64(len(names)))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		status, ids, retryAfter, took := g.post(ctx, body, len(names))
		g.stats.request(status, took)
		switch status {
		case http.StatusAccepted:
			accepted := 0
			for _, id := range ids {
				if id != "" {
					accepted++
					if g.tracker != nil {
						g.tracker.published(id, took.start)
					}
				}
			}
			g.stats.accepted.Add(int64(accepted))
			g.stats.failed.Add(int64(len(names) - accepted))
			return
		case http.StatusTooManyRequests:
			g.stats.rateLimited.Add(1)
			g.pauseFor(retryAfter)
			if attempt == maxRateLimited || !sleepCtx(ctx, timer, retryAfter) {
				g.stats.failed.Add(int64(len(names)))
				return
			}
		default:
			g.stats.failed.Add(int64(len(names)))
			return
		}
	}
}

// body renders a request: each event's payload id (its idempotency key,
// hence its event id) is unique to this run.
func (g *loadgen) body(names []string) []byte {
	var b bytes.Buffer
	if len(names) > 1 {
		b.WriteString(`{"events":[`)
	}
	for i, n := range names {
		key := "lg-" + g.runID + "-" + strconv.FormatInt(g.keys.Add(1), 10)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"payload":{"id":%q,"source":"eventstream loadgen","total":12.5}}`, n, key)
	}
	if len(names) > 1 {
		b.WriteString(`]}`)
	}
	return b.Bytes()
}

// timing is when a request started and how long it took.
type timing struct {
	start time.Time
	d     time.Duration
}

// post sends one request. status is 0 when no response came; ids holds an
// event id per event ("" for one refused in a batch).
func (g *loadgen) post(ctx context.Context, body []byte, n int) (status int, ids []string, retryAfter time.Duration, t timing) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.BaseURL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, t
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	t.start = time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		t.d = time.Since(t.start)
		return 0, nil, 0, t
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	t.d = time.Since(t.start)
	if err != nil {
		return 0, nil, 0, t
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 {
			secs = 1
		}
		return resp.StatusCode, nil, time.Duration(secs) * time.Second, t
	case http.StatusAccepted:
		ids, err := acceptedIDs(raw, n)
		if err != nil {
			return -1, nil, 0, t
		}
		return resp.StatusCode, ids, 0, t
	}
	return resp.StatusCode, nil, 0, t
}

// acceptedIDs reads the event ids of a 202: {"event_id"} for one event,
// {"results": [{"index", "event_id"} | {"index", "error"}]} for a batch.
func acceptedIDs(raw []byte, n int) ([]string, error) {
	if n == 1 {
		var one struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("reading the 202 body %.200q: %w", raw, err)
		}
		if one.EventID == "" {
			return nil, fmt.Errorf("reading the 202 body %.200q: no event_id", raw)
		}
		return []string{one.EventID}, nil
	}
	var batch struct {
		Results []struct {
			Index   int    `json:"index"`
			EventID string `json:"event_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &batch); err != nil {
		return nil, fmt.Errorf("reading the 202 body %.200q: %w", raw, err)
	}
	if len(batch.Results) != n {
		return nil, fmt.Errorf("reading the 202 body %.200q: %d results for %d events", raw, len(batch.Results), n)
	}
	ids := make([]string, n)
	for _, r := range batch.Results {
		if r.Index >= 0 && r.Index < n {
			ids[r.Index] = r.EventID
		}
	}
	return ids, nil
}

// waitDelivered polls until every accepted event was delivered, or deadline.
func (g *loadgen) waitDelivered(ctx context.Context, deadline time.Time) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for g.tracker.delivered.Load() < g.stats.accepted.Load() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
