package eventstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// echoService answers every request with its name and the path it saw, and
// /readyz with ready's status.
func echoService(name string, ready int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if ready != http.StatusOK {
				writeError(w, r, ready, "unavailable", name+" is not ready")
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"service": name, "path": r.URL.Path})
	})
}

func TestRouter(t *testing.T) {
	h := newRouter([]Service{
		{Name: "configapi", Prefixes: []string{"/api/v1/org/integrations/eventstream"}, Handler: echoService("configapi", 200)},
		{Name: "ingest", Prefixes: []string{"/v1/events"}, Handler: echoService("ingest", 503)},
		{Name: "console", Prefixes: []string{"/console"}, Handler: echoService("console", 200)},
		{Name: "worker"}, // no HTTP
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"service": "metrics", "path": r.URL.Path})
	}))
	tests := []struct {
		path        string
		wantStatus  int
		wantService string
		wantPath    string // the path the service saw
		wantCode    string // error_code for errors
	}{
		{"/api/v1/org/integrations/eventstream", 200, "configapi", "/api/v1/org/integrations/eventstream", ""},
		{"/api/v1/org/integrations/eventstream/erp-1/_start", 200, "configapi", "/api/v1/org/integrations/eventstream/erp-1/_start", ""},
		{"/api/v1/org/integrations/eventstreamx", 404, "", "", "not_found"},
		{"/v1/events", 200, "ingest", "/v1/events", ""},
		{"/console/index.html", 200, "console", "/console/index.html", ""},
		{"/api/v1/org/integrations/published-events", 501, "", "", "not_implemented"},
		{"/openapi/configapi.json", 200, "configapi", "/openapi.json", ""},
		{"/openapi/ingest.json", 200, "ingest", "/openapi.json", ""},
		{"/openapi/worker.json", 404, "", "", "not_found"},
		{"/openapi/nope.json", 404, "", "", "not_found"},
		{"/healthz", 200, "", "", ""},
		{"/metrics", 200, "metrics", "/metrics", ""},
		{"/readyz", 503, "", "", ""},
		{"/elsewhere", 404, "", "", "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %q", rec.Body)
			}
			if tt.wantService != "" && (body["service"] != tt.wantService || body["path"] != tt.wantPath) {
				t.Errorf("served by %v at %v, want %s at %s", body["service"], body["path"], tt.wantService, tt.wantPath)
			}
			if tt.wantCode != "" {
				if body["error_code"] != tt.wantCode || body["request_id"] == "" || body["message"] == "" {
					t.Errorf("error body %v, want error_code %s with message and request_id", body, tt.wantCode)
				}
				if rec.Header().Get("X-Request-Id") != body["request_id"] {
					t.Errorf("X-Request-Id %q, body request_id %v", rec.Header().Get("X-Request-Id"), body["request_id"])
				}
			}
		})
	}

	t.Run("readyz names the service that is not ready", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body struct {
			Services map[string]string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body.Services["ingest"] != "ingest is not ready" || body.Services["configapi"] != "ready" {
			t.Errorf("services = %v", body.Services)
		}
	})
}

// /readyz includes the workers (no HTTP handler) through their Ready check:
// the stack is not ready while the delivery worker is not.
func TestReadyzAsksWorkers(t *testing.T) {
	var workerErr error
	h := newRouter([]Service{
		{Name: "configapi", Prefixes: []string{"/api/v1/org/integrations/eventstream"}, Handler: echoService("configapi", 200)},
		{Name: "delivery", Ready: func(context.Context) error { return workerErr }},
	}, http.NotFoundHandler())
	get := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body struct{ Services map[string]string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return rec.Code, body.Services
	}
	if code, services := get(); code != http.StatusOK || services["delivery"] != "ready" || services["configapi"] != "ready" {
		t.Errorf("ready worker: %d %v", code, services)
	}
	workerErr = errors.New("the supervisor is not running")
	if code, services := get(); code != http.StatusServiceUnavailable || services["delivery"] != "the supervisor is not running" {
		t.Errorf("worker not ready: %d %v", code, services)
	}
}

// The stack waits for every service to be ready before it reports itself
// running, and gives up (naming who is not ready) after the timeout.
func TestWaitReady(t *testing.T) {
	var polls atomic.Int32
	worker := Service{Name: "delivery", Ready: func(context.Context) error {
		if polls.Add(1) < 4 {
			return errors.New("the first poll of the integration states has not succeeded yet")
		}
		return nil
	}}
	api := Service{Name: "configapi", Handler: echoService("configapi", 200)}
	ok, states := waitReady(context.Background(), []Service{api, worker}, 10*time.Second)
	if !ok || states["delivery"] != "ready" || states["configapi"] != "ready" || polls.Load() != 4 {
		t.Fatalf("waitReady = %v %v after %d polls, want ready after the 4th", ok, states, polls.Load())
	}

	never := Service{Name: "delivery", Ready: func(context.Context) error { return errors.New("pinging kafka: refused") }}
	ok, states = waitReady(context.Background(), []Service{api, never}, 200*time.Millisecond)
	if ok || states["delivery"] != "pinging kafka: refused" || states["configapi"] != "ready" {
		t.Fatalf("waitReady on a worker never ready = %v %v", ok, states)
	}
}
