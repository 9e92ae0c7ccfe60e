package configapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

const tenantKey = "configapi.tenant"

// Log reasons written by the API (the contract's wording).
const (
	reasonStarted = "Started via API."
	reasonStopped = "Stopped via API."
)

// tenantScope resolves the caller's tenant from the token and refuses tenants
// the catalog does not know (they are provisioned by operators, never implicitly).
func (s *Server) tenantScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := auth.FromContext(c)
		if p == nil || p.Tenant == "" {
			return httpapi.NewError(http.StatusForbidden, "forbidden", "token is not bound to a tenant")
		}
		ok, err := s.store.TenantExists(c.Request().Context(), p.Tenant)
		if err != nil {
			return err
		}
		if !ok {
			return httpapi.NewError(http.StatusNotFound, "tenant_not_found",
				fmt.Sprintf("tenant %q is not provisioned", p.Tenant))
		}
		c.Set(tenantKey, p.Tenant)
		return next(c)
	}
}

func tenantOf(c echo.Context) string { return c.Get(tenantKey).(string) }

// apiError is the one place store errors become API errors.
func (s *Server) apiError(err error) error {
	var ae *httpapi.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, catalog.ErrNotFound):
		// The store's not-found errors name only what the caller asked for.
		return httpapi.NotFound("%s", err.Error())
	case errors.Is(err, catalog.ErrConflict):
		return httpapi.NewError(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, catalog.ErrLimitReached):
		return httpapi.NewError(http.StatusBadRequest, "limit_reached",
			fmt.Sprintf("maximum number of integrations (%d) reached", s.cfg.MaxIntegrations))
	}
	return err // logged and answered as 500 by the shared error handler
}

func (s *Server) list(c echo.Context) error {
	list, err := s.store.ListIntegrations(c.Request().Context(), tenantOf(c))
	if err != nil {
		return s.apiError(err)
	}
	out := listResponse{Integrations: make([]integrationResponse, 0, len(list))}
	for _, in := range list {
		out.Integrations = append(out.Integrations, toResponse(in))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) register(c echo.Context) error {
	var req registerRequest
	if err := httpapi.BindStrict(c, &req); err != nil {
		return err
	}
	in, err := validateRegister(&req, time.Now())
	if err != nil {
		return err
	}
	in.Tenant = tenantOf(c)
	if err := s.store.CreateIntegration(c.Request().Context(), in, s.cfg.MaxIntegrations); err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) get(c echo.Context) error {
	in, err := s.store.GetIntegration(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) patch(c echo.Context) error {
	var req patchRequest
	if err := httpapi.BindStrict(c, &req); err != nil {
		return err
	}
	if err := validatePatch(&req); err != nil {
		return err
	}
	// applyPatch runs under the row lock, so a concurrent _start cannot slip
	// between the "is it stopped?" check and the write.
	in, err := s.store.UpdateIntegration(c.Request().Context(), tenantOf(c), c.Param("id"),
		func(in *catalog.Integration) error { return applyPatch(in, &req) })
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) delete(c echo.Context) error {
	if err := s.store.DeleteIntegration(c.Request().Context(), tenantOf(c), c.Param("id")); err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, struct{}{})
}

func (s *Server) start(c echo.Context) error {
	ctx := c.Request().Context()
	in, err := s.store.GetIntegration(ctx, tenantOf(c), c.Param("id"))
	if err != nil {
		return s.apiError(err)
	}
	// Completion is final: restarting a finished replay would replay it again.
	if in.CompletedAt != nil {
		return httpapi.NewError(http.StatusBadRequest, "integration_completed",
			fmt.Sprintf("temporary integration %q has completed; register a new one to replay again", in.ID))
	}
	in, err = s.store.SetStatus(ctx, in.Tenant, in.ID, catalog.StatusRunning, catalog.ActionStarted, reasonStarted)
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) stop(c echo.Context) error {
	in, err := s.store.SetStatus(c.Request().Context(), tenantOf(c), c.Param("id"),
		catalog.StatusStopped, catalog.ActionStopped, reasonStopped)
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) logs(c echo.Context) error {
	list, err := s.store.ListLogs(c.Request().Context(), tenantOf(c), c.Param("id"), catalog.LogLimit)
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toLogs(list))
}

func (s *Server) listRejected(c echo.Context) error {
	list, err := s.store.ListRejected(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toRejectedList(list))
}

func (s *Server) getRejected(c echo.Context) error {
	ev, err := s.store.GetRejected(c.Request().Context(), tenantOf(c), c.Param("id"), c.Param("event_id"))
	if err != nil {
		return s.apiError(err)
	}
	// The stored bytes are exactly what the endpoint rejected; re-encoding
	// could reorder keys or change number formatting.
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, ev.Body)
}

func (s *Server) deleteRejected(c echo.Context) error {
	if err := s.store.DeleteRejected(c.Request().Context(), tenantOf(c), c.Param("id"), c.Param("event_id")); err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, struct{}{})
}

func (s *Server) retry(c echo.Context) error {
	ctx := c.Request().Context()
	tenant, id, eventID := tenantOf(c), c.Param("id"), c.Param("event_id")
	in, err := s.store.GetIntegration(ctx, tenant, id)
	if err != nil {
		return s.apiError(err)
	}
	ev, err := s.store.GetRejected(ctx, tenant, id, eventID)
	if err != nil {
		return s.apiError(err)
	}
	if s.retrier == nil {
		return httpapi.NewError(http.StatusServiceUnavailable, "unavailable", "retry unavailable: no event sender is configured")
	}
	status, err := s.retrier.Retry(ctx, in, ev)
	if err != nil {
		s.log.Warn("retrying rejected event", "tenant", tenant, "integration", id, "event", eventID, "err", err)
		return httpapi.NewError(http.StatusBadGateway, "bad_gateway",
			fmt.Sprintf("retrying event %s: the integration's endpoint could not be reached (%v); the event is kept", eventID, err))
	}
	if status < 200 || status > 299 {
		return httpapi.NewError(http.StatusBadGateway, "bad_gateway",
			fmt.Sprintf("retrying event %s: the integration's endpoint answered HTTP status code %d; the event is kept", eventID, status))
	}
	// A concurrent delete of the same event is fine: it is gone either way.
	if err := s.store.DeleteRejected(ctx, tenant, id, eventID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, struct{}{})
}
