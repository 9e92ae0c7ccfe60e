package configapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/ratelimit"
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
	case errors.Is(err, catalog.ErrSecretsUnreadable):
		// Writing the integration back would erase secrets nobody can read.
		return httpapi.NewError(http.StatusConflict, errSecretsUnreadable,
			"the integration's stored secrets cannot be decrypted (its encryption key is not in SECRETS_KEYS); "+
				"an operator must restore the key, or delete and register the integration again")
	case errors.Is(err, catalog.ErrLimitReached):
		return httpapi.NewError(http.StatusBadRequest, "limit_reached",
			fmt.Sprintf("maximum number of integrations (%d) reached", s.cfg.MaxIntegrations))
	}
	return err // logged and answered as 500 by the shared error handler
}

// errSecretsUnreadable is the error state of an integration whose secrets
// cannot be decrypted: the "error" field of its representation and the
// error_code of the refusals it causes.
const errSecretsUnreadable = "secrets_unreadable"

func (s *Server) list(c echo.Context) error {
	list, err := s.store.ListIntegrations(c.Request().Context(), tenantOf(c))
	unreadable := s.unreadable(c, err)
	if err != nil && unreadable == nil {
		return s.apiError(err)
	}
	out := listResponse{Integrations: make([]integrationResponse, 0, len(list))}
	for _, in := range list {
		out.Integrations = append(out.Integrations, toResponseMarked(in, unreadable))
	}
	return c.JSON(http.StatusOK, out)
}

// unreadable returns err as a *catalog.UnreadableError (logged), or nil.
func (s *Server) unreadable(c echo.Context, err error) *catalog.UnreadableError {
	var ue *catalog.UnreadableError
	if !errors.As(err, &ue) {
		return nil
	}
	s.log.Warn("integration secrets unreadable", "tenant", tenantOf(c), "integrations", ue.Integrations,
		"request_id", httpapi.RequestID(c), "err", err)
	return ue
}

// oneMarked answers an integration read with its error state, or the error.
func (s *Server) oneMarked(c echo.Context, in *catalog.Integration, err error) error {
	unreadable := s.unreadable(c, err)
	if err != nil && unreadable == nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponseMarked(in, unreadable))
}

// refuseOwnHost refuses a callback URL that points at this service's own
// public hosts: a delivery there would feed events back into the platform.
func (s *Server) refuseOwnHost(callbackURL string) error {
	if !s.cfg.OwnHosts.MatchString(callbackURL) {
		return nil
	}
	return httpapi.NewError(http.StatusBadRequest, "validation_failed",
		"callback_parameters.callback_url: must not point at this service's own hosts (a delivery would feed events back into Event Stream), got "+quote(callbackURL))
}

func (s *Server) register(c echo.Context) error {
	var req registerRequest
	if err := bindStrict(c, &req); err != nil {
		return err
	}
	in, err := validateRegister(&req, time.Now())
	if err != nil {
		return err
	}
	if in.Webhook != nil {
		if err := s.refuseOwnHost(in.Webhook.CallbackURL); err != nil {
			return err
		}
	}
	in.Tenant = tenantOf(c)
	if err := s.store.CreateIntegration(c.Request().Context(), in, s.cfg.MaxIntegrations); err != nil {
		return s.apiError(err)
	}
	return c.JSON(http.StatusOK, toResponse(in))
}

func (s *Server) get(c echo.Context) error {
	in, err := s.store.GetIntegration(c.Request().Context(), tenantOf(c), c.Param("id"))
	return s.oneMarked(c, in, err)
}

func (s *Server) patch(c echo.Context) error {
	var req patchRequest
	if err := bindStrict(c, &req); err != nil {
		return err
	}
	if err := validatePatch(&req); err != nil {
		return err
	}
	if req.CallbackParameters != nil {
		if err := s.refuseOwnHost(req.CallbackParameters.CallbackURL); err != nil {
			return err
		}
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
	return s.oneMarked(c, in, err)
}

func (s *Server) stop(c echo.Context) error {
	in, err := s.store.SetStatus(c.Request().Context(), tenantOf(c), c.Param("id"),
		catalog.StatusStopped, catalog.ActionStopped, reasonStopped)
	return s.oneMarked(c, in, err)
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
	if ok, wait := s.retryLimit.Allow(tenant, 1); !ok {
		secs := ratelimit.RetryAfterSeconds(wait)
		c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return httpapi.NewError(http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("too many retries for this tenant (%g per second, bursts of %d); retry after %d s; the event is kept",
				s.cfg.RetryRate, s.retryLimit.Burst(), secs))
	}
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
