package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Step is one fault of a schedule: at At (from the start of the fault
// phase) a fault of Kind is injected on target Target (a worker, an
// endpoint, an error choice: the harness reads it modulo what exists) and
// healed Hold later.
type Step struct {
	At     time.Duration
	Kind   string
	Hold   time.Duration
	Target int
}

func (s Step) String() string {
	return fmt.Sprintf("%7s  %-17s hold %-6s target %d", s.At.Round(100*time.Millisecond), s.Kind, s.Hold.Round(100*time.Millisecond), s.Target)
}

// Weights say how often each kind is drawn; a kind with weight 0 (or absent)
// never is.
type Weights map[string]int

// DefaultWeights draw process and infrastructure faults about as often as
// endpoint faults.
func DefaultWeights() Weights {
	return Weights{
		KindWorkerKill: 3, KindWorkerTerm: 2,
		KindPostgresPause: 2, KindPostgresRestart: 1,
		KindBrokerErrors: 2, KindBrokerRestart: 1,
		KindWebhook5xx: 2, KindWebhook429: 2, KindWebhookHostile: 2,
		KindWebhookSlow: 1, KindWebhookReset: 1,
		KindS3Error: 1, KindS3DropComplete: 1,
	}
}

// NewSchedule draws the faults of a run of length d from seed: one fault at
// a time, each held 2-8 s, separated by 1-5 s of calm. The same seed, length
// and weights give the same schedule.
func NewSchedule(seed uint64, d time.Duration, w Weights) []Step {
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73))
	var kinds []string
	total := 0
	for _, k := range Kinds { // fixed order: map iteration would break determinism
		if w[k] > 0 {
			kinds = append(kinds, k)
			total += w[k]
		}
	}
	if total == 0 {
		return nil
	}
	var steps []Step
	at := time.Duration(2000+rng.IntN(3000)) * time.Millisecond
	for at < d {
		n := rng.IntN(total)
		var kind string
		for _, k := range kinds {
			if n < w[k] {
				kind = k
				break
			}
			n -= w[k]
		}
		hold := time.Duration(2000+rng.IntN(6000)) * time.Millisecond
		if at+hold > d {
			hold = max(d-at, time.Second)
		}
		steps = append(steps, Step{At: at, Kind: kind, Hold: hold, Target: rng.IntN(1 << 16)})
		at += hold + time.Duration(1000+rng.IntN(4000))*time.Millisecond
	}
	return steps
}

// FormatSchedule renders steps one per line.
func FormatSchedule(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

// ParseWeights reads "kind=weight,kind=weight" (a kind alone weighs 1);
// kinds not named are not drawn.
func ParseWeights(s string) (Weights, error) {
	w := Weights{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, n, found := strings.Cut(part, "=")
		weight := 1
		if found {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("fault weight %q: not a non-negative number", part)
			}
			weight = v
		}
		if !slices.Contains(Kinds, kind) {
			return nil, fmt.Errorf("unknown fault kind %q (kinds: %s)", kind, strings.Join(Kinds, ", "))
		}
		w[kind] = weight
	}
	return w, nil
}
