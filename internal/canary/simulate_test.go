package canary

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
)

// The simulations below run canaries the way CanaryWorkflow does: traffic
// arrives between looks, split by the current step's percentage; at every
// look the canary is analysed on everything served since it started; a pass
// moves to the next step (the last pass promotes), a fail rolls back, and a
// canary still waiting after maxLooks is left undecided (the workflow pauses
// and alerts then).

// world is what one simulated arm serves: an error rate and the bin
// probabilities of its latencies and predictions.
type world struct {
	errRate     float64
	latencyCDF  []float64
	predCDF     []float64
	latencyBins int
	predBins    int
}

// simBounds are the latency histogram's bounds (the model server's
// DurationBuckets, in seconds).
var simBounds = []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1, 2, 5}

// simPredBounds are the prediction bins: 0.05 wide over [0, 1].
var simPredBounds = func() []float64 {
	var b []float64
	for i := 1; i <= 20; i++ {
		b = append(b, float64(i)/20)
	}
	return b
}()

// binProbs returns the probability of each bin (len(bounds)+1, the last the
// overflow) of a distribution with the given CDF.
func binProbs(bounds []float64, cdf func(float64) float64) []float64 {
	out := make([]float64, len(bounds)+1)
	prev := 0.0
	for i, b := range bounds {
		c := cdf(b)
		out[i] = c - prev
		prev = c
	}
	out[len(bounds)] = 1 - prev
	return out
}

func cumulative(p []float64) []float64 {
	out := make([]float64, len(p))
	s := 0.0
	for i, v := range p {
		s += v
		out[i] = s
	}
	out[len(out)-1] = 1
	return out
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// latencyProbs: log-normal request durations, median 2ms·e^shift, σ 0.6.
func latencyProbs(shift float64) []float64 {
	return binProbs(simBounds, func(x float64) float64 {
		return normCDF((math.Log(x) - math.Log(2e-3) - shift) / 0.6)
	})
}

// predProbs: probabilities 1/(1+e^−z), z ~ N(−1 + shift, 1.5).
func predProbs(shift float64) []float64 {
	return binProbs(simPredBounds, func(p float64) float64 {
		if p >= 1 {
			return 1
		}
		return normCDF((math.Log(p/(1-p)) - (-1 + shift)) / 1.5)
	})
}

func newWorld(errRate, latShift, predShift float64) world {
	l, p := latencyProbs(latShift), predProbs(predShift)
	return world{errRate: errRate, latencyCDF: cumulative(l), predCDF: cumulative(p), latencyBins: len(l), predBins: len(p)}
}

// rankEffect is the binned rank effect P(B > A) + ½P(B = A) − ½ of two bin
// distributions: the quantity the analysis estimates.
func rankEffect(a, b []float64) float64 {
	var below, eff float64
	for i := range a {
		eff += b[i] * (below + a[i]/2)
		below += a[i]
	}
	return eff - 0.5
}

// shiftFor finds the shift whose binned rank effect against shift 0 is
// effect, by bisection.
func shiftFor(probs func(float64) []float64, effect float64) float64 {
	base := probs(0)
	lo, hi := 0.0, 5.0
	for range 100 {
		mid := (lo + hi) / 2
		if math.Abs(rankEffect(base, probs(mid))) < effect {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

func (w world) serve(r *rand.Rand, a *Arm, n int) {
	if a.Latency == nil {
		a.Latency = make([]float64, w.latencyBins)
		a.LatencyBounds = simBounds
		a.Predictions = make([]float64, w.predBins)
	}
	for range n {
		a.Requests++
		if r.Float64() < w.errRate {
			a.Errors++
		}
		a.Latency[sort.SearchFloat64s(w.latencyCDF, r.Float64())]++
		a.Predictions[sort.SearchFloat64s(w.predCDF, r.Float64())]++
	}
}

// outcome of one simulated canary.
type outcome int

const (
	promoted outcome = iota
	rolledBack
	undecided
)

// simulate runs one canary: perLook requests arrive between looks. With
// atNeed naming a metric it stops, undecided, at the first look where the
// canary arm has the sample that metric asked for (the design sample of its
// power).
func simulate(r *rand.Rand, cfg Config, stable, canary world, steps []int, perLook, maxLooks int, atNeed string) (outcome, Analysis) {
	var sa, ca Arm
	step := 0
	var last Analysis
	for range maxLooks {
		pct := steps[step]
		nc := 0
		for range perLook {
			if r.IntN(100) < pct {
				nc++
			}
		}
		stable.serve(r, &sa, perLook-nc)
		canary.serve(r, &ca, nc)
		last = Analyze(cfg, sa, ca, pct)
		if last.Decision != Rollback {
			for _, m := range last.Metrics {
				if m.Metric == atNeed && m.Canary >= m.Need {
					return undecided, last
				}
			}
		}
		switch last.Decision {
		case Rollback:
			return rolledBack, last
		case Promote:
			step++
			if step == len(steps) {
				return promoted, last
			}
		}
	}
	return undecided, last
}

// tally runs n canaries over the machine's cores; seeds make it repeatable.
func tally(n int, run func(r *rand.Rand) outcome) map[outcome]int {
	var mu sync.Mutex
	counts := map[outcome]int{}
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[outcome]int{}
			for i := w; i < n; i += workers {
				r := rand.New(rand.NewPCG(uint64(i), 0x6b696c6e))
				local[run(r)]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

func simConfig() Config {
	return Config{
		ErrorRate:   &Threshold{MinEffect: 0.02},
		Latency:     &Threshold{MinEffect: 0.1},
		Predictions: &Threshold{MinEffect: 0.1, Margin: 0.03},
		Alpha:       0.05, Power: 0.8,
	}
}

// TestAACanaries: 10,000 canaries of a version identical to stable, looked at
// every interval: at most 5% may be rolled back (wrong rollbacks), and the
// rest should promote.
func TestAACanaries(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	cfg := simConfig()
	same := newWorld(0.01, 0, 0)
	counts := tally(n, func(r *rand.Rand) outcome {
		o, _ := simulate(r, cfg, same, same, []int{10, 50}, 1000, 200, "")
		return o
	})
	wrong := float64(counts[rolledBack]) / float64(n)
	t.Logf("A/A: %d canaries, %d promoted, %d rolled back (%.2f%%), %d undecided", n, counts[promoted], counts[rolledBack], 100*wrong, counts[undecided])
	if wrong > 0.05 {
		t.Errorf("wrong rollbacks %.2f%% > 5%%", 100*wrong)
	}
	if p := float64(counts[promoted]) / float64(n); p < 0.9 {
		t.Errorf("only %.1f%% of identical canaries promoted", 100*p)
	}
}

// TestDetection: canaries worse by exactly the declared min_effect in one
// metric are rolled back at least 80% of the time by the look at which the
// canary arm reaches the minimum sample (the power the sample was derived
// for), and are never promoted.
func TestDetection(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	cfg := simConfig()
	stable := newWorld(0.01, 0, 0)
	latShift := shiftFor(latencyProbs, cfg.Latency.MinEffect)
	predShift := shiftFor(predProbs, cfg.Predictions.MinEffect)
	tests := []struct {
		name   string
		metric string
		canary world
	}{
		{"error rate +0.02", MetricErrorRate, newWorld(0.01+cfg.ErrorRate.MinEffect, 0, 0)},
		{"latency rank effect 0.1", MetricLatency, newWorld(0.01, latShift, 0)},
		{"predictions rank effect 0.1 up", MetricPredictions, newWorld(0.01, 0, predShift)},
		{"predictions rank effect 0.1 down", MetricPredictions, newWorld(0.01, 0, -shiftFor(func(s float64) []float64 { return predProbs(-s) }, cfg.Predictions.MinEffect))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := tally(n, func(r *rand.Rand) outcome {
				o, _ := simulate(r, cfg, stable, tt.canary, []int{10, 50}, 1000, 200, tt.metric)
				return o
			})
			det := float64(counts[rolledBack]) / float64(n)
			t.Logf("by the minimum sample: %d canaries, %d rolled back (%.1f%%), %d not yet", n, counts[rolledBack], 100*det, counts[undecided])
			if det < 0.8 {
				t.Errorf("detection by the minimum sample %.1f%% < 80%%", 100*det)
			}
			counts = tally(n/4, func(r *rand.Rand) outcome {
				o, _ := simulate(r, cfg, stable, tt.canary, []int{10, 50}, 1000, 200, "")
				return o
			})
			t.Logf("to the end: %d canaries, %d rolled back, %d promoted, %d undecided", n/4, counts[rolledBack], counts[promoted], counts[undecided])
			if counts[promoted] > 0 {
				t.Errorf("%d canaries worse by min_effect were promoted", counts[promoted])
			}
		})
	}
}

// TestZeroTrafficNeverPromotes: a canary that receives no requests (and one
// whose stable arm receives none) waits at every look; it never passes.
func TestZeroTrafficNeverPromotes(t *testing.T) {
	cfg := simConfig()
	w := newWorld(0.01, 0, 0)
	r := rand.New(rand.NewPCG(1, 2))
	var sa Arm
	for look := range 500 {
		w.serve(r, &sa, 1000)
		for _, pct := range []int{0, 5, 50} {
			a := Analyze(cfg, sa, Arm{}, pct)
			if a.Decision != Wait || !a.NeedsData() {
				t.Fatalf("look %d, %d%%: no canary traffic gave %s (%s)", look, pct, a.Decision, a.Reason)
			}
			b := Analyze(cfg, Arm{}, sa, pct)
			if b.Decision == Promote {
				t.Fatalf("look %d: no stable traffic promoted: %s", look, b.Reason)
			}
		}
	}
	if a := Analyze(cfg, Arm{}, Arm{}, 10); a.Decision != Wait {
		t.Fatalf("no traffic at all: %s", a.Decision)
	}
}
