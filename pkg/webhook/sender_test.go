package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// verifyStandardWebhook is an independent implementation of the Standard
// Webhooks verification (https://www.standardwebhooks.com/): it checks the
// three headers and accepts when any space-separated "v1,<sig>" matches the
// HMAC-SHA256 of "id.timestamp.body" under the base64 key after "whsec_".
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %d outside tolerance", sec)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestSendHeadersBodyAndSignature(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a very secret signing key"))
	type got struct {
		h    http.Header
		body []byte
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, strings.Repeat("x", 5000))
	}))
	defer srv.Close()

	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback, MaxResponseBody: 100})
	body := []byte(`{"tenant":"acme","name":"order.created","published_at":"2024-01-01T00:00:00.000Z","payload":{"id":"o-1"}}`)
	req := webhook.Request{URL: srv.URL + "/hook", APIKey: "key-123", SigningSecret: secret,
		EventID: "6f1c1f38-4a6f-5f0e-9d55-7a1b7e0f0c11", EventName: "order.created", IdempotencyKey: "idem-1", Body: body}
	res := s.Send(context.Background(), &req)
	if res.Err != nil || res.Code != http.StatusAccepted || res.Outcome() != webhook.Delivered {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Body) != 100 {
		t.Fatalf("response body kept %d bytes, want the 100-byte cap", len(res.Body))
	}
	g := <-ch
	if string(g.body) != string(body) {
		t.Fatalf("body = %s", g.body)
	}
	for k, want := range map[string]string{
		"Authorization":   "Bearer key-123",
		"Idempotency-Key": "order.created:idem-1",
		"Content-Type":    "application/json",
		"Webhook-Id":      req.EventID,
	} {
		if v := g.h.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if err := verifyStandardWebhook(secret, g.h, g.body, time.Now()); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	// A tampered body must not verify (the check above is not vacuous).
	if err := verifyStandardWebhook(secret, g.h, append(g.body, ' '), time.Now()); err == nil {
		t.Fatal("tampered body verified")
	}

	// Without api key and secret, neither header is sent.
	req.APIKey, req.SigningSecret = "", ""
	s.Send(context.Background(), &req)
	g = <-ch
	if g.h.Get("Authorization") != "" || g.h.Get("webhook-signature") != "" {
		t.Fatalf("unexpected auth/signature headers: %v", g.h)
	}
}

func TestSigningKeyRawSecret(t *testing.T) {
	// A secret without the whsec_ prefix is used as raw bytes.
	m := hmac.New(sha256.New, []byte("plain passphrase"))
	m.Write([]byte("id.17.{}"))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := webhook.Signature("plain passphrase", "id", 17, []byte("{}")); got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		code       int
		retryAfter string
		want       webhook.Outcome
		wantRA     time.Duration
		reason     string
	}{
		{200, "", webhook.Delivered, 0, ""},
		{204, "", webhook.Delivered, 0, ""},
		{400, "", webhook.Rejected, 0, ""},
		{301, "", webhook.Failed, 0, "Moved Permanently (HTTP status code 301)"},
		{404, "", webhook.Failed, 0, "Not Found (HTTP status code 404)"},
		{429, "7", webhook.Failed, 7 * time.Second, "Too Many Requests (HTTP status code 429)"},
		{503, "", webhook.Failed, 0, "Service Unavailable (HTTP status code 503)"},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.code == 301 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.code)
			}))
			defer srv.Close()
			s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
			res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")})
			if res.Code != c.code || res.Outcome() != c.want || res.RetryAfter != c.wantRA {
				t.Fatalf("result = %+v, outcome %v; want code %d outcome %v retry-after %v", res, res.Outcome(), c.code, c.want, c.wantRA)
			}
			if c.reason != "" {
				want := "Request to URL " + srv.URL + " failed. Reason: " + c.reason
				if r := res.Reason(srv.URL); r != want {
					t.Fatalf("reason = %q, want %q", r, want)
				}
			}
		})
	}
}

func TestTimeoutAndConnectionError(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // never answers in time
	}))
	defer srv.Close()
	defer close(release)
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback, Timeout: 100 * time.Millisecond})
	res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")})
	if res.Err == nil || !res.Timeout || res.Outcome() != webhook.Failed {
		t.Fatalf("timeout result = %+v", res)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res = s.Send(context.Background(), &webhook.Request{URL: "http://" + addr + "/x", Body: []byte("{}")})
	if res.Err == nil || res.Timeout || res.Code != 0 {
		t.Fatalf("refused result = %+v", res)
	}
	r := res.Reason("http://" + addr + "/x")
	if !strings.HasPrefix(r, "Request to URL http://"+addr+"/x failed. Reason: ") || strings.Contains(r, "HTTP status code") ||
		!strings.Contains(r, "refused") {
		t.Fatalf("reason = %q", r)
	}
}

func TestSSRFGuardRefusesLoopbackWithoutAllowList(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{})
	res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")})
	if !errors.Is(res.Err, webhook.ErrBlockedAddress) || res.Outcome() != webhook.Failed {
		t.Fatalf("result = %+v, want ErrBlockedAddress", res)
	}
	// "localhost" resolves to loopback too: the check is on the resolved address.
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	res = s.Send(context.Background(), &webhook.Request{URL: "http://localhost:" + port, Body: []byte("{}")})
	if !errors.Is(res.Err, webhook.ErrBlockedAddress) {
		t.Fatalf("localhost result = %+v, want ErrBlockedAddress", res)
	}
	if hits.Load() != 0 {
		t.Fatalf("endpoint was reached %d times", hits.Load())
	}
}

func TestGuardCheck(t *testing.T) {
	g := webhook.NewGuard(nil)
	cases := map[string]bool{ // address -> allowed
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700:4700::1111": true,
		"127.0.0.1": false, "127.1.2.3": false, "::1": false,
		"10.0.0.1": false, "172.16.5.4": false, "192.168.1.1": false,
		"169.254.169.254": false, "169.254.1.1": false, "fd00:ec2::254": false, "fe80::1": false,
		"100.64.0.1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false, "ff02::1": false,
		"::ffff:127.0.0.1": false, "::ffff:10.1.1.1": false, "64:ff9b::7f00:1": false, "64:ff9b::808:808": true,
		"fc00::1": false, "255.255.255.255": false,
	}
	for a, want := range cases {
		err := g.Check(netip.MustParseAddr(a))
		if (err == nil) != want {
			t.Errorf("Check(%s) = %v, want allowed=%v", a, err, want)
		}
		if err != nil && !errors.Is(err, webhook.ErrBlockedAddress) {
			t.Errorf("Check(%s) error %v does not wrap ErrBlockedAddress", a, err)
		}
	}
	allow, err := webhook.ParseCIDRs([]string{"10.1.0.0/16", "192.168.7.7"})
	if err != nil {
		t.Fatal(err)
	}
	g = webhook.NewGuard(allow)
	for a, want := range map[string]bool{"10.1.2.3": true, "10.2.0.1": false, "192.168.7.7": true, "192.168.7.8": false} {
		if err := g.Check(netip.MustParseAddr(a)); (err == nil) != want {
			t.Errorf("with allow-list Check(%s) = %v, want allowed=%v", a, err, want)
		}
	}
	if _, err := webhook.ParseCIDRs([]string{"not-a-cidr"}); err == nil {
		t.Error("ParseCIDRs accepted garbage")
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("y", 10000)) // longer than the kept body: drained for reuse
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
	for i := 0; i < 50; i++ {
		if res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")}); res.Code != 200 {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential sends opened %d connections, want 1", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true},
	}
	for _, c := range cases {
		got, ok := webhook.ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "99999999999999999999", "Wed, 01 May 2024 12:00:30 GMT", "-5"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := webhook.ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestRetrier(t *testing.T) {
	var gotBody string
	var gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotKey = string(b), r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	r := webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: loopback})}
	in := &catalog.Integration{Webhook: &catalog.Webhook{CallbackURL: srv.URL}}
	ev := &catalog.RejectedEvent{EventID: "e", EventName: "order.created", IdempotencyKey: "k", Body: []byte(`{"a":1}`)}
	code, err := r.Retry(context.Background(), in, ev)
	if err != nil || code != http.StatusTeapot || gotBody != `{"a":1}` || gotKey != "order.created:k" {
		t.Fatalf("Retry = %d, %v; body %q key %q", code, err, gotBody, gotKey)
	}
	if _, err := r.Retry(context.Background(), &catalog.Integration{S3: &catalog.S3Target{}}, ev); err == nil {
		t.Fatal("Retry on an S3 integration succeeded")
	}
}
