package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report prints the run's figures: events, faults by kind with their
// recovery times, and per integration what was expected, delivered, lost and
// duplicated, then the verdict.
func (r *Result) Report(w io.Writer) {
	fmt.Fprintf(w, "\nFault injection: seed %d, %s of faults, %d delivery workers\n", r.Seed, r.Duration, r.Workers)
	fmt.Fprintf(w, "events accepted by ingest: %d (publish retries during faults: %d)\n", r.Accepted, r.PublishRetries)
	rec := "complete"
	if !r.Recovered {
		rec = "NOT complete at the deadline,"
	}
	fmt.Fprintf(w, "deliveries %s %s after publishing stopped (publishing stops %s after the last fault)\n\n", rec,
		r.RecoveredIn.Round(100*time.Millisecond), calmTail)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tcount\trecovery p50\trecovery max\t")
	byKind := map[string][]time.Duration{}
	counts := map[string]int{}
	for _, f := range r.Faults {
		counts[f.Kind]++
		if f.Recovery >= 0 {
			byKind[f.Kind] = append(byKind[f.Kind], f.Recovery)
		}
	}
	for _, k := range Kinds {
		if counts[k] == 0 {
			continue
		}
		p50, mx := "-", "-"
		if d := byKind[k]; len(d) > 0 {
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			p50, mx = secs(d[(len(d)-1)/2]), secs(d[len(d)-1])
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", k, counts[k], p50, mx)
	}
	fmt.Fprintf(tw, "total\t%d\t\t\t\n", len(r.Faults))
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "each fault (at: from the start of the fault phase; recovery: from its end until the affected integrations delivered again):")
	fmt.Fprintln(w, "       at   held  recovery  fault")
	for _, f := range r.Faults {
		rec := "-"
		if f.Recovery >= 0 {
			rec = secs(f.Recovery)
		}
		fmt.Fprintf(w, "  +%6.1fs  %5s  %8s  %s\n", f.Injected.Sub(r.Started).Seconds(),
			secs(f.Healed.Sub(f.Injected)), rec, f.Name)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "integration\ttarget\tfilter\texpected\tdelivered\tlost\tduplicates\tdup ratio\tno attempt row\tinterrupted\t")
	var tot IntegrationResult
	for _, in := range r.Integrations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t\n", in.Key, in.Target, in.Filter, in.Expected,
			in.Delivered, in.Lost, in.Duplicates, ratio(in.Duplicates, in.Delivered), in.NoAttempt, in.Interrupted)
		tot.Expected += in.Expected
		tot.Delivered += in.Delivered
		tot.Lost += in.Lost
		tot.Duplicates += in.Duplicates
		tot.NoAttempt += in.NoAttempt
		tot.Interrupted += in.Interrupted
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t\n", tot.Expected, tot.Delivered, tot.Lost,
		tot.Duplicates, ratio(tot.Duplicates, tot.Delivered), tot.NoAttempt, tot.Interrupted)
	_ = tw.Flush()

	fmt.Fprintf(w, "\ncross-tenant deliveries: %d, bad signatures: %d, unknown events: %d\n", r.CrossTenant, r.BadSignature, r.Unknown)
	fmt.Fprintf(w, "S3: %d completions whose reply was dropped, %d requests refused\n", r.DroppedComplete, r.S3Refused)
	for _, in := range r.Integrations {
		if in.Lost > 0 {
			fmt.Fprintf(w, "lost by %s (first %d of %d): %s\n", in.Key, len(in.LostSample), in.Lost, strings.Join(in.LostSample, " "))
		}
	}
	for _, in := range r.Integrations {
		for _, x := range in.NoAttemptSample {
			fmt.Fprintf(w, "no attempt row for %s: %s\n", in.Key, x)
		}
	}
	for _, x := range r.Interruptions {
		fmt.Fprintf(w, "interrupted %s at %s: %s\n", x.Integration, x.At.Format("15:04:05.000"), x.Reason)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	for _, e := range r.HarnessErrors {
		fmt.Fprintln(w, "harness:", e)
	}
	for _, f := range r.Faults {
		if f.Err != "" {
			fmt.Fprintf(w, "fault %s: %s\n", f.Name, f.Err)
		}
	}
	verdict := "PASS: nothing lost"
	switch {
	case !r.Complete:
		verdict = "INCOMPLETE: the run stopped before its verdict (data and logs kept in " + r.Dir + ")"
	case !r.OK():
		verdict = fmt.Sprintf("FAIL: %d lost, %d deliveries without an attempt row, %d cross-tenant, %d bad signatures, %d unknown, %d service crashes or unclean stops",
			r.Lost(), r.MissingAttempts(), r.CrossTenant, r.BadSignature, r.Unknown, len(r.HarnessErrors))
		verdict += fmt.Sprintf(" (data and service logs kept in %s)", r.Dir)
	}
	fmt.Fprintf(w, "\n%s (seed %d)\n", verdict, r.Seed)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func ratio(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}
