package observability

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

const tenantKey = "observability.tenant"

// MIMENDJSON selects the export.
const MIMENDJSON = "application/x-ndjson"

// tenantScope takes the tenant from the token. A tenant nobody provisioned
// simply has no attempts, so there is no catalog lookup per request.
func tenantScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := auth.FromContext(c)
		if p == nil || p.Tenant == "" {
			return httpapi.NewError(http.StatusForbidden, "forbidden", "token is not bound to a tenant")
		}
		c.Set(tenantKey, p.Tenant)
		return next(c)
	}
}

func tenantOf(c echo.Context) string { return c.Get(tenantKey).(string) }

// query parses the request's raw query. url.ParseQuery (not echo's
// QueryParams) so a malformed escape is a 400 rather than silently dropped.
func query(c echo.Context, allowPaging bool) (Query, error) {
	v, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return Query{}, httpapi.NewError(http.StatusBadRequest, "invalid_parameter", "the query string is malformed: "+err.Error())
	}
	return ParseQuery(v, allowPaging)
}

func wantsNDJSON(c echo.Context) bool {
	for _, part := range strings.Split(c.Request().Header.Get(echo.HeaderAccept), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), MIMENDJSON) {
			return true
		}
	}
	return false
}

func (s *Server) list(c echo.Context) error {
	q, err := query(c, true)
	if err != nil {
		return err
	}
	if wantsNDJSON(c) {
		return s.export(c, q)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.QueryTimeout)
	defer cancel()
	page, more, err := s.store.List(ctx, tenantOf(c), q)
	if err != nil {
		return err
	}
	if more {
		last := page[len(page)-1]
		next := *c.Request().URL
		v := next.Query()
		v.Set("cursor", NextCursor(q.Filter, last.AttemptedAt, last.ID, last.Pos))
		next.RawQuery = v.Encode()
		// A relative reference: correct behind any proxy or mount point.
		c.Response().Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.RequestURI()))
	}
	out := make([]attemptJSON, len(page))
	for i := range page {
		out[i] = toJSON(&page[i])
	}
	return c.JSON(http.StatusOK, out)
}

// export streams every matching row as NDJSON, flushing every few rows so
// memory stays constant and the client sees progress.
func (s *Server) export(c echo.Context, q Query) error {
	if q.limitSet {
		return httpapi.NewError(http.StatusBadRequest, "invalid_parameter",
			"limit does not apply to the NDJSON export (it returns every matching row); leave it out")
	}
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, MIMENDJSON)
	w := bufio.NewWriterSize(res, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	started := false
	err := s.store.Export(c.Request().Context(), tenantOf(c), q, func(a *Attempt) error {
		if !started {
			res.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(toJSON(a)); err != nil {
			return fmt.Errorf("writing export: %w", err)
		}
		if n++; n%1000 == 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing export: %w", err)
			}
			res.Flush()
		}
		return nil
	})
	if err != nil && !started {
		return err // nothing sent yet: a proper error response
	}
	if !started {
		res.WriteHeader(http.StatusOK)
	}
	if err != nil {
		// Headers are gone: end the body early; the client sees the cut.
		s.log.Warn("export ended early", "request_id", httpapi.RequestID(c), "rows", n, "err", err)
		return nil
	}
	if err := w.Flush(); err != nil {
		return nil //nolint:nilerr // the client went away; nothing to answer
	}
	res.Flush()
	return nil
}

func (s *Server) summary(c echo.Context) error {
	q, err := query(c, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.QueryTimeout)
	defer cancel()
	sum, err := s.store.Summarize(ctx, tenantOf(c), q.Filter, time.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toSummaryJSON(sum))
}

// stream is the live tail: Server-Sent Events, one "attempt" event per new
// matching row, a comment line as heartbeat. The response starts once the
// subscription is ready, so every row committed after the client saw the
// headers is delivered.
func (s *Server) stream(c echo.Context) error {
	q, err := query(c, false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sub := s.tail.Subscribe(tenantOf(c), q.Filter)
	defer s.tail.Unsubscribe(sub)
	// A row can come before the ready signal (the poll that makes the
	// subscription ready may already fan out); it is kept, not lost.
	var first *Attempt
	select {
	case <-sub.Ready():
	case <-ctx.Done():
		return nil
	case a, ok := <-sub.C():
		if !ok {
			return httpapi.NewError(http.StatusServiceUnavailable, "unavailable", "the live tail is shutting down")
		}
		first = a
	}
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	res.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(res, "retry: 2000\n: ready\n\n"); err != nil {
		return nil //nolint:nilerr // the client went away
	}
	if first != nil {
		if writeEvent(res, first) != nil {
			return nil // the client went away
		}
	}
	res.Flush()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		var werr error
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			_, werr = fmt.Fprint(res, ": heartbeat\n\n")
		case a, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					_, _ = fmt.Fprint(res, tooSlowEvent)
					res.Flush()
				}
				return nil
			}
			werr = writeEvent(res, a)
		}
		if werr != nil {
			return nil //nolint:nilerr // the client went away
		}
		res.Flush()
	}
}

// tooSlowEvent is the last event a client that fell behind gets (a
// StreamEvent whose data is a StreamError in the OpenAPI document).
const tooSlowEvent = "event: error\ndata: {\"error_code\":\"too_slow\",\"message\":\"the client fell behind the live tail and was disconnected\"}\n\n"

// writeEvent writes one attempt as an SSE "attempt" event.
func writeEvent(w io.Writer, a *Attempt) error {
	b, err := json.Marshal(toJSON(a))
	if err != nil {
		return fmt.Errorf("encoding attempt: %w", err)
	}
	// The row's id, and for the second and later events of a file's row
	// their position: unique per event.
	id := strconv.FormatInt(a.ID, 10)
	if a.Pos > 1 {
		id += "." + strconv.FormatInt(a.Pos, 10)
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: attempt\ndata: %s\n\n", id, b)
	return err
}
