// Package events holds the event registry shared by every service: the 42 event
// names a tenant can publish, their entity types, how an event's identity is
// derived, and the filter rule deciding which integrations receive it.
package events

import (
	"slices"
	"strings"
)

// names is the closed set of event names from the Event-Stream Webhooks reference.
// The entity type is always the part before the first dot.
var names = []string{
	"fulfillment_request.assigned",
	"fulfillment_request.items_completed",
	"fulfillment_request.items_failed",
	"fulfillment_request.items_ready_for_handover",
	"order.created",
	"order.opened",
	"order.shipped",
	"order.completed",
	"order.cancelled",
	"order.items_swapped",
	"order.items_cancelled",
	"order.items_on_hold",
	"order.serial_numbers_added",
	"invoice.created",
	"return.processed",
	"refund_request.issued",
	"payment_account.amount_authorized",
	"payment_account.amount_captured",
	"payment_account.amount_refunded",
	"payment_account.amount_voided",
	"inventory_transaction.items_received",
	"inventory_transaction.items_ready_for_handover",
	"inventory_transaction.asn_created",
	"inventory_transaction.asn_closed",
	"inventory_transaction.adjustment_created",
	"inventory_transaction.transfer_order_created",
	"inventory_transaction.transfer_order_closed",
	"inventory_count.items_counted",
	"customer.created",
	"customer.updated",
	"customer.address_created",
	"customer.address_updated",
	"customer.address_deleted",
	"employee.created",
	"employee.updated",
	"cash_drawer.activity_recorded",
	"cash_drawer.count_submitted",
	"cash_drawer.drawer_created",
	"cash_drawer.drawer_updated",
	"cash_drawer.float_defined",
	"cash_drawer.transaction_completed",
	"gift_card.deactivated",
}

var (
	nameSet   = make(map[string]string, len(names)) // name -> entity type
	entitySet = map[string]bool{}
	entities  []string
)

func init() {
	for _, n := range names {
		et, _, _ := strings.Cut(n, ".")
		nameSet[n] = et
		if !entitySet[et] {
			entitySet[et] = true
			entities = append(entities, et)
		}
	}
	slices.Sort(entities)
}

// Names returns every known event name, in reference order. The slice is a copy.
func Names() []string { return slices.Clone(names) }

// EntityTypes returns every known entity type, sorted. The slice is a copy.
func EntityTypes() []string { return slices.Clone(entities) }

// IsKnownName reports whether name is one of the registered event names.
func IsKnownName(name string) bool { _, ok := nameSet[name]; return ok }

// IsKnownEntityType reports whether t is the entity type of some registered event.
func IsKnownEntityType(t string) bool { return entitySet[t] }

// EntityType returns the entity type of a registered event name, and false for an
// unknown name.
func EntityType(name string) (string, bool) {
	et, ok := nameSet[name]
	return et, ok
}
