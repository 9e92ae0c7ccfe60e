package configapi

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// TestRetryWithWebhookSender runs _retry end to end with the delivery
// workers' sender (pkg/webhook): same body, headers and signature as a
// delivery, 200 and removed on a 2xx, 502 naming the endpoint's code and
// kept otherwise, and the SSRF guard applies.
func TestRetryWithWebhookSender(t *testing.T) {
	type hit struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var hits []hit
	status := http.StatusServiceUnavailable
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{r.Header.Clone(), b})
		code := status
		mu.Unlock()
		w.WriteHeader(code)
	}))
	defer receiver.Close()
	setStatus := func(code int) { mu.Lock(); status = code; mu.Unlock() }
	lastHit := func() hit { mu.Lock(); defer mu.Unlock(); return hits[len(hits)-1] }

	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e := newAPI(t, withRetrier(webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: loopback})}))
	tok := e.tenant("acme")
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("retry-signing-key-0123456789abcd"))
	m := validWebhook()
	cp := sub(m, "callback_parameters")
	cp["callback_url"] = receiver.URL + "/hook"
	cp["api_key"] = "retry-api-key-123"
	cp["signing_secret"] = secret
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	evs := storeRejected(t, e, "acme", "erp-1", 2)
	path := func(i int) string { return BasePath + "/erp-1/rejected_events/" + evs[i].EventID }

	cases := []struct {
		name     string
		endpoint int
		want     int
		msg      string
		kept     bool
	}{
		{"endpoint 503", http.StatusServiceUnavailable, http.StatusBadGateway, "HTTP status code 503", true},
		{"endpoint 400 again", http.StatusBadRequest, http.StatusBadGateway, "HTTP status code 400", true},
		{"endpoint 302", http.StatusFound, http.StatusBadGateway, "HTTP status code 302", true},
		{"endpoint 204", http.StatusNoContent, http.StatusOK, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setStatus(c.endpoint)
			r := e.call(http.MethodPost, path(0)+"/_retry", tok, nil)
			if c.msg != "" {
				want(t, r, c.want, c.msg)
			} else {
				want(t, r, c.want)
			}
			h := lastHit()
			if !bytes.Equal(h.body, evs[0].Body) {
				t.Fatalf("endpoint got %s, want the stored body %s", h.body, evs[0].Body)
			}
			if h.header.Get("Authorization") != "Bearer retry-api-key-123" ||
				h.header.Get("Idempotency-Key") != "order.items_cancelled:key-0" ||
				h.header.Get("webhook-id") != evs[0].EventID {
				t.Fatalf("headers %v", h.header)
			}
			if err := testenv.VerifyStandardWebhook(secret, h.header, h.body, time.Now()); err != nil {
				t.Fatalf("signature: %v", err)
			}
			wantGet := http.StatusOK
			if !c.kept {
				wantGet = http.StatusNotFound
			}
			want(t, e.call(http.MethodGet, path(0), tok, nil), wantGet)
		})
	}

	// Without an allow-list the sender refuses the loopback endpoint: 502,
	// nothing reaches it, the event is kept.
	guarded := newAPI(t, withRetrier(webhook.Retrier{Sender: webhook.NewSender(webhook.Config{})}))
	gtok := guarded.tenant("acme")
	want(t, guarded.call(http.MethodPost, BasePath, gtok, m), http.StatusOK)
	gev := storeRejected(t, guarded, "acme", "erp-1", 1)[0]
	mu.Lock()
	before := len(hits)
	mu.Unlock()
	want(t, guarded.call(http.MethodPost, BasePath+"/erp-1/rejected_events/"+gev.EventID+"/_retry", gtok, nil),
		http.StatusBadGateway, "address not allowed")
	want(t, guarded.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+gev.EventID, gtok, nil), http.StatusOK)
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != before {
		t.Fatal("the guarded sender reached a loopback endpoint")
	}
}
