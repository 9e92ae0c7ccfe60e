package events

import (
	"github.com/google/uuid"
)

// idNamespace is the UUIDv5 namespace for event ids. Changing it changes every
// event id ever derived, so it is fixed forever.
var idNamespace = uuid.MustParse("5b8f3c1e-2a4d-4e6f-9a0b-7c1d2e3f4a5b")

// EventID derives the deterministic event id of (tenant, name, idempotency key):
// a client retrying a publish gets the same id downstream. The parts are joined
// with a NUL byte, which none of them may contain, so distinct triples never collide.
func EventID(tenant, name, idempotencyKey string) uuid.UUID {
	b := make([]byte, 0, len(tenant)+len(name)+len(idempotencyKey)+2)
	b = append(b, tenant...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, idempotencyKey...)
	return uuid.NewSHA1(idNamespace, b)
}

// TopicName is the Kafka topic holding a tenant's events.
func TopicName(tenant string) string { return "eventstream." + tenant + ".events" }
