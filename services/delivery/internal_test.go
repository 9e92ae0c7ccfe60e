package delivery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestTrackerCommitsContiguousDonePrefix(t *testing.T) {
	tr := newTracker()
	base := time.UnixMilli(1_700_000_000_000)
	at := func(o int64) time.Time { return base.Add(time.Duration(o) * time.Second) }
	for _, o := range []int64{5, 6, 7, 9, 12} { // gaps: compaction, markers
		tr.add(o, at(o))
	}
	steps := []struct {
		done, want int64
		oldest     int64 // offset whose timestamp is the oldest not done; -1: none
	}{
		{6, -1, 5},  // 5 still open
		{9, -1, 5},  // still 5
		{5, 7, 7},   // 5,6 done -> next is 7
		{100, 7, 7}, // unknown offset: ignored
		{7, 10, 12}, // 5,6,7,9 -> 10
		{12, 13, -1},
	}
	if ts, ok := tr.oldest(); !ok || !ts.Equal(at(5)) {
		t.Fatalf("oldest before any done = %v, %v; want offset 5's timestamp", ts, ok)
	}
	for _, s := range steps {
		tr.done(s.done)
		if got := tr.commitPoint(); got != s.want {
			t.Fatalf("after done(%d) commit point = %d, want %d", s.done, got, s.want)
		}
		ts, ok := tr.oldest()
		if s.oldest < 0 && ok || s.oldest >= 0 && (!ok || !ts.Equal(at(s.oldest))) {
			t.Fatalf("after done(%d) oldest = %v, %v; want offset %d's timestamp", s.done, ts, ok, s.oldest)
		}
	}
	if tr.pending() != 0 {
		t.Fatalf("pending = %d", tr.pending())
	}
	// Long runs compact without losing order.
	for o := int64(13); o < 10000; o++ {
		tr.add(o, at(o))
		if o%2 == 0 {
			tr.done(o - 1)
			tr.done(o)
		}
	}
	if got := tr.commitPoint(); got != 9999 {
		t.Fatalf("commit point after a long run = %d, want 9999", got)
	}
}

func TestLimiterAIMD(t *testing.T) {
	l := newLimiter(1, 4, 16)
	ctx := context.Background()
	// Slow start: every healthy response adds one.
	for i := 0; i < 12; i++ {
		s, err := l.acquire(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.release(s, healthy, 0)
	}
	if lim, _ := l.current(); lim != 16 {
		t.Fatalf("after 12 healthy responses limit = %d, want capped at 16", lim)
	}
	// Congestion halves once per round trip: responses to requests started
	// before the decrease do not halve again.
	starts := make([]time.Time, 8)
	for i := range starts {
		starts[i], _ = l.acquire(ctx, nil)
	}
	for _, s := range starts {
		l.release(s, congested, 0)
	}
	if lim, _ := l.current(); lim != 8 {
		t.Fatalf("after one congestion event limit = %d, want 8", lim)
	}
	// Now above ssthresh growth is additive: 8 healthy responses add ~1.
	for i := 0; i < 8; i++ {
		s, _ := l.acquire(ctx, nil)
		l.release(s, healthy, 0)
	}
	if lim, _ := l.current(); lim != 8 && lim != 9 {
		t.Fatalf("congestion avoidance grew to %d", lim)
	}
	// Neutral responses change nothing; repeated congestion bottoms out at 1.
	for i := 0; i < 10; i++ {
		s, _ := l.acquire(ctx, nil)
		l.release(s, congested, 0)
	}
	if lim, _ := l.current(); lim != 1 {
		t.Fatalf("limit after repeated congestion = %d, want 1", lim)
	}
	// The limit is enforced: with 1 in flight a second acquire waits.
	held, _ := l.acquire(ctx, nil)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := l.acquire(short, nil); err == nil {
		t.Fatal("acquired beyond the limit")
	}
	cancel()
	// Retry-After pauses new requests even with free slots.
	l.release(held, neutral, 300*time.Millisecond)
	t0 := time.Now()
	s, err := l.acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(t0); waited < 250*time.Millisecond {
		t.Fatalf("acquire after Retry-After waited %s, want ~300ms", waited)
	}
	l.release(s, healthy, 0)
}

func TestGroupNames(t *testing.T) {
	cases := []struct {
		tenant, id string
		gen        int64
		epoch      int
		name       string
	}{
		{"acme", "erp-1", 7, 0, "eventstream.acme.erp-1.7"},
		{"acme", "erp-1", 7, 2, "eventstream.acme.erp-1.7.2"},
	}
	for _, c := range cases {
		if got := groupName(c.tenant, c.id, c.gen, c.epoch); got != c.name {
			t.Fatalf("groupName = %s, want %s", got, c.name)
		}
		tn, id, gen, epoch, ok := parseGroupName(c.name)
		if !ok || tn != c.tenant || id != c.id || gen != c.gen || epoch != c.epoch {
			t.Fatalf("parseGroupName(%s) = %s %s %d %d %v", c.name, tn, id, gen, epoch, ok)
		}
	}
	for _, bad := range []string{"other.acme.x.1", "eventstream.acme.events", "eventstream.acme.x.y", "eventstream.a.b.1.0", "eventstream.a.b.1.2.3"} {
		if _, _, _, _, ok := parseGroupName(bad); ok {
			t.Fatalf("parseGroupName(%s) accepted", bad)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"KAFKA_BROKERS":          "k1:9092, k2:9092",
		"DELIVERY_POOL":          "big",
		"DELIVERY_POOL_TENANTS":  "acme,globex",
		"WEBHOOK_ALLOW_CIDRS":    "127.0.0.0/8,10.1.2.3",
		"DELIVERY_RETRY_BASE":    "10ms",
		"DELIVERY_MAX_RETRIES":   "3",
		"DELIVERY_MAX_IN_FLIGHT": "50",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Brokers) != 2 || cfg.Pool != "big" || cfg.Wildcard() || len(cfg.PoolTenants) != 2 ||
		len(cfg.AllowCIDRs) != 2 || cfg.RetryBase != 10*time.Millisecond || cfg.MaxRetries != 3 || cfg.MaxInFlight != 50 ||
		cfg.AttemptTimeout != 10*time.Second || cfg.OffsetRetention != 30*24*time.Hour || cfg.TemporaryRetention != 7*24*time.Hour {
		t.Fatalf("config = %+v", cfg)
	}
	bad := []map[string]string{
		{}, // no brokers
		{"KAFKA_BROKERS": "k", "DELIVERY_POOL_TENANTS": "*,acme"},
		{"KAFKA_BROKERS": "k", "DELIVERY_RETRY_BASE": "soon"},
		{"KAFKA_BROKERS": "k", "WEBHOOK_ALLOW_CIDRS": "everything"},
		{"KAFKA_BROKERS": "k", "DELIVERY_RETRY_BASE": "10m", "DELIVERY_RETRY_MAX": "1m"},
		{"KAFKA_BROKERS": "k", "WEBHOOK_MAX_CONCURRENCY": "2", "WEBHOOK_INITIAL_CONCURRENCY": "4"},
	}
	for i, b := range bad {
		if _, err := ConfigFromEnv(func(k string) string { return b[k] }); err == nil {
			t.Errorf("bad config %d accepted: %v", i, b)
		}
	}
	if cfg, err := ConfigFromEnv(func(k string) string { return map[string]string{"KAFKA_BROKERS": "k"}[k] }); err != nil || !cfg.Wildcard() {
		t.Fatalf("default pool: %+v, %v", cfg.PoolTenants, err)
	}
}

// One start reports every problem: a malformed variable and a failed check
// together, each named.
func TestConfigFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"DELIVERY_RETRY_BASE": "soon", "DELIVERY_POOL_TENANTS": "*,acme"}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"DELIVERY_RETRY_BASE", "DELIVERY_POOL_TENANTS", "KAFKA_BROKERS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	acquire := func(ctx context.Context, n int64, admit bool, stop <-chan struct{}) error {
		_, err := b.acquire(ctx, n, admit, stop)
		return err
	}
	if err := acquire(ctx, 250, false, nil); err != nil { // larger than the budget, alone: admitted
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := acquire(short, 1, false, nil); err == nil {
		t.Fatal("acquired past the budget")
	}
	// A holder of nothing is admitted past the budget (the shared budget's rule).
	if before, err := b.acquire(ctx, 5, true, nil); err != nil || before != 250 {
		t.Fatalf("admitted acquire: held before %d, err %v", before, err)
	}
	b.release(5)
	done := make(chan error, 1)
	go func() { done <- acquire(ctx, 60, false, nil) }()
	b.release(250)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := acquire(ctx, 40, false, nil); err != nil { // 60+40 fits exactly
		t.Fatal(err)
	}
	if b.inUse() != 100 {
		t.Fatalf("in use %d, want 100", b.inUse())
	}
	stop := make(chan struct{})
	close(stop)
	if err := acquire(ctx, 1, false, stop); !errors.Is(err, errSinkStopped) {
		t.Fatalf("acquire on a stopped sink = %v", err)
	}
}

// Every variable the worker reads is documented in the README.
func TestREADMEListsEverySetting(t *testing.T) {
	var c Config
	s := config.Defaults()
	c.settings(s)
	testenv.CheckDocumented(t, s.Vars())
}
