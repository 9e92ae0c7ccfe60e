package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

type payload struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func newServer(t *testing.T) *httptest.Server {
	e := httpapi.New(httpapi.Options{BodyLimit: 64, Name: "test"})
	e.POST("/things", func(c echo.Context) error {
		var p payload
		if err := httpapi.BindStrict(c, &p); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	})
	e.GET("/boom", func(echo.Context) error { panic("boom") })
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorsHaveTheContractBody(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, msgContains        string
	}{
		{"unknown field", "POST", "/things", `{"name":"a","colour":"red"}`, 400, "bad_request", `"colour"`},
		{"wrong type names field", "POST", "/things", `{"count":"x"}`, 400, "bad_request", `"count"`},
		{"bad json", "POST", "/things", `{"name":`, 400, "bad_request", "invalid JSON"},
		{"empty", "POST", "/things", ``, 400, "bad_request", "empty"},
		{"trailing data", "POST", "/things", `{"name":"a"} {}`, 400, "bad_request", "after the top-level value"},
		{"too large", "POST", "/things", `{"name":"` + strings.Repeat("a", 100) + `"}`, 413, "payload_too_large", "64 bytes"},
		{"no route", "GET", "/nope", ``, 404, "not_found", "/nope"},
		{"panic", "GET", "/boom", ``, 500, "internal_error", "internal server error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			req.Header.Set(httpapi.HeaderRequestID, "req-"+strings.ReplaceAll(c.name, " ", "-"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, c.status, raw)
			}
			var body httpapi.ErrorBody
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("error body not JSON: %s", raw)
			}
			if body.ErrorCode != c.code || !strings.Contains(body.Message, c.msgContains) {
				t.Fatalf("body = %+v, want code %q and message containing %q", body, c.code, c.msgContains)
			}
			if want := req.Header.Get(httpapi.HeaderRequestID); body.RequestID != want || resp.Header.Get(httpapi.HeaderRequestID) != want {
				t.Fatalf("request id = %q / header %q, want %q", body.RequestID, resp.Header.Get(httpapi.HeaderRequestID), want)
			}
		})
	}
}

func TestRequestIDGeneratedWhenAbsent(t *testing.T) {
	srv := newServer(t)
	resp, err := http.Post(srv.URL+"/things", "application/json", strings.NewReader(`{"name":"ok"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Get(httpapi.HeaderRequestID)) < 16 {
		t.Fatalf("status %d, request id %q", resp.StatusCode, resp.Header.Get(httpapi.HeaderRequestID))
	}
}

func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":1,"tags":["x"]}`))
	f.Add([]byte(`{"name":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p payload
		err := httpapi.DecodeStrict(b, &p)
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var ae *httpapi.Error
		if err != nil && (!asAPIError(err, &ae) || ae.Status != 400 || ae.Message == "") {
			t.Fatalf("error %v is not a 400 API error", err)
		}
	})
}

func asAPIError(err error, target **httpapi.Error) bool {
	return errors.As(err, target)
}
