package observability

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
)

// base is the first fixture attempt's time: three days of attempts follow.
var base = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

var fixtureNames = []string{"order.created", "order.cancelled", "invoice.created", "customer.created", "payment_account.amount_captured"}

type fixtureIntegration struct{ id, typ, target string }

var fixtureIntegrations = []fixtureIntegration{
	{"erp-1", "permanent", catalog.TargetWebhook},
	{"s3-export", "permanent", catalog.TargetS3},
	{"temp-2", "temporary", catalog.TargetWebhook},
}

// fixtures returns n attempts of tenant spread over three days (one every
// 35 minutes, with some sharing a timestamp so paging must break ties), both
// targets, both statuses, with and without responses.
func fixtures(tenant string, n int) []catalog.Attempt {
	out := make([]catalog.Attempt, 0, n)
	at := base
	for i := range n {
		if i%7 != 0 || i == 0 {
			at = base.Add(time.Duration(i)*35*time.Minute + time.Duration(i)*time.Millisecond + 123*time.Microsecond)
		} // else: the same attempted_at as the previous row
		name := fixtureNames[i%len(fixtureNames)]
		et, _ := events.EntityType(name)
		in := fixtureIntegrations[i%len(fixtureIntegrations)]
		a := catalog.Attempt{
			Tenant: tenant, IntegrationID: in.id, IntegrationType: in.typ, Target: in.target,
			Status: catalog.AttemptSuccess, AttemptedAt: at, RetriesRemaining: 10,
			EventID:        events.EventID(tenant, name, fmt.Sprint("k", i)).String(),
			DomainEntityID: fmt.Sprintf("ent-%d", i%9), DomainEntityType: et, EventName: name,
			ResponseTimeMS: 5 + (i*37)%400,
		}
		if i%4 == 0 {
			a.Status, a.RetriesRemaining = catalog.AttemptFailure, 9-i%10
		}
		switch {
		case in.target == catalog.TargetS3:
			a.Filename = fmt.Sprintf("exports/%s/%d-data-%04x.export", tenant, at.UnixMilli(), i)
			if a.Status == catalog.AttemptFailure {
				a.ResponseCode, a.ResponseBody = 403, "Invalid access credentials."
			}
		case a.Status == catalog.AttemptSuccess:
			a.URL, a.ResponseCode, a.ResponseBody = "https://example.com/eventstream", 200, "ok"
		case i%8 == 0: // no answer at all (timeout)
			a.URL, a.ResponseTimeMS = "https://example.com/eventstream", 10000
		default:
			a.URL, a.ResponseCode, a.ResponseBody = "https://example.com/eventstream", 503, "Temporary unavailable due to maintenance."
		}
		out = append(out, a)
	}
	return out
}

func toAttempt(a catalog.Attempt) *Attempt {
	return &Attempt{IntegrationID: a.IntegrationID, Status: a.Status, AttemptedAt: a.AttemptedAt, EventName: a.EventName,
		DomainEntityID: a.DomainEntityID, DomainEntityType: a.DomainEntityType}
}

// expected is what the list should return for f over rows (entity ids; the
// order is checked separately, ties make it ambiguous here).
func expected(rows []catalog.Attempt, f Filter) []string {
	var out []string
	for _, a := range rows {
		if f.Matches(toAttempt(a)) {
			out = append(out, a.EventID)
		}
	}
	sort.Strings(out)
	return out
}

// checkList fails unless got holds exactly the want event ids, each once,
// newest first.
func checkList(t testing.TB, got []attemptJSON, want []string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, r := range got {
		ids[i] = r.EntityID
		if i > 0 && got[i-1].AttemptedAt < r.AttemptedAt {
			t.Errorf("row %d (%s) is newer than row %d (%s): not newest first", i, r.AttemptedAt, i-1, got[i-1].AttemptedAt)
		}
	}
	sort.Strings(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Errorf("event %s listed twice", ids[i])
		}
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("got %d rows, want %d\n got %v\nwant %v", len(ids), len(want), ids, want)
	}
}
