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
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/pkg/webhook"
)

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
		"Accept-Encoding": "", // nothing is asked to be compressed: 1 KiB of the answer is kept
		"Authorization":   "Bearer key-123",
		"Idempotency-Key": "order.created:idem-1",
		"Content-Type":    "application/json",
		"Webhook-Id":      req.EventID,
	} {
		if v := g.h.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if err := testenv.VerifyStandardWebhook(secret, g.h, g.body, time.Now()); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	// A tampered body must not verify (the check above is not vacuous).
	if err := testenv.VerifyStandardWebhook(secret, g.h, append(g.body, ' '), time.Now()); err == nil {
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
		// IPv4-compatible, 6to4, Teredo and site-local ranges reach IPv4 or
		// internal networks through tunnels or legacy routing.
		"::8.8.8.8": false, "::a00:1": false, "2002:7f00:1::1": false, "2002:808:808::1": false,
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": false, "fec0::1": false, "feff::1": false,
		"::ffff:8.8.8.8": true, "64:ff9b::a00:1": false, "64:ff9b::c0a8:101": false,
		"2001:4860:4860::8888": true, "2001:db8::1": false,
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

// TestBlockedErrorNamesNoAddress: the reason stored for a refused callback
// names the host the tenant gave, never the address it resolved to.
func TestBlockedErrorNamesNoAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	s := webhook.NewSender(webhook.Config{})
	res := s.Send(context.Background(), &webhook.Request{URL: "http://localhost:" + port + "/hook", Body: []byte("{}")})
	if !errors.Is(res.Err, webhook.ErrBlockedAddress) {
		t.Fatalf("result = %+v, want ErrBlockedAddress", res)
	}
	reason := res.Reason("http://localhost:" + port + "/hook")
	for _, ip := range []string{"127.0.0.1", "::1", "[::1]"} {
		if strings.Contains(reason, ip) || strings.Contains(res.Err.Error(), ip) {
			t.Fatalf("reason names the resolved address %s: %q / %q", ip, reason, res.Err)
		}
	}
	if !strings.Contains(reason, "address not allowed") || !strings.Contains(reason, "localhost") {
		t.Fatalf("reason = %q, want the host name and \"address not allowed\"", reason)
	}
	for _, a := range []string{"10.1.2.3", "::ffff:192.168.1.1", "2002:a00:1::1"} {
		if err := webhook.NewGuard(nil).Check(netip.MustParseAddr(a)); err == nil || strings.Contains(err.Error(), a) {
			t.Errorf("Check(%s) = %v: want a refusal naming no address", a, err)
		}
	}
}

// TestOwnHostsRefused: a callback to the service's own public hosts is
// refused before anything is sent (by name) or at connect time (an IP entry
// reached through another name), with an error that is an SSRF refusal.
func TestOwnHostsRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	own, err := webhook.ParseOwnHosts([]string{srv.URL, "Events.Example.COM."})
	if err != nil {
		t.Fatal(err)
	}
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback, OwnHosts: own})
	for _, u := range []string{
		srv.URL + "/v1/events",            // the entry itself
		"http://localhost:" + port + "/x", // another name for the same address and port
		"https://events.example.com/v1/events",
		"http://EVENTS.example.com.:8443/v1/events",
	} {
		res := s.Send(context.Background(), &webhook.Request{URL: u, Body: []byte("{}")})
		if !errors.Is(res.Err, webhook.ErrOwnHost) || !res.Blocked() || res.Outcome() != webhook.Failed {
			t.Errorf("%s: result %+v, want an ErrOwnHost (ErrBlockedAddress) failure", u, res)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("own host reached %d times", hits.Load())
	}
	// Another port of the same loopback address is not an own host.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer other.Close()
	if res := s.Send(context.Background(), &webhook.Request{URL: other.URL, Body: []byte("{}")}); res.Err != nil || res.Code != 204 || res.Blocked() {
		t.Fatalf("other port: %+v, want 204", res)
	}
}

func TestParseOwnHosts(t *testing.T) {
	own, err := webhook.ParseOwnHosts([]string{"https://api.example.com", "ingest.example.com:8443", "[::1]:8080", "10.0.0.5", " "})
	if err != nil {
		t.Fatal(err)
	}
	if own.Len() != 4 {
		t.Fatalf("Len = %d, want 4", own.Len())
	}
	for u, want := range map[string]bool{
		"https://api.example.com/v1/events":    true,
		"http://api.example.com:9999/":         true, // no port in the entry: every port
		"https://ingest.example.com:8443/x":    true,
		"https://ingest.example.com/x":         false, // 443, not 8443
		"http://[::1]:8080/":                   true,
		"http://[0:0::1]:8080/":                true,
		"http://[::1]:8081/":                   false,
		"http://10.0.0.5/":                     true,
		"http://api.example.com.evil.example/": false,
		"https://example.com/api.example.com":  false,
		"http://[::ffff:10.0.0.5]:80/":         true,
	} {
		if got := own.MatchString(u); got != want {
			t.Errorf("MatchString(%s) = %v, want %v", u, got, want)
		}
	}
	for _, bad := range []string{"http://", "host:0", "host:99999", "https://h:x/"} {
		if _, err := webhook.ParseOwnHosts([]string{bad}); err == nil {
			t.Errorf("ParseOwnHosts(%q) accepted", bad)
		}
	}
}

func FuzzOwnHosts(f *testing.F) {
	f.Add("https://api.example.com", "https://API.example.com./x")
	f.Add("127.0.0.1:8080", "http://127.0.0.1:8080/v1/events")
	f.Add("[::1]:80", "http://[::1]/")
	f.Fuzz(func(t *testing.T, entry, u string) {
		own, err := webhook.ParseOwnHosts([]string{entry})
		if err != nil {
			return
		}
		_ = own.MatchString(u) // must not panic
		// An entry parsed from a URL matches that URL itself.
		if strings.HasPrefix(entry, "http://") || strings.HasPrefix(entry, "https://") {
			if !own.MatchString(entry) {
				t.Fatalf("entry %q does not match itself", entry)
			}
		}
	})
}

// TestRequestsMarked: every request carries the delivery mark (the event id),
// which the ingest API refuses.
func TestRequestsMarked(t *testing.T) {
	ch := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Get(webhook.HeaderDelivery)
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
	s.Send(context.Background(), &webhook.Request{URL: srv.URL, EventID: "0190c0de-0000-7000-8000-000000000001", Body: []byte("{}")})
	if got := <-ch; got != "0190c0de-0000-7000-8000-000000000001" {
		t.Fatalf("%s = %q, want the event id", webhook.HeaderDelivery, got)
	}
}

// TestResponseHeadersCapped: an endpoint answering a huge header block fails
// the attempt instead of costing the worker that memory.
func TestResponseHeadersCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("h", 1000))
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
	res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")})
	if res.Err == nil || res.Outcome() != webhook.Failed {
		t.Fatalf("40 KB of response headers: %+v, want a failed attempt", res)
	}
	small := webhook.NewSender(webhook.Config{AllowCIDRs: loopback, MaxResponseHeaderBytes: 64 << 10})
	if res := small.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")}); res.Err != nil || res.Code != 200 {
		t.Fatalf("with a 64 KiB cap: %+v, want 200", res)
	}
}

// TestBodyCapKeepsCharactersWhole: the kept start of a response body never
// ends in half a multi-byte character.
func TestBodyCapKeepsCharactersWhole(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       int // kept bytes
	}{
		{"2-byte cut", strings.Repeat("a", 1023) + "é" + "tail", 1023},
		{"3-byte cut after 1", strings.Repeat("a", 1023) + "€", 1023},
		{"3-byte cut after 2", strings.Repeat("a", 1022) + "€", 1022},
		{"4-byte cut after 3", strings.Repeat("a", 1021) + "😀", 1021},
		{"4-byte whole", strings.Repeat("a", 1020) + "😀" + "b", 1024},
		{"ascii", strings.Repeat("a", 2000), 1024},
		{"short", "café", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
			res := s.Send(context.Background(), &webhook.Request{URL: srv.URL, Body: []byte("{}")})
			if len(res.Body) != c.want || !utf8.ValidString(res.Body) {
				t.Fatalf("kept %d bytes (valid UTF-8: %v), want %d", len(res.Body), utf8.ValidString(res.Body), c.want)
			}
		})
	}
}

// A request built from a prepared Target is the request built from the
// webhook each time: same headers, body and a verifying signature.
func TestTargetRequestMatchesPlainRequest(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another signing key"))
	type got struct {
		h    http.Header
		body []byte
		host string
	}
	ch := make(chan got, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b, r.Host}
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
	hook := &catalog.Webhook{CallbackURL: srv.URL + "/hook?x=1", APIKey: "key-9", SigningSecret: secret}
	ev := &eventspb.Event{EventId: "6f1c1f38-4a6f-5f0e-9d55-7a1b7e0f0c12", Name: "order.created", IdempotencyKey: "idem-9"}
	body := []byte(`{"name":"order.created"}`)

	plain := webhook.NewRequest(hook, ev, body)
	prepared := webhook.NewTarget(hook).NewRequest(ev, body)
	for _, req := range []*webhook.Request{&plain, &prepared} {
		if res := s.Send(context.Background(), req); res.Code != http.StatusOK {
			t.Fatalf("send: %+v", res)
		}
	}
	a, b := <-ch, <-ch
	if string(a.body) != string(b.body) || a.host != b.host {
		t.Fatalf("bodies or hosts differ: %q %q, %q %q", a.body, b.body, a.host, b.host)
	}
	for _, g := range []got{a, b} {
		if err := testenv.VerifyStandardWebhook(secret, g.h, g.body, time.Now()); err != nil {
			t.Fatalf("signature does not verify: %v", err)
		}
	}
	for _, h := range []http.Header{a.h, b.h} {
		h.Del("Webhook-Signature") // differs only if the second changed in between
		h.Del("Webhook-Timestamp")
	}
	if fmt.Sprint(a.h) != fmt.Sprint(b.h) {
		t.Fatalf("headers differ:\nplain    %v\nprepared %v", a.h, b.h)
	}

	// A URL that does not parse fails every request the same way.
	bad := &catalog.Webhook{CallbackURL: "http://[::1"}
	r1, r2 := webhook.NewRequest(bad, ev, body), webhook.NewTarget(bad).NewRequest(ev, body)
	e1, e2 := s.Send(context.Background(), &r1).Err, s.Send(context.Background(), &r2).Err
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
		t.Fatalf("unparsable URL: %v / %v", e1, e2)
	}
}

// What an http.Client adds on its own is kept: a URL's userinfo is sent as
// basic auth, and an HTTPS request answered in plain HTTP says so.
func TestUserinfoAndSchemeMismatch(t *testing.T) {
	auth := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Config{AllowCIDRs: loopback})
	u := strings.Replace(srv.URL, "http://", "http://user:pa%20ss@", 1)
	if res := s.Send(context.Background(), &webhook.Request{URL: u, Body: []byte("{}")}); res.Code != http.StatusOK {
		t.Fatalf("send: %+v", res)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa ss"))
	if got := <-auth; got != want {
		t.Fatalf("Authorization = %q, want %q", got, want)
	}

	https := strings.Replace(srv.URL, "http://", "https://", 1)
	res := s.Send(context.Background(), &webhook.Request{URL: https, Body: []byte("{}")})
	if !errors.Is(res.Err, http.ErrSchemeMismatch) || !strings.Contains(res.Reason(https), "server gave HTTP response to HTTPS client") {
		t.Fatalf("https to a plain server: %v (%s)", res.Err, res.Reason(https))
	}
}
