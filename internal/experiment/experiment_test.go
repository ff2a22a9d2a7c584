package experiment

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func def(metric string, minEffect float64, weights ...int) Definition {
	d := Definition{Key: "header:X-User", Metric: metric, MinEffect: minEffect}
	names := []string{"control", "b", "c", "d"}
	for i, w := range weights {
		d.Variants = append(d.Variants, Variant{Name: names[i], Version: int64(i + 1), Weight: w})
	}
	return d
}

// simulate draws n accuracy outcomes per arm with the given accuracies.
func simulate(r *rand.Rand, obs []Observation, name string, n int, acc float64) []Observation {
	for range n {
		label := float64(r.IntN(2))
		pred := label
		if r.Float64() >= acc {
			pred = 1 - label
		}
		obs = append(obs, Observation{Variant: name, Prediction: pred, Label: label})
	}
	return obs
}

func TestAnalyzeVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name     string
		acc      []float64
		n        int
		verdicts []string
		decision string
	}{
		{"clearly better", []float64{0.80, 0.90}, 4000, []string{Control, Better}, "keep b"},
		{"clearly worse", []float64{0.80, 0.70}, 4000, []string{Control, Worse}, "keep control"},
		{"equivalent", []float64{0.80, 0.80}, 20000, []string{Control, Equivalent}, "keep control"},
		{"too few", []float64{0.80, 0.90}, 30, []string{Control, NotYet}, "continue"},
		{"three arms", []float64{0.80, 0.80, 0.92}, 12000, []string{Control, Equivalent, Better}, "keep c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weights := make([]int, len(tt.acc))
			for i := range weights {
				weights[i] = 1
			}
			d := def(MetricAccuracy, 0.03, weights...)
			var obs []Observation
			for i, a := range tt.acc {
				obs = simulate(r, obs, d.Variants[i].Name, tt.n, a)
			}
			obs = append(obs, Observation{Variant: "stable", Prediction: 1, Label: 1})
			rep, err := Analyze(d, obs)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.verdicts {
				if got := rep.Results[i].Verdict; got != want {
					t.Errorf("%s: verdict %q (%s), want %q; result %+v", rep.Results[i].Name, got, rep.Results[i].Note, want, rep.Results[i])
				}
			}
			if rep.Decision != tt.decision {
				t.Errorf("decision %q, want %q", rep.Decision, tt.decision)
			}
			if rep.Unassigned != 1 {
				t.Errorf("unassigned %d, want 1", rep.Unassigned)
			}
		})
	}
}

// TestAnalyzeMetricDirections: a lower absolute error is an improvement; a
// KPI is compared as posted.
func TestAnalyzeMetricDirections(t *testing.T) {
	var obs []Observation
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		l := r.NormFloat64()
		obs = append(obs, Observation{Variant: "control", Prediction: l + r.NormFloat64()*0.5, Label: l}, Observation{Variant: "b", Prediction: l + r.NormFloat64()*0.1, Label: l})
	}
	rep, err := Analyze(def(MetricAbsError, 0.05, 1, 1), obs)
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Results[1]; b.Verdict != Better || b.Effect >= 0 || b.Improvement <= 0 {
		t.Errorf("smaller errors: %+v, want better with a negative effect", b)
	}
	obs = obs[:0]
	for range 5000 {
		obs = append(obs, Observation{Variant: "control", Label: float64(r.IntN(100))}, Observation{Variant: "b", Label: float64(r.IntN(80))})
	}
	rep, err = Analyze(def(MetricKPI, 5, 1, 1), obs)
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Results[1]; b.Verdict != Worse {
		t.Errorf("KPI mean 39.5 vs 49.5: %+v, want worse", b)
	}
}

// TestAnalyzeAA: over simulated A/A experiments looked at ten times as
// labels arrive, a better or worse verdict (a false discovery) at any look
// stays below alpha.
func TestAnalyzeAA(t *testing.T) {
	const sims, looks, perLook = 2000, 10, 300
	r := rand.New(rand.NewPCG(5, 6))
	d := def(MetricAccuracy, 0.03, 1, 1, 1)
	wrong := 0
	for range sims {
		var obs []Observation
		for range looks {
			for _, v := range d.Variants {
				obs = simulate(r, obs, v.Name, perLook, 0.8)
			}
			rep, err := Analyze(d, obs)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(rep.Decision, "keep b") || strings.HasPrefix(rep.Decision, "keep c") ||
				rep.Results[1].Verdict == Worse || rep.Results[2].Verdict == Worse {
				wrong++
				break
			}
		}
	}
	if rate := float64(wrong) / sims; rate > 0.05 {
		t.Errorf("false discoveries in %.1f%% of A/A experiments, want ≤ 5%%", 100*rate)
	} else {
		t.Logf("false discoveries in %.2f%% of %d A/A experiments with %d looks", 100*rate, sims, looks)
	}
}

// TestAnalyzePower: a variant better by MinEffect is found better (or at
// least significantly better) in most experiments once each arm has Need.
func TestAnalyzePower(t *testing.T) {
	const sims = 2000
	r := rand.New(rand.NewPCG(7, 8))
	d := def(MetricAccuracy, 0.05, 1, 1)
	rep, _ := Analyze(d, simulate(r, simulate(r, nil, "control", 2000, 0.75), "b", 2000, 0.75))
	need := int(rep.Results[1].Need)
	if need < 100 || need > 100000 {
		t.Fatalf("need %d per arm for a 5-point effect at 75%% accuracy: implausible", need)
	}
	found := 0
	for range sims {
		obs := simulate(r, simulate(r, nil, "control", need, 0.75), "b", need, 0.80)
		rep, err := Analyze(d, obs)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Results[1].Lower > 0 {
			found++
		}
	}
	if rate := float64(found) / sims; rate < 0.8 {
		t.Errorf("a 5-point improvement shown in %.0f%% of experiments at the planned %d per arm, want ≥ 80%%", 100*rate, need)
	} else {
		t.Logf("a 5-point improvement shown in %.1f%% at %d per arm", 100*rate, need)
	}
}

func TestDefinitionCheck(t *testing.T) {
	tests := []struct {
		d    Definition
		want string
	}{
		{def(MetricAccuracy, 0.02, 1), "at least two variants"},
		{def("auc", 0.02, 1, 1), `metric "auc"`},
		{def(MetricKPI, 0, 1, 1), "min_effect must be above 0"},
		{Definition{Metric: MetricKPI, MinEffect: 1, Alpha: 1.5, Variants: []Variant{{Name: "a"}, {Name: "b"}}}, "alpha"},
	}
	for _, tt := range tests {
		err := tt.d.Check()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%+v) = %v, want %q", tt.d, err, tt.want)
		}
	}
	if err := def(MetricKPI, 1, 1, 1).Check(); err != nil {
		t.Errorf("valid definition: %v", err)
	}
}

// TestOutcomeAccuracy: a binary prediction is right when it falls on the
// label's side of 0.5; a multiclass one when it is the labelled class (2
// and 3 are on the same side of 0.5 but are different classes).
func TestOutcomeAccuracy(t *testing.T) {
	for _, tc := range []struct {
		o    Observation
		want float64
		ok   bool
	}{
		{Observation{Prediction: 0.7, Label: 1}, 1, true},
		{Observation{Prediction: 0.2, Label: 1}, 0, true},
		{Observation{Prediction: 2, Label: 3}, 1, true},
		{Observation{Prediction: 2, Label: 3, Class: true}, 0, true},
		{Observation{Prediction: 3, Label: 3, Class: true}, 1, true},
		{Observation{Prediction: 0, Label: 0, Class: true}, 1, true},
		{Observation{Prediction: math.NaN(), Label: 1, Class: true}, 0, false},
	} {
		if y, ok := Outcome(MetricAccuracy, tc.o); y != tc.want || ok != tc.ok {
			t.Errorf("%+v: %v, %v; want %v, %v", tc.o, y, ok, tc.want, tc.ok)
		}
	}
}
