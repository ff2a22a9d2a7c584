package transform

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// kindsTrain is the training set of the per-transform tests: x's present
// values are {1, 2, 3, 4, 10} (a null and a NaN are missing); s's are
// {a, b, a, c, b} (a and b twice, c once).
var kindsTrain = []col{
	{"x", dataset.Float64, []any{1.0, 2.0, nil, 3.0, 4.0, 10.0, nan}},
	{"s", dataset.String, []any{"a", "b", "a", "c", nil, "b", nil}},
	{"y", dataset.Int64, []any{int64(0), int64(1), int64(0), int64(1), int64(0), int64(1), int64(0)}},
}

// kindsTest holds values the training rows never saw: out of range numbers,
// values <= -1, the unknown category "z", nulls and NaN.
var kindsTest = []col{
	{"x", dataset.Float64, []any{0.0, 2.5, nil, 100.0, -5.0, -1.0, nan}},
	{"s", dataset.String, []any{"a", "z", nil, "c", "b", "a", "b"}},
}

func ptr(v float64) *float64 { return &v }

// TestTransformKinds fits each transform on kindsTrain and checks the
// fitted parameters through the outputs on kindsTest, for Apply (Arrow
// batches) and ApplyRows (serving rows) after a JSON round trip of the
// fitted transforms: both must give bit-identical features.
func TestTransformKinds(t *testing.T) {
	l := math.Log1p
	tests := []struct {
		name string
		tr   Spec
		// want maps feature names to expected values on kindsTest; x and s
		// are encoded as needed so that every case has numeric features.
		want map[string][]float64
		// applyErr, if set, is the error applying to kindsTest must give.
		applyErr string
	}{
		{name: "minmax", tr: Spec{Kind: "minmax", Columns: []string{"x"}},
			want: map[string][]float64{"x": {-1.0 / 9, 1.5 / 9, nan, 99.0 / 9, -6.0 / 9, -2.0 / 9, nan}}},
		{name: "bucketize boundaries", tr: Spec{Kind: "bucketize", Columns: []string{"x"}, Boundaries: []float64{0, 2.5, 50}},
			want: map[string][]float64{"x": {1, 2, nan, 3, 0, 0, nan}}},
		{name: "bucketize quantiles", tr: Spec{Kind: "bucketize", Columns: []string{"x"}, Quantiles: 4},
			// boundaries at the quartiles of {1,2,3,4,10}: 2, 3, 4.
			want: map[string][]float64{"x": {0, 1, nan, 3, 0, 0, nan}}},
		{name: "log1p clip", tr: Spec{Kind: "log1p", Columns: []string{"x"}, OnInvalid: "clip"},
			// values <= -1 are raised to 1, the smallest training value above -1.
			want: map[string][]float64{"x": {l(0), l(2.5), nan, l(100), l(1), l(1), nan}}},
		{name: "log1p error", tr: Spec{Kind: "log1p", Columns: []string{"x"}},
			applyErr: "row 4: value -5 is <= -1"},
		{name: "clip bounds", tr: Spec{Kind: "clip", Columns: []string{"x"}, Min: ptr(0), Max: ptr(3)},
			want: map[string][]float64{"x": {0, 2.5, nan, 3, 0, 0, nan}}},
		{name: "clip min only", tr: Spec{Kind: "clip", Columns: []string{"x"}, Min: ptr(-1)},
			want: map[string][]float64{"x": {0, 2.5, nan, 100, -1, -1, nan}}},
		{name: "clip percentiles", tr: Spec{Kind: "clip", Columns: []string{"x"}, Percentiles: []float64{25, 75}},
			want: map[string][]float64{"x": {2, 2.5, nan, 4, 2, 2, nan}}},
		{name: "ordinal ignore", tr: Spec{Kind: "ordinal", Columns: []string{"s"}},
			want: map[string][]float64{"s": {0, -1, -1, 2, 1, 0, 1}}},
		{name: "ordinal as_category", tr: Spec{Kind: "ordinal", Columns: []string{"*"}, HandleUnknown: "as_category"},
			want: map[string][]float64{"s": {0, 3, 3, 2, 1, 0, 1}}},
		{name: "ordinal max_categories", tr: Spec{Kind: "ordinal", Columns: []string{"s"}, MaxCategories: 2},
			// keeps a and b (most frequent), coded in lexical order.
			want: map[string][]float64{"s": {0, -1, -1, -1, 1, 0, 1}}},
		{name: "ordinal error", tr: Spec{Kind: "ordinal", Columns: []string{"s"}, HandleUnknown: "error"},
			applyErr: `row 1: unknown category "z" (handle_unknown: error)`},
		{name: "onehot ignore", tr: Spec{Kind: "onehot", Columns: []string{"s"}, HandleUnknown: "ignore"},
			want: map[string][]float64{
				"s=a": {1, 0, 0, 0, 0, 1, 0},
				"s=b": {0, 0, 0, 0, 1, 0, 1},
				"s=c": {0, 0, 0, 1, 0, 0, 0},
			}},
		{name: "onehot as_category", tr: Spec{Kind: "onehot", Columns: []string{"s"}, HandleUnknown: "as_category"},
			want: map[string][]float64{
				"s=a":           {1, 0, 0, 0, 0, 1, 0},
				"s=b":           {0, 0, 0, 0, 1, 0, 1},
				"s=c":           {0, 0, 0, 1, 0, 0, 0},
				"s=__unknown__": {0, 1, 1, 0, 0, 0, 0},
			}},
		{name: "onehot error", tr: Spec{Kind: "onehot", Columns: []string{"s"}, HandleUnknown: "error"},
			applyErr: `row 1: unknown category "z"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trs := []Spec{tc.tr}
			// Encode whichever column the case does not.
			if tc.tr.Kind == "onehot" || tc.tr.Kind == "ordinal" {
				trs = append([]Spec{{Kind: "impute", Columns: []string{"x"}, Strategy: "constant", Value: 0.0}}, trs...)
				if tc.tr.HandleUnknown == "error" {
					// Nulls count as unknown: impute them first.
					trs = append([]Spec{{Kind: "impute", Columns: []string{"s"}, Strategy: "mode"}}, trs...)
				}
			} else {
				trs = append(trs, Spec{Kind: "onehot", Columns: []string{"s"}})
			}
			cfg := Recipe{Target: "y", Transforms: trs}
			f, err := Fit(cfg, schemaOf(kindsTrain...), record(t, kindsTrain...))
			if err != nil {
				t.Fatalf("Fit: %v", err)
			}
			g := roundTrip(t, f)
			batch, berr := f.Apply(record(t, kindsTest...))
			rows, rerr := g.ApplyRows(rowsOf(kindsTest...))
			if tc.applyErr != "" {
				for what, err := range map[string]error{"Apply": berr, "ApplyRows": rerr} {
					if err == nil || !strings.Contains(err.Error(), tc.applyErr) {
						t.Errorf("%s: err = %v, want one containing %q", what, err, tc.applyErr)
					}
				}
				return
			}
			if berr != nil || rerr != nil {
				t.Fatalf("Apply: %v; ApplyRows: %v", berr, rerr)
			}
			sameMatrix(t, batch, rows)
			for name, want := range tc.want {
				j := f.FeatureIndex(name)
				if j < 0 {
					t.Fatalf("no feature %q in %v", name, f.Features)
				}
				for i, w := range want {
					got := batch.Cols[j][i]
					if !(math.IsNaN(w) && math.IsNaN(got)) && math.Abs(got-w) > 1e-12 {
						t.Errorf("%s row %d = %v, want %v", name, i, got, w)
					}
				}
			}
		})
	}
}

// roundTrip encodes f as JSON and decodes and validates it again, as the
// model bundle does.
func roundTrip(t *testing.T, f *Fitted) *Fitted {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Fitted
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("Validate after a JSON round trip: %v\n%s", err, b)
	}
	b2, _ := json.Marshal(&g)
	if string(b) != string(b2) {
		t.Errorf("JSON round trip changed the transforms:\n%s\n%s", b, b2)
	}
	return &g
}

// sameMatrix checks that a and b are bit-identical (NaN equals NaN).
func sameMatrix(t *testing.T, a, b *Matrix) {
	t.Helper()
	if a.Rows != b.Rows || len(a.Cols) != len(b.Cols) {
		t.Fatalf("shapes differ: %d×%d vs %d×%d", a.Rows, len(a.Cols), b.Rows, len(b.Cols))
	}
	for j := range a.Cols {
		for i := range a.Cols[j] {
			x, y := a.Cols[j][i], b.Cols[j][i]
			if math.Float64bits(x) != math.Float64bits(y) && !(math.IsNaN(x) && math.IsNaN(y)) {
				t.Errorf("%s row %d: Apply %v, ApplyRows %v", a.Features[j], i, x, y)
			}
		}
	}
}

// TestEveryTransformBatchEqualsRows chains every transform kind and option
// on a larger random set (spanning several blocks) and checks that batch
// and per-row application agree bit for bit.
func TestEveryTransformBatchEqualsRows(t *testing.T) {
	const n = 5000
	x := make([]any, n)
	z := make([]any, n)
	s := make([]any, n)
	r := make([]any, n)
	y := make([]any, n)
	for i := range n {
		switch {
		case i%17 == 0:
			x[i] = nil
		case i%19 == 0:
			x[i] = nan
		default:
			x[i] = float64(i%101) - 3.5
		}
		z[i] = float64(i%37) * 1.25
		if i%13 == 0 {
			s[i] = nil
		} else {
			s[i] = string(rune('a' + i%7))
		}
		r[i] = string(rune('p' + i%5))
		y[i] = int64(i % 2)
	}
	train := []col{{"x", dataset.Float64, x}, {"z", dataset.Float64, z}, {"s", dataset.String, s}, {"r", dataset.String, r}, {"y", dataset.Int64, y}}
	cfg := Recipe{Target: "y", Transforms: []Spec{
		{Kind: "clip", Columns: []string{"x"}, Percentiles: []float64{5, 95}},
		{Kind: "log1p", Columns: []string{"x"}, OnInvalid: "clip"},
		{Kind: "bucketize", Columns: []string{"z"}, Quantiles: 5},
		{Kind: "ordinal", Columns: []string{"r"}, MaxCategories: 3, HandleUnknown: "as_category"},
		{Kind: "minmax", Columns: []string{"r"}},
		{Kind: "impute", Columns: []string{"s"}, Strategy: "mode"},
		{Kind: "onehot", Columns: []string{"s"}, MaxCategories: 4, HandleUnknown: "as_category"},
		{Kind: "impute", Columns: []string{"*"}, Strategy: "median"},
		{Kind: "standardize", Columns: []string{"z"}},
	}}
	f, err := Fit(cfg, schemaOf(train...), record(t, train...))
	if err != nil {
		t.Fatal(err)
	}
	g := roundTrip(t, f)
	test := train[:4]
	batch, err := f.Apply(record(t, test...))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := g.ApplyRows(rowsOf(test...))
	if err != nil {
		t.Fatal(err)
	}
	sameMatrix(t, batch, rows)
	for j, c := range batch.Cols {
		for i, v := range c {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s row %d = %v after imputing everything", batch.Features[j], i, v)
			}
		}
	}
}

// TestTransformFitErrors covers fitting failures of the newer kinds.
func TestTransformFitErrors(t *testing.T) {
	neg := []col{
		{"x", dataset.Float64, []any{-2.0, 1.0, 3.0}},
		{"s", dataset.String, []any{"a", "b", "a"}},
		{"y", dataset.Int64, []any{int64(0), int64(1), int64(0)}},
	}
	enc := Spec{Kind: "onehot", Columns: []string{"s"}}
	tests := []struct {
		name string
		cols []col
		tr   Spec
		want string
	}{
		{"log1p training value <= -1", neg, Spec{Kind: "log1p", Columns: []string{"x"}}, "training value -2 is <= -1"},
		{"minmax on a string", neg, Spec{Kind: "minmax", Columns: []string{"s"}}, "minmax applies to numeric columns"},
		{"ordinal on a number", neg, Spec{Kind: "ordinal", Columns: []string{"x"}}, "ordinal applies to string columns"},
		{"onehot error on a training null", []col{neg[0], {"s", dataset.String, []any{"a", nil, "a"}}, neg[2]}, Spec{Kind: "onehot", Columns: []string{"s"}, HandleUnknown: "error"}, "row 1: null value (handle_unknown: error; impute the column first)"},
		{"onehot error on a category beyond the limit", neg, Spec{Kind: "onehot", Columns: []string{"s"}, MaxCategories: 1, HandleUnknown: "error"}, `row 1: unknown category "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trs := []Spec{tc.tr}
			if tc.tr.Columns[0] != "s" {
				trs = append(trs, enc)
			}
			_, err := Fit(Recipe{Target: "y", Transforms: trs}, schemaOf(tc.cols...), record(t, tc.cols...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestValidateNewKinds checks that decoded bundles with broken parameters of
// the newer kinds are rejected.
func TestValidateNewKinds(t *testing.T) {
	in := []dataset.Field{{Name: "x", Type: dataset.Float64}, {Name: "s", Type: dataset.String}}
	tests := []struct {
		name  string
		steps []Step
		feats []string
		want  string
	}{
		{"minmax zero range", []Step{{Kind: KindMinMax, Column: "x", Range: 0}, {Kind: KindOrdinal, Column: "s", Categories: []string{"a"}}}, []string{"x", "s"}, "range > 0"},
		{"bucketize unsorted", []Step{{Kind: KindBucketize, Column: "x", Boundaries: []float64{2, 1}}, {Kind: KindOrdinal, Column: "s", Categories: []string{"a"}}}, []string{"x", "s"}, "not strictly increasing"},
		{"clip no bounds", []Step{{Kind: KindClip, Column: "x"}, {Kind: KindOrdinal, Column: "s", Categories: []string{"a"}}}, []string{"x", "s"}, "no bounds"},
		{"log1p clip without low", []Step{{Kind: KindLog1p, Column: "x", OnInvalid: InvalidClip}, {Kind: KindOrdinal, Column: "s", Categories: []string{"a"}}}, []string{"x", "s"}, "low bound above -1"},
		{"bad handle_unknown", []Step{{Kind: KindOrdinal, Column: "s", Categories: []string{"a"}, HandleUnknown: "skip"}}, []string{"x", "s"}, "unknown handle_unknown"},
		{"as_category feature missing", []Step{{Kind: KindOnehot, Column: "s", Categories: []string{"a"}, HandleUnknown: UnknownAsCategory}}, []string{"x", "s=a"}, "steps produce 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fitted{Inputs: in, Steps: tc.steps, Features: tc.feats}
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
