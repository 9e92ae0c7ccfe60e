package events

import (
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined over SHA-1; not used for security

	"github.com/google/uuid"
)

// idNamespace is the UUIDv5 namespace for event ids. Changing it changes every
// event id ever derived, so it is fixed forever.
var idNamespace = uuid.MustParse("5b8f3c1e-2a4d-4e6f-9a0b-7c1d2e3f4a5b")

// EventID derives the deterministic event id of (tenant, name, idempotency key):
// a client retrying a publish gets the same id downstream. The parts are joined
// with a NUL byte, which none of them may contain, so distinct triples never collide.
func EventID(tenant, name, idempotencyKey string) uuid.UUID {
	// This is uuid.NewSHA1(idNamespace, tenant\0name\0key) without its
	// allocations: ingest derives one id per event.
	var stack [256]byte
	b := stack[:0]
	if n := len(idNamespace) + len(tenant) + len(name) + len(idempotencyKey) + 2; n > len(stack) {
		b = make([]byte, 0, n)
	}
	b = append(b, idNamespace[:]...)
	b = append(b, tenant...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, idempotencyKey...)
	sum := sha1.Sum(b)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = (id[6] & 0x0f) | 0x50 // version 5
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}

// TopicName is the Kafka topic holding a tenant's events.
func TopicName(tenant string) string { return "eventstream." + tenant + ".events" }
