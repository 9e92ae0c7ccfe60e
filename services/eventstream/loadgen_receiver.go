package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventstream/eventstream/pkg/webhook"
)

// integrationsPath is the configuration API's collection under the base URL.
const integrationsPath = "/api/v1/org/integrations/eventstream"

// lgReceiver is loadgen's webhook endpoint and the integration that points
// the deployment at it for the length of a run.
type lgReceiver struct {
	g             *loadgen
	srv           *http.Server
	served        chan error
	tracker       *deliveryTracker
	integrationID string
}

// startReceiver listens on cfg.Receiver and registers a webhook integration
// (every event name, signed, so deliveries carry webhook-id) calling it.
func startReceiver(ctx context.Context, g *loadgen) (*lgReceiver, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.cfg.Receiver)
	if err != nil {
		return nil, fmt.Errorf("listening for deliveries: %w", err)
	}
	r := &lgReceiver{g: g, tracker: newDeliveryTracker(), served: make(chan error, 1), integrationID: "loadgen-" + g.runID}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { r.served <- r.srv.Serve(ln) }()

	callback := g.cfg.ReceiverURL
	if callback == "" {
		addr := ln.Addr().(*net.TCPAddr)
		host := addr.IP.String()
		if addr.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		callback = "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)) + "/loadgen"
	}
	body := map[string]any{
		"id":               r.integrationID,
		"integration_type": "permanent",
		"callback_parameters": map[string]any{
			"callback_url":   callback,
			"api_key":        "lg-" + randomHex(16),
			"signing_secret": randomHex(16),
		},
	}
	if status, raw, err := g.call(ctx, http.MethodPost, integrationsPath, body); err != nil || status != http.StatusOK {
		_ = r.srv.Close()
		return nil, fmt.Errorf("registering the receiver's webhook integration (callback %s): %d %s %w", callback, status, raw, errOrNil(err))
	}
	return r, nil
}

func errOrNil(err error) error {
	if err == nil {
		return errors.New("unexpected answer")
	}
	return err
}

// serve records a delivery by its event id: webhook-id (the integration is
// signed), or the Eventstream-Delivery mark, which carries the same id.
func (r *lgReceiver) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	_, _ = io.Copy(io.Discard, req.Body)
	id := req.Header.Get("webhook-id")
	if id == "" {
		id = req.Header.Get(webhook.HeaderDelivery)
	}
	r.tracker.arrived(id, at)
	w.WriteHeader(http.StatusOK)
}

// warmUp publishes a probe event and waits until it is delivered: a new
// integration's consumer takes a moment to start, which is no part of
// publish → delivery latency.
func (r *lgReceiver) warmUp(ctx context.Context, progress io.Writer) error {
	start := time.Now()
	body := []byte(fmt.Sprintf(`{"name":%q,"payload":{"id":"lg-%s-warmup","source":"eventstream loadgen"}}`, r.g.cfg.Names[0], r.g.runID))
	status, ids, _, _ := r.g.post(ctx, body, 1)
	if status != http.StatusAccepted {
		return fmt.Errorf("publishing the warm-up event: status %s", statusName(status))
	}
	r.tracker.ignore(ids[0])
	deadline := time.Now().Add(r.g.cfg.Warmup)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !r.tracker.seen(ids[0]) {
		if time.Now().After(deadline) {
			return fmt.Errorf("warming up: the probe event was not delivered to the receiver within %s (is the callback URL reachable from the deployment? --receiver-url)", r.g.cfg.Warmup)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	fmt.Fprintf(progress, "receiver ready: integration %s delivered the warm-up event after %s\n", r.integrationID, time.Since(start).Round(time.Millisecond))
	return nil
}

// stop deletes the integration (even when ctx was cancelled) and closes the
// endpoint.
func (r *lgReceiver) stop(progress io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	status, raw, err := r.g.call(ctx, http.MethodDelete, integrationsPath+"/"+r.integrationID, nil)
	if err != nil || status/100 != 2 {
		fmt.Fprintf(progress, "deleting integration %s: %d %s %v (delete it yourself)\n", r.integrationID, status, raw, err)
	}
	_ = r.srv.Shutdown(ctx)
	if err := <-r.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(progress, "receiver: %v\n", err)
	}
}

// call sends a JSON request to the configuration API.
func (g *loadgen) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.cfg.BaseURL+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("calling %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, raw, err
}

// deliveryTracker matches deliveries to publishes by event id. A delivery
// may arrive before loadgen has read the 202 that names its id; both orders
// are matched.
type deliveryTracker struct {
	delivered atomic.Int64 // accepted events delivered at least once

	mu         sync.Mutex
	sentAt     map[string]time.Time // accepted, not yet delivered
	early      map[string]time.Time // delivered, not (yet) known as published
	done       map[string]bool
	ignored    map[string]bool
	duplicates int64
	lat        latencies
}

func newDeliveryTracker() *deliveryTracker {
	return &deliveryTracker{sentAt: map[string]time.Time{}, early: map[string]time.Time{}, done: map[string]bool{}, ignored: map[string]bool{}}
}

// published records an accepted event and when its publish request was sent.
func (t *deliveryTracker) published(id string, sent time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.early[id]; ok {
		delete(t.early, id)
		t.match(id, at.Sub(sent))
		return
	}
	t.sentAt[id] = sent
}

func (t *deliveryTracker) arrived(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch sent, ok := t.sentAt[id]; {
	case t.ignored[id]:
		t.done[id] = true
	case t.done[id]:
		t.duplicates++
	case ok:
		delete(t.sentAt, id)
		t.match(id, at.Sub(sent))
	default:
		if _, dup := t.early[id]; dup {
			t.duplicates++
			return
		}
		t.early[id] = at
	}
}

func (t *deliveryTracker) match(id string, d time.Duration) {
	t.done[id] = true
	t.lat.add(d)
	t.delivered.Add(1)
}

// ignore excludes an event (the warm-up probe) from the figures.
func (t *deliveryTracker) ignore(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ignored[id] = true
	if _, ok := t.early[id]; ok {
		delete(t.early, id)
		t.done[id] = true
	}
}

func (t *deliveryTracker) seen(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done[id]
}

func (t *deliveryTracker) takeWindow() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lat.takeWindow()
}

func (t *deliveryTracker) summary() *DeliverySummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &DeliverySummary{
		Delivered: t.delivered.Load(), Duplicates: t.duplicates, Unmatched: int64(len(t.early)),
		Latency: summarize(t.lat.sorted()),
	}
}
