package eventstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

// Service is one part of the system embedded in the local stack.
type Service struct {
	// Name is the service's short name; its OpenAPI document is served at
	// /openapi/<Name>.json on the base URL.
	Name string
	// Prefixes are the public path prefixes the production ingress routes to
	// this service (a prefix matches itself and everything below it).
	Prefixes []string
	// Handler serves the prefixes plus /openapi.json, /healthz and /readyz;
	// nil for a worker without public HTTP.
	Handler http.Handler
	// Pages marks a service of static pages (the console): it has no
	// OpenAPI document.
	Pages bool
	// Run, when set, runs until ctx ends and then drains within a bounded time.
	Run func(ctx context.Context) error
	// Ready, when set, is the readiness check of a service without a
	// Handler (the delivery worker: supervisor, Postgres, Kafka).
	Ready func(ctx context.Context) error
	// Close, when set, releases what the service holds (clients) once every
	// service has stopped.
	Close func()
}

// route is a public path prefix of the ingress, with the service that owns it
// (possibly one this build does not embed yet).
type route struct {
	prefix  string
	service string
}

// ingressRoutes are the public paths of the system, the way the production
// ingress routes them. Routes to a service the stack does not (yet) run answer
// 501, so the base URL's shape never changes as services are added.
var ingressRoutes = []route{
	{"/api/v1/org/integrations/eventstream", "configapi"},
	{"/api/v1/org/integrations/published-events", "observability"},
	{"/v1/events", "ingest"},
}

// newRouter returns the base URL's handler: ingress routes, each service's
// OpenAPI document, /healthz (the stack is up), /readyz (every embedded
// service is ready) and /metrics (when metrics is not nil; the process's
// Prometheus metrics, every service's included).
func newRouter(services []Service, metrics http.Handler) http.Handler {
	byName := map[string]Service{}
	for _, s := range services {
		byName[s.Name] = s
	}
	type target struct {
		prefix string
		name   string
		h      http.Handler
	}
	var targets []target
	known := map[string]bool{}
	for _, r := range ingressRoutes {
		known[r.prefix] = true
		targets = append(targets, target{r.prefix, r.service, byName[r.service].Handler})
	}
	// Services may claim prefixes beyond the fixed table (a console, say).
	for _, s := range services {
		for _, p := range s.Prefixes {
			if !known[p] {
				targets = append(targets, target{p, s.Name, s.Handler})
			}
		}
	}
	// Longest prefix first, so a nested prefix wins over its parent.
	sort.SliceStable(targets, func(i, j int) bool { return len(targets[i].prefix) > len(targets[j].prefix) })

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		for _, t := range targets {
			if p == t.prefix || strings.HasPrefix(p, t.prefix+"/") {
				if t.h == nil {
					writeError(w, r, http.StatusNotImplemented, "not_implemented",
						"the "+t.name+" service is not part of this build yet")
					return
				}
				t.h.ServeHTTP(w, r)
				return
			}
		}
		switch {
		case p == "/healthz":
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		case p == "/readyz":
			ready(w, r, services)
		case p == "/metrics" && metrics != nil:
			metrics.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/openapi/") && strings.HasSuffix(p, ".json"):
			name := strings.TrimSuffix(strings.TrimPrefix(p, "/openapi/"), ".json")
			s, ok := byName[name]
			if !ok || s.Handler == nil {
				writeError(w, r, http.StatusNotFound, "not_found", "no OpenAPI document for "+name)
				return
			}
			serveAt(s.Handler, "/openapi.json", w, r)
		case p == "/":
			index(w, services)
		default:
			writeError(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+p)
		}
	})
}

// serveAt serves r from h as if it had been sent to path (the service's own
// /openapi.json or /readyz behind a base-URL path).
func serveAt(h http.Handler, path string, w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath, r2.RequestURI = path, "", path
	h.ServeHTTP(w, r2)
}

// readyTimeout bounds a worker's readiness check (its Postgres and Kafka pings).
const readyTimeout = 2 * time.Second

// ready asks every embedded HTTP service's /readyz, and every worker's Ready,
// and reports them together.
func ready(w http.ResponseWriter, r *http.Request, services []Service) {
	ok, out := readiness(r, services)
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"status": map[bool]string{true: "ready", false: "not ready"}[ok], "services": out})
}

// readiness asks every service as ready does: whether all are ready, and
// each one's state ("ready" or why not).
func readiness(r *http.Request, services []Service) (bool, map[string]string) {
	status := http.StatusOK
	out := map[string]string{}
	for _, s := range services {
		if s.Handler == nil {
			if s.Ready == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			err := s.Ready(ctx)
			cancel()
			if err != nil {
				status = http.StatusServiceUnavailable
				out[s.Name] = err.Error()
			} else {
				out[s.Name] = "ready"
			}
			continue
		}
		rec := httptest.NewRecorder()
		serveAt(s.Handler, "/readyz", rec, r)
		if rec.Code == http.StatusOK {
			out[s.Name] = "ready"
			continue
		}
		status = http.StatusServiceUnavailable
		var body httpapi.ErrorBody
		if json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.Message != "" {
			out[s.Name] = body.Message
		} else {
			out[s.Name] = http.StatusText(rec.Code)
		}
	}
	return status == http.StatusOK, out
}

// waitReady polls readiness until every service is ready, ctx ends or
// timeout passes; it returns the last states and whether all were ready.
func waitReady(ctx context.Context, services []Service, timeout time.Duration) (bool, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil)
		ok, out := readiness(r, services)
		if ok {
			return true, out
		}
		select {
		case <-ctx.Done():
			return false, out
		case <-t.C:
		}
	}
}

// index lists what the base URL serves, for a person opening it in a browser.
func index(w http.ResponseWriter, services []Service) {
	routes := map[string]string{}
	for _, r := range ingressRoutes {
		routes[r.prefix] = r.service
	}
	var docs []string
	for _, s := range services {
		for _, p := range s.Prefixes {
			routes[p] = s.Name
		}
		if s.Handler != nil && !s.Pages {
			docs = append(docs, "/openapi/"+s.Name+".json")
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":    "Event Stream local stack",
		"routes":  routes,
		"openapi": docs,
		"health":  []string{"/healthz", "/readyz", "/metrics"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the error shape every Event Stream API uses.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	id := r.Header.Get(httpapi.HeaderRequestID)
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "\r\n") {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(httpapi.HeaderRequestID, id)
	writeJSON(w, status, httpapi.ErrorBody{ErrorCode: code, Message: msg, RequestID: id})
}
