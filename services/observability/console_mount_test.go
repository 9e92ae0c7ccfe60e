package observability

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The service on its own serves the console too: the ingress (Helm, docker
// compose) routes /console to it.
func TestServesTheConsole(t *testing.T) {
	e := newAPI(t)
	for _, path := range []string{"/console/", "/console/js/app.js"} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s = %d (%d bytes)", path, resp.StatusCode, len(body))
		}
		if path == "/console/" && !strings.Contains(string(body), "<html") {
			t.Fatalf("GET /console/ is not the console page: %.200s", body)
		}
	}
}
