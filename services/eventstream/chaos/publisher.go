package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventstream/eventstream/pkg/events"
)

// publisher publishes events for one tenant through the ingest API, batch
// after batch, retrying a batch (same idempotency keys, hence same event
// ids) until ingest acknowledges it.
type publisher struct {
	sys    *system
	ledger *Ledger
	tenant string
	rng    *rand.Rand
	run    string // distinguishes this run's idempotency keys
	seq    int
	// perTick is the mean batch size per 250 ms tick.
	perTick int
	big     bool // bursts of big events: every minute and on request
	burst   chan struct{}
	workers int
	retries atomic.Int64
}

type eventIn struct {
	Name           string         `json:"name"`
	IdempotencyKey string         `json:"idempotency_key"`
	Payload        map[string]any `json:"payload"`
}

// bigPad makes a ~240 KiB event: 22 of them pass the 5 MiB part size.
var bigPad = strings.Repeat("0123456789abcdef", 15*1024)

func (p *publisher) loop(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	nextBurst := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.burst:
			p.bigBurst(ctx)
			continue
		case <-tick.C:
		}
		n := 1 + p.rng.IntN(2*p.perTick)
		batch := make([]eventIn, 0, n)
		for range n {
			batch = append(batch, p.event(""))
		}
		p.publish(ctx, batch)
		if p.big && time.Now().After(nextBurst) {
			nextBurst = time.Now().Add(time.Minute)
			p.bigBurst(ctx)
		}
	}
}

// bigBurst publishes enough ~240 KiB events that every worker's file of
// this tenant passes the 5 MiB part size (a multipart upload), in requests
// under ingest's 8 MiB body limit.
func (p *publisher) bigBurst(ctx context.Context) {
	n := 26 * p.workers
	for n > 0 {
		batch := make([]eventIn, 0, 20)
		for ; n > 0 && len(batch) < 20; n-- {
			batch = append(batch, p.event(bigPad))
		}
		p.publish(ctx, batch)
	}
}

func (p *publisher) event(pad string) eventIn {
	p.seq++
	name := eventNames[p.rng.IntN(len(eventNames))]
	key := fmt.Sprintf("%s-%s-%d", p.run, p.tenant, p.seq)
	payload := map[string]any{"id": fmt.Sprintf("%s-%d", p.tenant, p.seq%500), "k": key, "n": p.seq}
	if pad != "" {
		payload["pad"] = pad
	}
	p.ledger.attempt(p.tenant, events.EventID(p.tenant, name, key).String())
	return eventIn{Name: name, IdempotencyKey: key, Payload: payload}
}

// publish sends batch until ingest answers 202, or ctx ends (then the batch
// counts as never acknowledged).
func (p *publisher) publish(ctx context.Context, batch []eventIn) {
	body, _ := json.Marshal(map[string]any{"events": batch})
	backoff := 100 * time.Millisecond
	for {
		ids, err := p.post(ctx, body)
		if err == nil && len(ids) == len(batch) {
			for i, ev := range batch {
				p.ledger.accept(ids[i], published{tenant: p.tenant, name: ev.Name, key: ev.IdempotencyKey})
			}
			return
		}
		p.retries.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (p *publisher) post(ctx context.Context, body []byte) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sys.ingestURL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.sys.tokens[p.tenant])
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.sys.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("ingest: %s: %s", resp.Status, b)
	}
	var out struct {
		Results []struct {
			EventID string `json:"event_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Results))
	for _, r := range out.Results {
		if r.EventID == "" {
			return nil, fmt.Errorf("ingest refused an event: %s", b)
		}
		ids = append(ids, r.EventID)
	}
	return ids, nil
}
