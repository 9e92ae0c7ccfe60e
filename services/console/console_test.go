package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/services/console"
)

// answer is what the handler answered one request.
type answer struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func serve(t *testing.T, method, path string, hdr map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	console.Handler().ServeHTTP(rec, req)
	return answer{StatusCode: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func TestHandlerServesTheFiles(t *testing.T) {
	cases := []struct {
		path, contentType, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script type="module" src="js/app.js">`},
		{"/console/index.html", "text/html; charset=utf-8", "<main"},
		{"/console/app.css", "text/css; charset=utf-8", ".badge"},
		{"/console/js/app.js", "text/javascript; charset=utf-8", "takeFragmentToken"},
		{"/console/js/views/events.js", "text/javascript; charset=utf-8", "export async function eventsPage"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
		{"/console/events.json", "application/json", `"order.created"`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp := serve(t, "GET", c.path, nil)
			body := resp.Body
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != c.contentType {
				t.Errorf("Content-Type = %q, want %q", got, c.contentType)
			}
			if !strings.Contains(string(body), c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q", got)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP allows inline code: %q", csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("security headers missing: %v", resp.Header)
			}
		})
	}
}

// The strict CSP only works if no page has inline script or style.
func TestNoInlineScriptOrStyle(t *testing.T) {
	body := serve(t, "GET", "/console/", nil).Body
	if m := regexp.MustCompile(`<script(?:[^>]*)>[^<]+</script>|\sstyle=|\son[a-z]+=`).Find(body); m != nil {
		t.Errorf("index.html has inline code: %s", m)
	}
}

func TestEventsCatalog(t *testing.T) {
	var c struct {
		EventNames  []string `json:"event_names"`
		EntityTypes []string `json:"entity_types"`
	}
	if err := json.Unmarshal(serve(t, "GET", "/console/events.json", nil).Body, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.EventNames) != 42 || len(c.EntityTypes) != 12 {
		t.Errorf("catalog has %d names and %d entity types, want 42 and 12", len(c.EventNames), len(c.EntityTypes))
	}
}

func TestConditionalGet(t *testing.T) {
	first := serve(t, "GET", "/console/js/app.js", nil)
	etag := first.Header.Get("ETag")
	again := serve(t, "GET", "/console/js/app.js", map[string]string{"If-None-Match": etag})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag = %d, want 304", again.StatusCode)
	}
}

func TestHandlerRefuses(t *testing.T) {
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/console/nope.js", 404},
		{"GET", "/console/../go.mod", 404},
		{"GET", "/console/doc.go", 404},
		{"GET", "/elsewhere", 404},
		{"POST", "/console/", 405},
		{"DELETE", "/console/app.css", 405},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := serve(t, c.method, c.path, nil)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			var body map[string]string
			if err := json.Unmarshal(resp.Body, &body); err != nil || body["error_code"] == "" || body["message"] == "" || body["request_id"] == "" {
				t.Errorf("error body %v (%v)", body, err)
			}
		})
	}
}

func TestRedirectAndHealth(t *testing.T) {
	resp := serve(t, "GET", "/console", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("/console = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp := serve(t, "GET", p, nil); resp.StatusCode != 200 {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
	}
}
