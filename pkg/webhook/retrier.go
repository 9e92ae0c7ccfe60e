package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// Retrier sends a stored rejected event again, exactly as it was first sent
// (same body, event id and idempotency key). It is the configuration API's
// _retry: the API removes the event on a 2xx and answers 502 otherwise.
type Retrier struct {
	Sender *Sender
}

// Retry makes one attempt to deliver ev to in's webhook and returns the
// endpoint's status code. err is set when no response arrived (timeout,
// connection error, blocked address) or in is not a webhook integration;
// status is then 0.
func (r Retrier) Retry(ctx context.Context, in *catalog.Integration, ev *catalog.RejectedEvent) (int, error) {
	if in.Webhook == nil {
		return 0, errors.New("retrying a rejected event: integration has no webhook target")
	}
	req := Request{
		URL:            in.Webhook.CallbackURL,
		APIKey:         in.Webhook.APIKey,
		SigningSecret:  in.Webhook.SigningSecret,
		EventID:        ev.EventID,
		EventName:      ev.EventName,
		IdempotencyKey: ev.IdempotencyKey,
		Body:           ev.Body,
	}
	res := r.Sender.Send(ctx, &req)
	if res.Err != nil {
		return 0, fmt.Errorf("sending rejected event %s: %w", ev.EventID, res.Err)
	}
	return res.Code, nil
}
