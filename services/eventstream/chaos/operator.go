package chaos

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// operate does what an operator watching the console would: every 2 s it
// lists each tenant's integrations and starts again any the system stopped
// by itself (an interrupted integration resumes where it stopped, so nothing
// is lost by restarting it; the report counts each interruption).
func operate(ctx context.Context, sys *system, report func(Interruption)) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, tenant := range sys.tenants {
			b, err := sys.api(ctx, tenant, http.MethodGet, "", nil)
			if err != nil {
				continue // the catalog may be paused: try again next tick
			}
			var list struct {
				Integrations []struct {
					ID     string `json:"id"`
					Status string `json:"status"`
				} `json:"integrations"`
			}
			if json.Unmarshal(b, &list) != nil {
				continue
			}
			for _, in := range list.Integrations {
				if in.Status != "stopped" {
					continue
				}
				reason := "(no log entry)"
				if lb, err := sys.api(ctx, tenant, http.MethodGet, "/"+in.ID+"/logs", nil); err == nil {
					var logs struct {
						Entries []struct {
							Action string `json:"action"`
							Reason string `json:"reason"`
						} `json:"entries"`
					}
					if json.Unmarshal(lb, &logs) == nil && len(logs.Entries) > 0 {
						reason = logs.Entries[0].Action + ": " + logs.Entries[0].Reason
					}
				}
				if _, err := sys.api(ctx, tenant, http.MethodPost, "/"+in.ID+"/_start", nil); err != nil {
					continue
				}
				report(Interruption{Integration: tenant + "/" + in.ID, At: time.Now(), Reason: reason})
			}
		}
	}
}
