package drift

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// near reports whether got and want agree to tol; two NaNs agree.
func near(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= tol
}

func TestPSI(t *testing.T) {
	tests := []struct {
		name             string
		expected, actual []float64
		want             float64
	}{
		{"identical", []float64{0.1, 0.2, 0.3, 0.4}, []float64{0.1, 0.2, 0.3, 0.4}, 0},
		{"identical with empty bin", []float64{0.5, 0, 0.5}, []float64{0.5, 0, 0.5}, 0},
		// (0.5-0.25) ln 2 + 0 + (0.25-0.5) ln 0.5 = 0.5 ln 2.
		{"swapped halves", []float64{0.25, 0.25, 0.5}, []float64{0.5, 0.25, 0.25}, 0.34657359027997264},
		// 0 + (0.4-0.5) ln 0.8 + (0.1-0.0001) ln(0.1/0.0001): the empty
		// expected bin is smoothed to Epsilon.
		{"empty expected bin", []float64{0.5, 0.5, 0}, []float64{0.5, 0.4, 0.1}, 0.7123991075017365},
		{"empty actual bin", []float64{0.5, 0.4, 0.1}, []float64{0.5, 0.5, 0}, 0.7123991075017365},
		{"no bins", nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PSI(tt.expected, tt.actual); !near(got, tt.want, 1e-15) {
				t.Errorf("PSI = %.17g, want %.17g", got, tt.want)
			}
		})
	}
}

func TestPSIPanicsOnMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("PSI with mismatched bins did not panic")
		}
	}()
	PSI([]float64{1}, []float64{0.5, 0.5})
}

func TestBinFractions(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		edges  []float64
		values []float64
		want   []float64
		wantN  int
	}{
		// Bins (-inf,1] (1,2] (2,3] (3,inf): 0.5 1 -inf | 1.5 2 | 3 | 3.5 +inf.
		{"edges inclusive on the right", []float64{1, 2, 3},
			[]float64{0.5, 1, 1.5, 2, 3, 3.5, nan, -inf, inf}, []float64{0.375, 0.25, 0.125, 0.25}, 8},
		{"no edges", nil, []float64{-5, 0, 5}, []float64{1}, 3},
		{"no values", []float64{0}, nil, []float64{0, 0}, 0},
		{"only NaN", []float64{0}, []float64{nan, nan}, []float64{0, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := BinFractions(tt.edges, tt.values)
			if !reflect.DeepEqual(got, tt.want) || n != tt.wantN {
				t.Errorf("BinFractions = %v, %d, want %v, %d", got, n, tt.want, tt.wantN)
			}
		})
	}
}

// TestBinFractionsMatchesProfile checks that served values are binned by the
// rule that made the training profile's fractions: a value lands in the same
// bin, so an unchanged distribution has PSI 0.
func TestBinFractionsMatchesProfile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	values := normalSample(rng, 1000, 0)
	values = append(values, math.NaN(), math.Inf(1), math.Inf(-1), 0, 0, 0)
	s := dataset.Schema{Fields: []dataset.Field{{Name: "x", Type: dataset.Float64}}}
	p := dataset.NewProfiler(s, 10)
	rec, err := dataset.NewRecord(s, []arrow.Array{dataset.Float64Array(values)})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if err := p.Add(rec); err != nil {
		t.Fatal(err)
	}
	prof := p.Profile().Columns[0]
	finite := slices.DeleteFunc(slices.Clone(values), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
	got, n := BinFractions(prof.Edges, finite)
	if !reflect.DeepEqual(got, prof.Fractions) || n != len(finite) {
		t.Errorf("BinFractions = %v, %d; the profile has %v, %d", got, n, prof.Fractions, len(finite))
	}
	if psi, _ := NumericPSI(prof, finite); psi != 0 {
		t.Errorf("PSI of the training values against their own profile = %v, want 0", psi)
	}
}

func TestCategoryFractions(t *testing.T) {
	tests := []struct {
		name       string
		categories []string
		values     []string
		valid      []bool
		want       []float64
		wantOther  float64
		wantN      int
	}{
		{"nil valid counts all", []string{"a", "b"}, []string{"a", "b", "a", "z"}, nil, []float64{0.5, 0.25}, 0.25, 4},
		{"invalid skipped", []string{"a", "b"}, []string{"a", "", "b", "b"}, []bool{true, false, true, true},
			[]float64{1.0 / 3, 2.0 / 3}, 0, 3},
		{"empty string is a value when valid", []string{"a"}, []string{"", "a"}, []bool{true, true}, []float64{0.5}, 0.5, 2},
		{"short valid treats the rest as null", []string{"a"}, []string{"a", "a"}, []bool{true}, []float64{1}, 0, 1},
		{"no categories", nil, []string{"x", "y"}, nil, []float64{}, 1, 2},
		{"no values", []string{"a"}, nil, nil, []float64{0}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, other, n := CategoryFractions(tt.categories, tt.values, tt.valid)
			if !reflect.DeepEqual(got, tt.want) || other != tt.wantOther || n != tt.wantN {
				t.Errorf("CategoryFractions = %v, %v, %d, want %v, %v, %d", got, other, n, tt.want, tt.wantOther, tt.wantN)
			}
		})
	}
}

func TestNumericAndCategoricalPSI(t *testing.T) {
	num := dataset.ColumnProfile{Name: "x", Type: dataset.Float64, Count: 100,
		Edges: []float64{1, 2, 3}, Fractions: []float64{0.25, 0.25, 0.25, 0.25}}
	cat := dataset.ColumnProfile{Name: "c", Type: dataset.String, Count: 100,
		Categories: []string{"a", "b"}, CategoryFractions: []float64{0.6, 0.3}, OtherFraction: 0.1}

	numTests := []struct {
		name   string
		p      dataset.ColumnProfile
		values []float64
		want   float64
		wantN  int
	}{
		// Actual 0.375 0.25 0.125 0.25: 0.125 ln 1.5 - 0.125 ln 0.5 = 0.125 ln 3.
		{"hand example", num, []float64{0.5, 1, 1.5, 2, 3, 3.5, math.NaN(), -10, 10}, 0.13732653608351372, 8},
		{"matching sample", num, []float64{0, 1.5, 2.5, 4}, 0, 4},
		{"no values", num, nil, 0, 0},
		{"no reference", dataset.ColumnProfile{Type: dataset.Float64}, []float64{1}, math.NaN(), 1},
	}
	for _, tt := range numTests {
		t.Run("numeric/"+tt.name, func(t *testing.T) {
			got, n := NumericPSI(tt.p, tt.values)
			if !near(got, tt.want, 1e-15) || n != tt.wantN {
				t.Errorf("NumericPSI = %.17g, %d, want %.17g, %d", got, n, tt.want, tt.wantN)
			}
		})
	}

	catTests := []struct {
		name   string
		p      dataset.ColumnProfile
		values []string
		valid  []bool
		want   float64
		wantN  int
	}{
		// Actual a 0.5, b 0.25, other 0.25 against 0.6, 0.3, 0.1:
		// -0.1 ln(5/6) - 0.05 ln(5/6) + 0.15 ln 2.5.
		{"hand example", cat, []string{"a", "a", "b", "c", "a"}, []bool{true, true, true, true, false}, 0.16479184330021646, 4},
		{"matching sample", cat, []string{"a", "a", "a", "a", "a", "a", "b", "b", "b", "z"}, nil, 0, 10},
		{"no reference", dataset.ColumnProfile{Type: dataset.String}, []string{"a"}, nil, math.NaN(), 1},
	}
	for _, tt := range catTests {
		t.Run("categorical/"+tt.name, func(t *testing.T) {
			got, n := CategoricalPSI(tt.p, tt.values, tt.valid)
			if !near(got, tt.want, 1e-15) || n != tt.wantN {
				t.Errorf("CategoricalPSI = %.17g, %d, want %.17g, %d", got, n, tt.want, tt.wantN)
			}
		})
	}
}

// decileProfile profiles a sample the way the training profile does:
// deciles as inner edges, fractions of the sample per bin.
func decileProfile(name string, sample []float64) dataset.ColumnProfile {
	s := slices.Clone(sample)
	slices.Sort(s)
	var edges []float64
	for q := 1; q < 10; q++ {
		pos := float64(q) / 10 * float64(len(s)-1) // numpy's linear method
		lo := int(pos)
		e := s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	fr, n := BinFractions(edges, sample)
	return dataset.ColumnProfile{Name: name, Type: dataset.Float64, Count: int64(n), Edges: edges, Fractions: fr}
}

func normalSample(rng *rand.Rand, n int, mean float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + rng.NormFloat64()
	}
	return out
}

func TestNormalShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	p := decileProfile("x", normalSample(rng, 20000, 0))
	tests := []struct {
		name    string
		mean    float64
		low     float64
		high    float64
		drifted bool
	}{
		{"unshifted", 0, 0, 0.1, false},
		{"shifted by one sd", 1, 0.2, math.Inf(1), true},
		{"shifted down by one sd", -1, 0.2, math.Inf(1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := normalSample(rng, 5000, tt.mean)
			psi, n := NumericPSI(p, values)
			t.Logf("PSI = %.4f", psi)
			if n != len(values) || psi < tt.low || psi >= tt.high {
				t.Errorf("PSI = %v over %d values, want in [%v, %v)", psi, n, tt.low, tt.high)
			}
			rep := Compare(dataset.Profile{Columns: []dataset.ColumnProfile{p}},
				map[string]Column{"x": {Floats: values}}, 0, 100)
			if rep.Drifted != tt.drifted {
				t.Errorf("Compare drifted = %v (PSI %v), want %v", rep.Drifted, rep.MaxPSI, tt.drifted)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	profile := dataset.Profile{Rows: 100, Columns: []dataset.ColumnProfile{
		{Name: "age", Type: dataset.Int64, Count: 100, Edges: []float64{30, 50}, Fractions: []float64{0.3, 0.4, 0.3}},
		{Name: "income", Type: dataset.Float64, Count: 100, Edges: []float64{1000}, Fractions: []float64{0.5, 0.5}},
		{Name: "plan", Type: dataset.String, Count: 100, Categories: []string{"basic", "pro"}, CategoryFractions: []float64{0.7, 0.3}},
		{Name: "active", Type: dataset.Bool, Count: 100, Categories: []string{"true", "false"}, CategoryFractions: []float64{0.5, 0.5}},
		{Name: "rare", Type: dataset.Float64, Count: 100, Edges: []float64{0}, Fractions: []float64{0.5, 0.5}},
		{Name: "empty_in_training", Type: dataset.Float64, Count: 0, Nulls: 100},
		{Name: "not_served", Type: dataset.String, Count: 100, Categories: []string{"x"}, CategoryFractions: []float64{1}},
		{Name: "wrong_kind", Type: dataset.Float64, Count: 100, Edges: []float64{0}, Fractions: []float64{0.5, 0.5}},
	}}
	columns := map[string]Column{
		// Same shape as training: 3, 4, 3 of 10.
		"age": {Floats: []float64{20, 25, 30, 40, 41, 45, 50, 60, 70, 80}},
		// All above the edge: 0 (smoothed) vs 0.5 and 1 vs 0.5.
		"income": {Floats: []float64{2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, math.NaN()}},
		// basic 0.5, pro 0.5, other 0 against 0.7, 0.3, 0; two nulls skipped.
		"plan":   {Strings: []string{"basic", "pro", "basic", "pro", "", "", "basic", "pro", "basic", "pro"}, Valid: []bool{true, true, true, true, false, false, true, true, true, true}},
		"active": {Strings: []string{"true", "false", "true", "false", "true", "false", "true", "false", "true", "false"}},
		// Shifted but only 3 values: reported, never drifted.
		"rare":              {Floats: []float64{5, 6, 7}, Valid: []bool{true, true, true}},
		"empty_in_training": {Floats: []float64{1, 2, 3}},
		"wrong_kind":        {Strings: []string{"a"}},
		"unprofiled":        {Floats: make([]float64, 12)},
	}
	rep := Compare(profile, columns, 0.1, 5)

	incomePSI := (Epsilon-0.5)*math.Log(Epsilon/0.5) + 0.5*math.Log(2)
	planPSI := -0.2*math.Log(0.5/0.7) + 0.2*math.Log(0.5/0.3)
	rarePSI := incomePSI
	want := Report{
		Features: []FeatureDrift{
			{Feature: "income", Kind: KindNumeric, PSI: incomePSI, Rows: 9, Drifted: true},
			{Feature: "rare", Kind: KindNumeric, PSI: rarePSI, Rows: 3, Drifted: false},
			{Feature: "plan", Kind: KindCategorical, PSI: planPSI, Rows: 8, Drifted: true},
			{Feature: "active", Kind: KindCategorical, PSI: 0, Rows: 10},
			{Feature: "age", Kind: KindNumeric, PSI: 0, Rows: 10},
		},
		Rows:      12,
		Threshold: 0.1,
		Drifted:   true,
		MaxPSI:    incomePSI,
		Skipped:   []string{"empty_in_training", "not_served", "wrong_kind"},
	}
	if len(rep.Features) != len(want.Features) {
		t.Fatalf("Compare features = %+v\nwant %+v", rep.Features, want.Features)
	}
	for i, f := range rep.Features {
		w := want.Features[i]
		if f.Feature != w.Feature || f.Kind != w.Kind || f.Rows != w.Rows || f.Drifted != w.Drifted || !near(f.PSI, w.PSI, 1e-12) {
			t.Errorf("feature %d = %+v, want %+v", i, f, w)
		}
	}
	rep.Features, want.Features = nil, nil
	if !near(rep.MaxPSI, want.MaxPSI, 1e-12) {
		t.Errorf("MaxPSI = %v, want %v", rep.MaxPSI, want.MaxPSI)
	}
	rep.MaxPSI, want.MaxPSI = 0, 0
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("Compare = %+v\nwant %+v", rep, want)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not encode as JSON: %v", err)
	}
}

func TestCompareThresholdAndMinRows(t *testing.T) {
	profile := dataset.Profile{Columns: []dataset.ColumnProfile{
		{Name: "x", Type: dataset.Float64, Count: 10, Edges: []float64{0}, Fractions: []float64{0.5, 0.5}},
	}}
	// Actual 0.25, 0.75: PSI = -0.25 ln 0.5 + 0.25 ln 1.5 = 0.25 ln 3 ≈ 0.2747.
	cols := map[string]Column{"x": {Floats: []float64{-1, 1, 2, 3}}}
	psi := PSI([]float64{0.5, 0.5}, []float64{0.25, 0.75}) // the exact float Compare computes
	if !near(psi, 0.25*math.Log(3), 1e-15) {
		t.Fatalf("PSI = %v, want 0.25 ln 3", psi)
	}
	tests := []struct {
		name          string
		threshold     float64
		minRows       int
		wantThreshold float64
		wantDrifted   bool
		wantMax       float64
	}{
		{"default threshold", 0, 0, DefaultThreshold, true, 0.25 * math.Log(3)},
		{"threshold above PSI", 0.3, 0, 0.3, false, 0.25 * math.Log(3)},
		{"threshold equal to PSI drifts", psi, 0, psi, true, psi},
		{"too few rows", 0.1, 5, 0.1, false, 0},
		{"exactly min rows", 0.1, 4, 0.1, true, 0.25 * math.Log(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Compare(profile, cols, tt.threshold, tt.minRows)
			if rep.Threshold != tt.wantThreshold || rep.Drifted != tt.wantDrifted || !near(rep.MaxPSI, tt.wantMax, 1e-15) ||
				rep.Features[0].Drifted != tt.wantDrifted || rep.Features[0].Rows != 4 {
				t.Errorf("Compare = %+v", rep)
			}
		})
	}
}

// pythonWith returns a python3 interpreter that can import module, trying
// $KILN_PYTHON, python3 on PATH and /usr/bin/python3 (Debian's python3-numpy),
// or skips the test.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("KILN_PYTHON"); p != "" {
		candidates = append([]string{p}, candidates...)
	}
	for _, c := range candidates {
		if exec.Command(c, "-c", "import "+module).Run() == nil {
			return c
		}
	}
	t.Skipf("no python3 with %s (set KILN_PYTHON)", module)
	return ""
}

// numpyScript computes, independently of the Go code, decile edges of the
// reference (numpy's default linear quantiles, deduplicated), bin fractions
// with searchsorted(side="left") — the bin rule of dataset.ColumnProfile —
// and Evidently's smoothed PSI.
const numpyScript = `
import json, sys
import numpy as np
out = []
for case in json.load(sys.stdin):
    ref = np.array(case["reference"], dtype=float)
    cur = np.array(case["current"], dtype=float)
    cur = cur[~np.isnan(cur)]
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    nb = len(edges) + 1
    e = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=nb) / len(ref)
    a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=nb) / len(cur)
    e = np.where(e == 0, 0.0001, e)
    a = np.where(a == 0, 0.0001, a)
    out.append({"edges": edges.tolist(), "psi": float(np.sum((a - e) * np.log(a / e)))})
json.dump(out, sys.stdout)
`

func TestAgainstNumpy(t *testing.T) {
	py := pythonWith(t, "numpy")
	rng := rand.New(rand.NewPCG(3, 5))
	type tc struct {
		Name               string
		Reference, Current []float64
	}
	rounded := func(xs []float64) []float64 {
		for i := range xs {
			xs[i] = math.Round(xs[i])
		}
		return xs
	}
	withNaN := normalSample(rng, 3000, 0.3)
	for i := 0; i < len(withNaN); i += 7 {
		withNaN[i] = math.NaN()
	}
	cases := []tc{
		{"same distribution", normalSample(rng, 10000, 0), normalSample(rng, 3000, 0)},
		{"mean shift", normalSample(rng, 10000, 0), normalSample(rng, 3000, 0.7)},
		{"far shift empties bins", normalSample(rng, 10000, 0), normalSample(rng, 1000, 6)},
		// Integer-valued data: duplicate deciles collapse, values sit on edges.
		{"ties on edges", rounded(normalSample(rng, 5000, 0)), rounded(normalSample(rng, 2000, 0.5))},
		{"NaN skipped", normalSample(rng, 5000, 0), withNaN},
	}
	// encoding/json cannot write NaN: send it as null, which numpy reads
	// back as NaN with dtype=float.
	jsonable := func(xs []float64) []*float64 {
		out := make([]*float64, len(xs))
		for i := range xs {
			if !math.IsNaN(xs[i]) {
				out[i] = &xs[i]
			}
		}
		return out
	}
	type jcase struct {
		Reference []*float64 `json:"reference"`
		Current   []*float64 `json:"current"`
	}
	var jcases []jcase
	for _, c := range cases {
		jcases = append(jcases, jcase{jsonable(c.Reference), jsonable(c.Current)})
	}
	in, err := json.Marshal(jcases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", numpyScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Edges []float64 `json:"edges"`
		PSI   float64   `json:"psi"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decode python output: %v\n%s", err, out)
	}
	for i, c := range cases {
		p := decileProfile("x", c.Reference)
		if len(p.Edges) != len(want[i].Edges) {
			t.Errorf("%s: %d edges, numpy %d", c.Name, len(p.Edges), len(want[i].Edges))
			continue
		}
		for j := range p.Edges {
			if !near(p.Edges[j], want[i].Edges[j], 1e-12) {
				t.Errorf("%s: edge %d = %v, numpy %v", c.Name, j, p.Edges[j], want[i].Edges[j])
			}
		}
		got, _ := NumericPSI(p, c.Current)
		if !near(got, want[i].PSI, 1e-12) {
			t.Errorf("%s: PSI = %.17g, numpy %.17g", c.Name, got, want[i].PSI)
		}
	}
}
