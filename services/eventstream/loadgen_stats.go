package eventstream

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadStats counts one run's events and requests and keeps its publish
// latencies (of accepted requests: a refused request is counted, not timed).
type loadStats struct {
	sent, accepted, failed, rateLimited atomic.Int64

	mu       sync.Mutex
	byStatus map[int]int64 // 0: no response; -1: a 202 whose body was unreadable
	publish  latencies
}

func newLoadStats() *loadStats { return &loadStats{byStatus: map[int]int64{}} }

func (s *loadStats) request(status int, t timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byStatus[status]++
	if status == 202 {
		s.publish.add(t.d)
	}
}

// errorsText is "429×3 503×1 net×2", or "none".
func (s *loadStats) errorsText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return statusText(s.byStatus, false)
}

func statusText(by map[int]int64, withOK bool) string {
	codes := make([]int, 0, len(by))
	for c := range by {
		if withOK || c != 202 {
			codes = append(codes, c)
		}
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, statusName(c)+"×"+strconv.FormatInt(by[c], 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func statusName(c int) string {
	switch c {
	case 0:
		return "net"
	case -1:
		return "bad-202"
	}
	return strconv.Itoa(c)
}

// latencies keeps every sample for the summary and the samples since the
// last progress line for it. Callers hold the owner's lock.
type latencies struct {
	all, window []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.all = append(l.all, d)
	l.window = append(l.window, d)
}

// takeWindow returns the samples since the last call, sorted.
func (l *latencies) takeWindow() []time.Duration {
	w := l.window
	l.window = nil
	slices.Sort(w)
	return w
}

func (l *latencies) sorted() []time.Duration {
	s := slices.Clone(l.all)
	slices.Sort(s)
	return s
}

// percentile of sorted samples (nearest rank), in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return ms(sorted[max(0, min(i, len(sorted)-1))])
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// progress prints a line a second: a single updating line on a terminal,
// plain lines otherwise (a log file, CI).
type progress struct {
	w   io.Writer
	tty bool
	g   *loadgen
}

func newProgress(w io.Writer, g *loadgen) *progress {
	p := &progress{w: w, g: g}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// run prints until the returned stop is called; stop prints the last line.
func (p *progress) run(start time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAccepted := start, int64(0)
		for {
			select {
			case <-done:
				// The last line's interval may be a few milliseconds
				// long: its rate is the whole run's instead.
				last, lastAccepted = start, 0
				p.line(start, &last, &lastAccepted)
				if p.tty {
					fmt.Fprintln(p.w)
				}
				return
			case <-tick.C:
				p.line(start, &last, &lastAccepted)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (p *progress) line(start time.Time, last *time.Time, lastAccepted *int64) {
	now := time.Now()
	s := p.g.stats
	acc := s.accepted.Load()
	rate := float64(acc-*lastAccepted) / now.Sub(*last).Seconds()
	*last, *lastAccepted = now, acc
	s.mu.Lock()
	w := s.publish.takeWindow()
	s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "[%5.1fs] %7.0f events/s | sent %d accepted %d failed %d | errors %s | publish p50 %.1f ms p99 %.1f ms",
		now.Sub(start).Seconds(), rate, s.sent.Load(), acc, s.failed.Load(), s.errorsText(), percentile(w, 50), percentile(w, 99))
	if t := p.g.tracker; t != nil {
		d := t.takeWindow()
		fmt.Fprintf(&b, " | delivered %d p50 %.1f ms p99 %.1f ms", t.delivered.Load(), percentile(d, 50), percentile(d, 99))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", b.String())
		return
	}
	fmt.Fprintln(p.w, b.String())
}

// LoadSummary is the outcome of a loadgen run (--json prints it as is).
type LoadSummary struct {
	BaseURL     string           `json:"base_url"`
	TargetRate  float64          `json:"target_rate"` // events/s; 0: flat out
	Batch       int              `json:"batch"`
	Concurrency int              `json:"concurrency"`
	Elapsed     float64          `json:"elapsed_s"` // the publishing phase
	Sent        int64            `json:"sent"`
	Accepted    int64            `json:"accepted"`
	Failed      int64            `json:"failed"`
	Rate        float64          `json:"rate"` // accepted events/s
	Requests    map[string]int64 `json:"requests"`
	RateLimited int64            `json:"rate_limited"` // 429 answers (retried after Retry-After)
	Publish     LatencySummary   `json:"publish_ms"`
	Delivery    *DeliverySummary `json:"delivery,omitempty"`
}

// LatencySummary is in milliseconds.
type LatencySummary struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// DeliverySummary is what the receiver saw of the accepted events.
type DeliverySummary struct {
	Delivered  int64          `json:"delivered"`  // accepted events delivered at least once
	Duplicates int64          `json:"duplicates"` // further deliveries of those
	Unmatched  int64          `json:"unmatched"`  // deliveries of events this run did not publish
	Latency    LatencySummary `json:"latency_ms"` // publish request sent → delivery received
}

func summarize(sorted []time.Duration) LatencySummary {
	if len(sorted) == 0 {
		return LatencySummary{}
	}
	return LatencySummary{P50: percentile(sorted, 50), P90: percentile(sorted, 90), P99: percentile(sorted, 99), Max: ms(sorted[len(sorted)-1])}
}

func (g *loadgen) summary(elapsed time.Duration) *LoadSummary {
	s := g.stats
	s.mu.Lock()
	sum := &LoadSummary{
		BaseURL: g.cfg.BaseURL, TargetRate: g.cfg.Rate, Batch: g.cfg.Batch, Concurrency: g.cfg.Concurrency,
		Elapsed: math.Round(elapsed.Seconds()*1000) / 1000, Sent: s.sent.Load(), Accepted: s.accepted.Load(),
		Failed: s.failed.Load(), RateLimited: s.rateLimited.Load(), Requests: map[string]int64{},
		Publish: summarize(s.publish.sorted()),
	}
	for c, n := range s.byStatus {
		sum.Requests[statusName(c)] = n
	}
	s.mu.Unlock()
	sum.Rate = math.Round(float64(sum.Accepted)/elapsed.Seconds()*10) / 10
	if t := g.tracker; t != nil {
		sum.Delivery = t.summary()
	}
	return sum
}

func (s *LoadSummary) write(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the summary: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	target := "flat out"
	if s.TargetRate > 0 {
		target = fmt.Sprintf("target %g events/s", s.TargetRate)
	}
	by := map[int]int64{}
	for k, n := range s.Requests {
		c, err := strconv.Atoi(k)
		if err != nil {
			c = map[string]int{"net": 0, "bad-202": -1}[k]
		}
		by[c] = n
	}
	var b strings.Builder
	fmt.Fprintf(&b, "loadgen summary (%s, %s, batches of %d, %d in flight)\n", s.BaseURL, target, s.Batch, s.Concurrency)
	fmt.Fprintf(&b, "  events     sent %d, accepted %d, failed %d\n", s.Sent, s.Accepted, s.Failed)
	fmt.Fprintf(&b, "  rate       %.1f events/s accepted over %.2f s (%s)\n", s.Rate, s.Elapsed, target)
	fmt.Fprintf(&b, "  requests   %s; 429 answered %d times (waited Retry-After, then retried)\n", statusText(by, true), s.RateLimited)
	fmt.Fprintf(&b, "  publish    p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", s.Publish.P50, s.Publish.P90, s.Publish.P99, s.Publish.Max)
	if d := s.Delivery; d != nil {
		fmt.Fprintf(&b, "  delivery   %d of %d accepted events delivered (%d duplicates, %d unmatched); publish → delivery p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			d.Delivered, s.Accepted, d.Duplicates, d.Unmatched, d.Latency.P50, d.Latency.P90, d.Latency.P99, d.Latency.Max)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// err says what the run lost, if anything: the exit status is 0 only when
// every event was accepted (and, with a receiver, delivered).
func (s *LoadSummary) err() error {
	var lost []string
	if n := s.Sent - s.Accepted; n > 0 {
		lost = append(lost, fmt.Sprintf("%d of %d events not accepted", n, s.Sent))
	}
	if d := s.Delivery; d != nil && d.Delivered < s.Accepted {
		lost = append(lost, fmt.Sprintf("%d accepted events not delivered within --drain", s.Accepted-d.Delivered))
	}
	if len(lost) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrLoadLost, strings.Join(lost, "; "))
}

// ErrLoadLost means a loadgen run ended with events not accepted or not delivered.
var ErrLoadLost = fmt.Errorf("the run lost events")
