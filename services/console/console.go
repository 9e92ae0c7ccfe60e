package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/events"
)

// Prefix is the base-URL path the console is served under. The router of the
// local stack matches a prefix and everything below it, so the service claims
// "/console" (which covers "/console/" and its files).
const Prefix = "/console"

//go:embed static
var static embed.FS

// securityHeaders are sent with every response. The policy allows scripts,
// styles and images only from the console itself and API calls only to the
// same origin; nothing inline, no frames, no forms posting anywhere (the
// console's forms are handled by its scripts).
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

// contentTypes are the types of the files the console ships; anything else is
// not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// asset is one file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console under Prefix: index.html for /console/, the
// embedded files below it, and events.json (the event names and entity types
// the forms offer, from the shared registry so they never drift from what the
// APIs accept). /healthz and /readyz answer ok, as every service of the stack
// does. Only GET and HEAD are allowed.
//
// Files are revalidated on every load (Cache-Control: no-cache with a strong
// ETag): their names carry no content hash, so a longer lifetime would keep a
// stale script after an upgrade, and a 304 costs next to nothing.
func Handler() http.Handler {
	assets, err := loadAssets()
	if err != nil {
		// The files are embedded at build time; failing here is a build defect.
		panic("console: loading embedded files: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			writeJSON(w, http.StatusOK, `{"status":"ok"}`)
			return
		case "/readyz":
			writeJSON(w, http.StatusOK, `{"status":"ready"}`)
			return
		}
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the console only answers GET and HEAD")
			return
		}
		if r.URL.Path == Prefix {
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix+"/")
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no such page: "+r.URL.Path)
			return
		}
		if name == "" {
			name = "index.html"
		}
		a, ok := assets[name]
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no such file in the console: "+r.URL.Path)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", a.etag)
		// ServeContent answers If-None-Match with 304 and supports HEAD and ranges.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// loadAssets reads every embedded file with a known type, plus events.json.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	add := func(name string, body []byte) {
		sum := sha256.Sum256(body)
		out[name] = asset{
			body:        body,
			contentType: contentTypes[path.Ext(name)],
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
		}
	}
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, known := contentTypes[path.Ext(p)]; !known {
			return nil
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		add(p, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	catalog, err := json.Marshal(map[string][]string{"event_names": events.Names(), "entity_types": events.EntityTypes()})
	if err != nil {
		return nil, err
	}
	add("events.json", catalog)
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}

// writeError answers in the error shape of every Event Stream API.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var id [12]byte
	_, _ = rand.Read(id[:])
	b, _ := json.Marshal(map[string]string{"error_code": code, "message": msg, "request_id": hex.EncodeToString(id[:])})
	w.Header().Set("X-Request-Id", hex.EncodeToString(id[:]))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
