package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/webhook"
)

// Endpoint behaviours a webhook receiver can be switched to.
const (
	endpointOK      = "ok"
	endpoint5xx     = "5xx"
	endpoint429     = "429"
	endpointHostile = "hostile"
	endpointSlow    = "slow"
	endpointReset   = "reset"
)

// receiver is one webhook integration's endpoint. It records every event it
// answered 2xx to (the delivery the sender counts), checks the Standard
// Webhooks signature, and can be switched to misbehave.
type receiver struct {
	integ  *integration
	ledger *Ledger
	srv    *http.Server
	ln     net.Listener

	mu   sync.Mutex
	mode string
	rng  *rand.Rand // hostile variants, slow delays, Retry-After values
	n    int        // requests answered in the current mode
}

func startReceiver(ctx context.Context, integ *integration, l *Ledger, seed uint64) (*receiver, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{integ: integ, ledger: l, ln: ln, mode: endpointOK, rng: rand.New(rand.NewPCG(seed, 0x7265636569766572))}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) URL() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.srv.Close()
}

func (r *receiver) setMode(mode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode, r.n = mode, 0
}

// hostileBodies are response bodies Postgres cannot store as text as they
// are, or that are far larger than the stored cap.
var hostileBodies = []func() []byte{
	func() []byte { return []byte("ok\x00nul byte inside") },
	func() []byte { return []byte("invalid utf-8: \xff\xfe\xc3\x28 end") },
	// A 3-byte character straddling the 1 KiB response cap.
	func() []byte { return append(bytes.Repeat([]byte("a"), 1023), "€ and more"...) },
	func() []byte { return bytes.Repeat([]byte("huge body "), 400_000) }, // 4 MB
	func() []byte { return []byte("\x00\x00\x00") },
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	mode, n := r.mode, r.n
	r.n++
	var delay time.Duration
	var retryAfter, variant int
	switch mode {
	case endpointSlow:
		delay = time.Duration(2000+r.rng.IntN(6000)) * time.Millisecond
	case endpoint429:
		retryAfter = 1 + r.rng.IntN(3)
	case endpointHostile:
		variant = r.rng.IntN(len(hostileBodies))
	}
	r.mu.Unlock()

	switch mode {
	case endpoint5xx:
		codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		http.Error(w, "chaos: injected failure", codes[n%len(codes)])
		return
	case endpoint429:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		http.Error(w, "chaos: slow down", http.StatusTooManyRequests)
		return
	case endpointReset:
		resetConnection(w)
		return
	case endpointSlow:
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return // the sender gave up: not a delivery
		}
	case endpointHostile:
		// Every other answer is a 2xx (delivered, its body stored with the
		// SUCCESS attempt), the rest a 503 (retried, body stored with the
		// FAILURE attempt).
		w.Header().Set("Content-Type", "text/plain")
		if n%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(hostileBodies[variant]())
			return
		}
		r.record(req, body)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(hostileBodies[variant]())
		return
	}
	r.record(req, body)
	w.WriteHeader(http.StatusNoContent)
}

// record notes a delivery answered 2xx, after checking where it came from.
func (r *receiver) record(req *http.Request, body []byte) {
	id := req.Header.Get("webhook-id")
	ts, _ := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	sigOK := strings.Contains(req.Header.Get("webhook-signature"), webhook.Signature(r.integ.secret, id, ts, body))
	var b deliveredBody
	_ = json.Unmarshal(body, &b)
	r.ledger.observe(r.integ, observation{eventID: id, tenant: b.Tenant, name: b.Name, key: b.Payload.Key, badSignature: !sigOK})
}

// deliveredBody is the webhook body (and one S3 line): the event as sent.
type deliveredBody struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Payload struct {
		Key string `json:"k"`
	} `json:"payload"`
}

// resetConnection closes the connection with a TCP RST (linger 0) before
// any response is written.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
