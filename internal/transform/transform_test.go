package transform

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// col is a test column: values are float64, int64, bool, string or nil (null).
type col struct {
	name string
	typ  dataset.Type
	vals []any
}

// record builds an Arrow record from test columns.
func record(t testing.TB, cols ...col) arrow.Record {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		var b array.Builder
		switch c.typ {
		case dataset.Float64:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
			fb := array.NewFloat64Builder(mem)
			for _, v := range c.vals {
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(float64))
				}
			}
			b = fb
		case dataset.Int64:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
			ib := array.NewInt64Builder(mem)
			for _, v := range c.vals {
				if v == nil {
					ib.AppendNull()
				} else {
					ib.Append(v.(int64))
				}
			}
			b = ib
		case dataset.Bool:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.FixedWidthTypes.Boolean, Nullable: true}
			bb := array.NewBooleanBuilder(mem)
			for _, v := range c.vals {
				if v == nil {
					bb.AppendNull()
				} else {
					bb.Append(v.(bool))
				}
			}
			b = bb
		case dataset.String:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true}
			sb := array.NewStringBuilder(mem)
			for _, v := range c.vals {
				if v == nil {
					sb.AppendNull()
				} else {
					sb.Append(v.(string))
				}
			}
			b = sb
		default:
			t.Fatalf("bad type %q", c.typ)
		}
		arrs[i] = b.NewArray()
		b.Release()
	}
	n := 0
	if len(cols) > 0 {
		n = len(cols[0].vals)
	}
	rec := array.NewRecord(arrow.NewSchema(fields, nil), arrs, int64(n))
	t.Cleanup(rec.Release)
	return rec
}

// schemaOf returns the dataset schema of test columns.
func schemaOf(cols ...col) dataset.Schema {
	var s dataset.Schema
	for _, c := range cols {
		s.Fields = append(s.Fields, dataset.Field{Name: c.name, Type: c.typ})
	}
	return s
}

// rowsOf converts test columns into JSON-like rows; nulls are left out or
// set to nil alternately, which must mean the same.
func rowsOf(cols ...col) []map[string]any {
	n := len(cols[0].vals)
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{}
		for _, c := range cols {
			v := c.vals[i]
			if v == nil {
				if i%2 == 0 {
					rows[i][c.name] = nil
				}
				continue
			}
			if x, ok := v.(int64); ok {
				rows[i][c.name] = float64(x) // as encoding/json decodes it
				continue
			}
			rows[i][c.name] = v
		}
	}
	return rows
}

var nan = math.NaN()

// churn is a small training set with every column type, nulls and an ID.
var churn = []col{
	{"id", dataset.Int64, []any{int64(1), int64(2), int64(3), int64(4), int64(5), int64(6)}},
	{"plan", dataset.String, []any{"basic", "pro", "basic", nil, "enterprise", "pro"}},
	{"tenure", dataset.Int64, []any{int64(1), int64(3), nil, int64(7), int64(3), int64(10)}},
	{"charges", dataset.Float64, []any{10.0, 20.0, nan, 40.0, nil, 30.0}},
	{"active", dataset.Bool, []any{true, false, true, nil, true, false}},
	{"churn", dataset.Int64, []any{int64(0), int64(1), int64(0), int64(1), int64(0), int64(1)}},
}

var churnCfg = Recipe{
	Target:  "churn",
	Exclude: []string{"id"},
	Transforms: []Spec{
		{Kind: "impute", Columns: []string{"tenure"}, Strategy: "median"},
		{Kind: "impute", Columns: []string{"charges"}, Strategy: "mean"},
		{Kind: "impute", Columns: []string{"plan"}},
		{Kind: "standardize", Columns: []string{"*"}},
		{Kind: "onehot", Columns: []string{"*"}, MaxCategories: 2},
	},
}

func fitChurn(t *testing.T) *Fitted {
	t.Helper()
	f, err := Fit(churnCfg, schemaOf(churn...), record(t, churn...))
	if err != nil {
		t.Fatalf("Fit: %v", err)
	}
	return f
}

func TestFitGolden(t *testing.T) {
	f := fitChurn(t)
	got, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "churn_fitted.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("fitted transforms differ from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestFitParameters(t *testing.T) {
	f := fitChurn(t)
	wantFeatures := []string{"plan=basic", "plan=pro", "tenure", "charges", "active"}
	if strings.Join(f.Features, ",") != strings.Join(wantFeatures, ",") {
		t.Fatalf("features = %v, want %v", f.Features, wantFeatures)
	}
	wantInputs := []dataset.Field{{Name: "plan", Type: dataset.String}, {Name: "tenure", Type: dataset.Int64}, {Name: "charges", Type: dataset.Float64}, {Name: "active", Type: dataset.Bool}}
	if len(f.Inputs) != len(wantInputs) {
		t.Fatalf("inputs = %v, want %v", f.Inputs, wantInputs)
	}
	for i := range wantInputs {
		if f.Inputs[i] != wantInputs[i] {
			t.Fatalf("inputs = %v, want %v", f.Inputs, wantInputs)
		}
	}
	// tenure median of {1,3,7,3,10} = 3; charges mean of {10,20,40,30} = 25;
	// plan most frequent: basic and pro twice each, basic wins the tie.
	// After imputing, tenure = {1,3,3,7,3,10}: mean 4.5, population std
	// sqrt((12.25+2.25+2.25+6.25+2.25+30.25)/6) = sqrt(55.5/6).
	// charges = {10,20,25,40,25,30}: mean 25, std sqrt((225+25+0+225+0+25)/6).
	// active = {1,0,1,NaN,1,0}: mean 0.6, std sqrt(0.24).
	// Onehot: basic 3 (after imputing), pro 2, enterprise 1; 2 kept.
	type num struct {
		kind, column string
		value        float64
		mean, std    float64
	}
	want := []num{
		{kind: "impute", column: "tenure", value: 3},
		{kind: "impute", column: "charges", value: 25},
		{kind: "impute", column: "plan"},
		{kind: "standardize", column: "tenure", mean: 4.5, std: math.Sqrt(55.5 / 6)},
		{kind: "standardize", column: "charges", mean: 25, std: math.Sqrt(500.0 / 6)},
		{kind: "standardize", column: "active", mean: 0.6, std: math.Sqrt(0.24)},
		{kind: "onehot", column: "plan"},
	}
	if len(f.Steps) != len(want) {
		t.Fatalf("got %d steps, want %d: %+v", len(f.Steps), len(want), f.Steps)
	}
	for i, w := range want {
		s := f.Steps[i]
		if s.Kind != w.kind || s.Column != w.column {
			t.Errorf("step %d = %s %s, want %s %s", i, s.Kind, s.Column, w.kind, w.column)
			continue
		}
		switch {
		case s.Kind == "impute" && s.Column == "plan":
			if s.Text == nil || *s.Text != "basic" || s.Strategy != "most_frequent" {
				t.Errorf("plan impute = %+v, want most_frequent basic", s)
			}
		case s.Kind == "impute":
			if s.Number == nil || *s.Number != w.value {
				t.Errorf("step %d fill = %v, want %v", i, s.Number, w.value)
			}
		case s.Kind == "standardize":
			if !close(s.Mean, w.mean) || !close(s.Std, w.std) {
				t.Errorf("step %d mean, std = %v, %v; want %v, %v", i, s.Mean, s.Std, w.mean, w.std)
			}
		case s.Kind == "onehot":
			if strings.Join(s.Categories, ",") != "basic,pro" {
				t.Errorf("categories = %v, want [basic pro]", s.Categories)
			}
		}
	}
}

func close(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestApply(t *testing.T) {
	f := fitChurn(t)
	score := []col{
		{"plan", dataset.String, []any{"pro", "enterprise", nil, "basic", "unseen"}},
		{"tenure", dataset.Int64, []any{int64(3), nil, int64(10), int64(1), int64(4)}},
		{"charges", dataset.Float64, []any{25.0, 10.0, nil, nan, 40.0}},
		{"active", dataset.Bool, []any{true, false, nil, true, false}},
	}
	m, err := f.Apply(record(t, score...))
	if err != nil {
		t.Fatal(err)
	}
	st := func(x, mean, std float64) float64 { return (x - mean) / std }
	// The fitted means and stds are checked by TestFitParameters; here the
	// arithmetic must match exactly.
	tm, ts := f.Steps[3].Mean, f.Steps[3].Std
	cm, cs := f.Steps[4].Mean, f.Steps[4].Std
	am, as := f.Steps[5].Mean, f.Steps[5].Std
	// Rows: plan nulls impute to basic; enterprise and unseen are unknown.
	want := [][]float64{
		{0, 0, 1, 1, 0}, // plan=basic
		{1, 0, 0, 0, 0}, // plan=pro
		{st(3, tm, ts), st(3, tm, ts), st(10, tm, ts), st(1, tm, ts), st(4, tm, ts)}, // tenure
		{st(25, cm, cs), st(10, cm, cs), st(25, cm, cs), st(25, cm, cs), st(40, cm, cs)},
		{st(1, am, as), st(0, am, as), nan, st(1, am, as), st(0, am, as)}, // active not imputed
	}
	if m.Rows != 5 || len(m.Cols) != len(want) {
		t.Fatalf("matrix is %d rows × %d cols, want 5 × %d", m.Rows, len(m.Cols), len(want))
	}
	for j := range want {
		for i := range want[j] {
			g, w := m.Cols[j][i], want[j][i]
			if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && g != w) {
				t.Errorf("%s row %d = %v, want %v", m.Features[j], i, g, w)
			}
		}
	}
	if j := f.FeatureIndex("charges"); j != 3 {
		t.Errorf("FeatureIndex(charges) = %d, want 3", j)
	}
	if j := f.FeatureIndex("nope"); j != -1 {
		t.Errorf("FeatureIndex(nope) = %d, want -1", j)
	}
}

// TestApplyRowsMatchesApply checks that serving and batch scoring give
// bit-identical features, also after a JSON round trip of the transforms.
func TestApplyRowsMatchesApply(t *testing.T) {
	f := fitChurn(t)
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Fitted
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	in := churn[1:5]
	batch, err := f.Apply(record(t, churn...))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := g.ApplyRows(rowsOf(in...))
	if err != nil {
		t.Fatal(err)
	}
	if rows.Rows != batch.Rows || len(rows.Cols) != len(batch.Cols) {
		t.Fatalf("shapes differ: %d×%d vs %d×%d", rows.Rows, len(rows.Cols), batch.Rows, len(batch.Cols))
	}
	for j := range batch.Cols {
		for i := range batch.Cols[j] {
			a, b := batch.Cols[j][i], rows.Cols[j][i]
			if math.Float64bits(a) != math.Float64bits(b) && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Errorf("%s row %d: Apply %v, ApplyRows %v", batch.Features[j], i, a, b)
			}
		}
	}
}

func TestApplyRowsEmpty(t *testing.T) {
	f := fitChurn(t)
	m, err := f.ApplyRows(nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 0 || len(m.Cols) != len(f.Features) {
		t.Errorf("got %d rows, %d cols", m.Rows, len(m.Cols))
	}
}

func TestOnehotOrderAndLimit(t *testing.T) {
	cols := []col{
		{"c", dataset.String, []any{"b", "a", "c", "b", "a", "d", nil, nil, nil}},
		{"y", dataset.Int64, []any{int64(0), int64(1), int64(0), int64(1), int64(0), int64(1), int64(0), int64(1), int64(0)}},
	}
	for _, tc := range []struct {
		max  int
		want string
	}{
		{0, "a,b,c,d"}, // a and b tie at 2 (value order), then c, d tie at 1
		{3, "a,b,c"},
		{1, "a"},
	} {
		cfg := Recipe{Target: "y", Transforms: []Spec{{Kind: "onehot", Columns: []string{"c"}, MaxCategories: tc.max}}}
		f, err := Fit(cfg, schemaOf(cols...), record(t, cols...))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.Steps[0].Categories, ","); got != tc.want {
			t.Errorf("max %d: categories %s, want %s", tc.max, got, tc.want)
		}
		m, err := f.Apply(record(t, cols...))
		if err != nil {
			t.Fatal(err)
		}
		// Nulls (rows 6-8) encode as all zeros.
		for j := range m.Cols {
			for i := 6; i < 9; i++ {
				if m.Cols[j][i] != 0 {
					t.Errorf("max %d: null row %d has %s = %v", tc.max, i, m.Features[j], m.Cols[j][i])
				}
			}
		}
	}
}

func TestImputeStrategies(t *testing.T) {
	cols := []col{
		{"x", dataset.Float64, []any{4.0, 1.0, nil, 1.0, 4.0, 2.0, nan}},
		{"s", dataset.String, []any{"q", nil, "p", "q", "p", nil, "r"}},
		{"y", dataset.Int64, []any{int64(0), int64(1), int64(0), int64(1), int64(0), int64(1), int64(0)}},
	}
	// x's values are {4,1,1,4,2}; s's are {q,p,q,p,r}. The default is median.
	tests := []struct {
		name     string
		strategy string
		value    any
		wantX    float64
		xErr     string
		wantS    string
		sErr     string
	}{
		{name: "default", wantX: 2, wantS: "p"},
		{name: "mean", strategy: "mean", wantX: 2.4, wantS: "p"},
		{name: "median", strategy: "median", wantX: 2, wantS: "p"},
		{name: "most_frequent ties smallest", strategy: "most_frequent", wantX: 1, wantS: "p"},
		{name: "constant int", strategy: "constant", value: -1, wantX: -1, sErr: "must be a string"},
		{name: "constant float", strategy: "constant", value: 0.5, wantX: 0.5, sErr: "must be a string"},
		{name: "constant string", strategy: "constant", value: "zz", xErr: "must be a number", wantS: "zz"},
		{name: "constant missing", strategy: "constant", xErr: "needs a value", sErr: "must be a string"},
		{name: "mode is most_frequent", strategy: "mode", wantX: 1, wantS: "p"},
		{name: "bad strategy", strategy: "average", xErr: `unknown strategy "average"`, sErr: `unknown strategy "average"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				column, wantErr string
			}{{"x", tc.xErr}, {"s", tc.sErr}} {
				cfg := Recipe{Target: "y", Transforms: []Spec{
					{Kind: "impute", Columns: []string{c.column}, Strategy: tc.strategy, Value: tc.value},
					{Kind: "onehot", Columns: []string{"*"}},
				}}
				f, err := Fit(cfg, schemaOf(cols...), record(t, cols...))
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "column "+c.column) {
						t.Errorf("%s: err = %v, want one containing %q and the column", c.column, err, c.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", c.column, err)
				}
				s := f.Steps[0]
				if c.column == "x" && (s.Number == nil || *s.Number != tc.wantX) {
					t.Errorf("x fill = %v, want %v", s.Number, tc.wantX)
				}
				if c.column == "s" && (s.Text == nil || *s.Text != tc.wantS) {
					t.Errorf("s fill = %v, want %q", s.Text, tc.wantS)
				}
			}
		})
	}
}

func TestStandardizeConstantColumn(t *testing.T) {
	cols := []col{
		{"x", dataset.Float64, []any{5.0, 5.0, 5.0}},
		{"y", dataset.Int64, []any{int64(0), int64(1), int64(0)}},
	}
	cfg := Recipe{Target: "y", Transforms: []Spec{{Kind: "standardize", Columns: []string{"x"}}}}
	f, err := Fit(cfg, schemaOf(cols...), record(t, cols...))
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Steps[0]; s.Mean != 5 || s.Std != 1 {
		t.Errorf("mean, std = %v, %v; want 5, 1", s.Mean, s.Std)
	}
}

func TestFitErrors(t *testing.T) {
	tr := func(kind string, cols ...string) Spec {
		return Spec{Kind: kind, Columns: cols}
	}
	allNull := []col{
		{"x", dataset.Float64, []any{nil, nan}},
		{"s", dataset.String, []any{nil, nil}},
		{"y", dataset.Int64, []any{int64(0), int64(1)}},
	}
	tests := []struct {
		name string
		cfg  Recipe
		data []col
		want string
	}{
		{"string not encoded", Recipe{Target: "churn", Exclude: []string{"id"}}, churn,
			"column plan is a string; add it to onehot or exclude it"},
		{"no target", Recipe{Exclude: []string{"id"}}, churn, "no target column"},
		{"target missing", Recipe{Target: "label"}, churn, `target column "label" is not in the dataset`},
		{"exclude missing", Recipe{Target: "churn", Exclude: []string{"ID"}}, churn, `excluded column "ID" is not in the dataset`},
		{"unknown column", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("standardize", "tenur")}}, churn,
			`transforms[0] (standardize): no column "tenur"`},
		{"transform of target", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("standardize", "churn")}}, churn,
			"column churn is the target"},
		{"transform of excluded", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("standardize", "id")}}, churn,
			"column id is excluded"},
		{"unknown kind", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("scale", "tenure")}}, churn,
			`unknown transform "scale"`},
		{"no columns", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("standardize")}}, churn,
			"no columns"},
		{"star with others", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("standardize", "*", "tenure")}}, churn,
			`"*" must be the only column`},
		{"standardize string", Recipe{Target: "churn", Exclude: []string{"id"}, Transforms: []Spec{tr("standardize", "plan")}}, churn,
			"column plan: column is a string; standardize applies to numeric columns"},
		{"onehot number", Recipe{Target: "churn", Exclude: []string{"id", "plan"}, Transforms: []Spec{tr("onehot", "tenure")}}, churn,
			"column tenure: column is numeric; onehot applies to string columns: to encode its values as categories (codes such as 1, 2, 3), read it as text with the ingest step's schema: {tenure: string}"},
		{"onehot twice", Recipe{Target: "churn", Exclude: []string{"id"}, Transforms: []Spec{tr("onehot", "plan"), tr("onehot", "plan")}}, churn,
			"transforms[1] (onehot): column plan: column is already one-hot encoded"},
		{"negative max categories", Recipe{Target: "churn", Exclude: []string{"id"}, Transforms: []Spec{{Kind: "onehot", Columns: []string{"plan"}, MaxCategories: -1}}}, churn,
			"max_categories -1 must be positive"},
		{"impute all null", Recipe{Target: "y", Exclude: []string{"s"}, Transforms: []Spec{tr("impute", "x")}}, allNull,
			"column x: no non-null values in the training rows"},
		{"standardize all null", Recipe{Target: "y", Exclude: []string{"s"}, Transforms: []Spec{tr("standardize", "x")}}, allNull,
			"column x: no non-null values in the training rows"},
		{"onehot all null", Recipe{Target: "y", Exclude: []string{"x"}, Transforms: []Spec{tr("onehot", "s")}}, allNull,
			"column s: no non-null values in the training rows"},
		{"only target", Recipe{Target: "y", Exclude: []string{"x", "s"}}, allNull, "no feature columns"},
		{"infinite mean", Recipe{Target: "y", Transforms: []Spec{tr("standardize", "x")}}, []col{
			{"x", dataset.Float64, []any{math.Inf(1), 1.0}}, {"y", dataset.Int64, []any{int64(0), int64(1)}}}, "not finite"},
		{"name collision", Recipe{Target: "y", Transforms: []Spec{tr("onehot", "s")}}, []col{
			{"s", dataset.String, []any{"a", "b"}}, {"s=a", dataset.Float64, []any{1.0, 2.0}}, {"y", dataset.Int64, []any{int64(0), int64(1)}}},
			`feature name "s=a" occurs twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Fit(tc.cfg, schemaOf(tc.data...), record(t, tc.data...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	f := fitChurn(t)
	good := churn[1:5]
	replace := func(c col) []col {
		out := append([]col(nil), good...)
		for i := range out {
			if out[i].name == c.name {
				out[i] = c
			}
		}
		return out
	}
	tests := []struct {
		name string
		cols []col
		want string
	}{
		{"missing column", good[1:], `missing input column "plan"`},
		{"string as number", replace(col{"tenure", dataset.String, []any{"1", "2", "3", "4", "5", "6"}}), `column "tenure" has type utf8, want int64`},
		{"number as string", replace(col{"plan", dataset.Float64, []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}}), `column "plan" has type float64, want string`},
		{"bool as number", replace(col{"active", dataset.Int64, []any{int64(1), int64(0), int64(1), int64(0), int64(1), int64(0)}}), `column "active" has type int64, want bool`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Apply(record(t, tc.cols...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Numeric inputs accept either numeric Arrow type.
	if _, err := f.Apply(record(t, replace(col{"tenure", dataset.Float64, []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}})...)); err != nil {
		t.Errorf("float64 for an int64 input: %v", err)
	}
}

func TestApplyRowsErrors(t *testing.T) {
	f := fitChurn(t)
	ok := map[string]any{"plan": "pro", "tenure": 3.0, "charges": 10.0, "active": true}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		row  map[string]any
		want string
	}{
		{"number as string", with("tenure", "3"), `row 1: column "tenure": want a number, got string "3"`},
		{"string as number", with("plan", 2.0), `row 1: column "plan": want a string, got number 2`},
		{"bool as number", with("active", 1.0), `row 1: column "active": want a bool, got number 1`},
		{"object", with("charges", map[string]any{}), `row 1: column "charges": want a number, got an object`},
		{"number as bool", with("charges", true), `row 1: column "charges": want a number, got bool true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ApplyRows([]map[string]any{ok, tc.row})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	f64 := func(x float64) *float64 { return &x }
	str := func(s string) *string { return &s }
	in := []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "s", Type: dataset.String}}
	tests := []struct {
		name string
		f    Fitted
		want string
	}{
		{"ok", Fitted{Inputs: in, Steps: []Step{{Kind: "onehot", Column: "s", Categories: []string{"x", "y"}}}, Features: []string{"a", "s=x", "s=y"}}, ""},
		{"no inputs", Fitted{}, "no inputs"},
		{"duplicate input", Fitted{Inputs: []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "a", Type: dataset.Int64}}, Features: []string{"a", "a"}}, `input "a" is listed twice`},
		{"bad type", Fitted{Inputs: []dataset.Field{{Name: "a", Type: "date"}}, Features: []string{"a"}}, `input "a" has unknown type "date"`},
		{"string left", Fitted{Inputs: in, Features: []string{"a"}}, "column s is a string"},
		{"unknown column", Fitted{Inputs: in, Steps: []Step{{Kind: "impute", Column: "b", Number: f64(1)}}}, `no input column "b"`},
		{"unknown kind", Fitted{Inputs: in, Steps: []Step{{Kind: "scale", Column: "a"}}}, `unknown kind "scale"`},
		{"numeric fill for string", Fitted{Inputs: in, Steps: []Step{{Kind: "impute", Column: "s", Number: f64(1)}}}, "needs a string fill value"},
		{"missing fill", Fitted{Inputs: in, Steps: []Step{{Kind: "impute", Column: "a"}}}, "needs a numeric fill value"},
		{"string fill for number", Fitted{Inputs: in, Steps: []Step{{Kind: "impute", Column: "a", Text: str("x")}}}, "needs a numeric fill value"},
		{"zero std", Fitted{Inputs: in, Steps: []Step{{Kind: "standardize", Column: "a"}}}, "std > 0"},
		{"no categories", Fitted{Inputs: in, Steps: []Step{{Kind: "onehot", Column: "s"}}}, "no categories"},
		{"duplicate category", Fitted{Inputs: in, Steps: []Step{{Kind: "onehot", Column: "s", Categories: []string{"x", "x"}}}}, `category "x" is listed twice`},
		{"feature count", Fitted{Inputs: in, Steps: []Step{{Kind: "onehot", Column: "s", Categories: []string{"x"}}}, Features: []string{"a"}}, "features lists 1 names but the steps produce 2"},
		{"feature order", Fitted{Inputs: in, Steps: []Step{{Kind: "onehot", Column: "s", Categories: []string{"x"}}}, Features: []string{"s=x", "a"}}, `features[0] is "s=x" but the steps produce "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestApplyRejectsInconsistentFeatures checks that Apply does not trust a
// Fitted whose feature list disagrees with its steps.
func TestApplyRejectsInconsistentFeatures(t *testing.T) {
	f := fitChurn(t)
	g := *f
	g.Features = append([]string(nil), f.Features...)
	g.Features[0], g.Features[1] = g.Features[1], g.Features[0]
	if _, err := g.Apply(record(t, churn...)); err == nil || !strings.Contains(err.Error(), "do not produce the recorded features") {
		t.Errorf("err = %v, want a feature mismatch", err)
	}
}

func BenchmarkApply(b *testing.B) {
	const n = 200_000
	plans := []string{"basic", "pro", "enterprise", "trial"}
	x := make([]any, n)
	p := make([]any, n)
	y := make([]any, n)
	for i := range x {
		x[i] = float64(i % 97)
		p[i] = plans[i%len(plans)]
		y[i] = int64(i % 2)
	}
	cols := []col{{"x", dataset.Float64, x}, {"plan", dataset.String, p}, {"y", dataset.Int64, y}}
	cfg := Recipe{Target: "y", Transforms: []Spec{
		{Kind: "impute", Columns: []string{"*"}},
		{Kind: "standardize", Columns: []string{"*"}},
		{Kind: "onehot", Columns: []string{"*"}},
	}}
	rec := record(b, cols...)
	f, err := Fit(cfg, schemaOf(cols...), rec)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Apply(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestApplyNullsAndOffsets exercises the block-wise Arrow path on a record
// longer than a block, sliced so that its arrays start mid-byte, with nulls
// scattered at random: Apply must agree with ApplyRows (which reads the
// values one by one) and with values computed here.
func TestApplyNullsAndOffsets(t *testing.T) {
	const n = 3*block + 77
	rng := rand.New(rand.NewPCG(1, 2))
	x, k, b, s, y := make([]any, n), make([]any, n), make([]any, n), make([]any, n), make([]any, n)
	for i := range x {
		x[i], k[i], b[i], s[i], y[i] = rng.Float64()*10, int64(rng.IntN(100)), rng.IntN(2) == 0, []string{"u", "v", "w"}[rng.IntN(3)], int64(i%2)
		// Runs of valid values (whole bitmap bytes) and scattered nulls.
		if rng.IntN(10) == 0 || (i > 1000 && i < 1010) {
			x[i] = nil
		}
		if rng.IntN(7) == 0 {
			k[i] = nil
		}
		if rng.IntN(5) == 0 {
			b[i] = nil
		}
		if rng.IntN(9) == 0 {
			s[i] = nil
		}
	}
	cols := []col{{"x", dataset.Float64, x}, {"k", dataset.Int64, k}, {"b", dataset.Bool, b}, {"s", dataset.String, s}, {"y", dataset.Int64, y}}
	cfg := Recipe{Target: "y", Transforms: []Spec{
		{Kind: "impute", Columns: []string{"k"}, Strategy: "mean"},
		{Kind: "standardize", Columns: []string{"*"}},
		{Kind: "onehot", Columns: []string{"s"}},
	}}
	full := record(t, cols...)
	f, err := Fit(cfg, schemaOf(cols...), full)
	if err != nil {
		t.Fatal(err)
	}
	const lo, hi = 3, n - 5
	sliced := full.NewSlice(lo, hi)
	defer sliced.Release()
	got, err := f.Apply(sliced)
	if err != nil {
		t.Fatal(err)
	}
	var sub []col
	for _, c := range cols {
		sub = append(sub, col{c.name, c.typ, c.vals[lo:hi]})
	}
	rows, err := f.ApplyRows(rowsOf(sub...))
	if err != nil {
		t.Fatal(err)
	}
	step := func(column, kind string) Step {
		for _, s := range f.Steps {
			if s.Column == column && s.Kind == kind {
				return s
			}
		}
		t.Fatalf("no %s step for %s", kind, column)
		return Step{}
	}
	num := func(v any) float64 {
		switch v := v.(type) {
		case nil:
			return nan
		case float64:
			return v
		case int64:
			return float64(v)
		case bool:
			if v {
				return 1
			}
			return 0
		}
		panic(v)
	}
	kFill := *step("k", "impute").Number
	for i := 0; i < hi-lo; i++ {
		r := lo + i
		want := map[string]float64{}
		for _, name := range []string{"x", "k", "b"} {
			v := num(map[string][]any{"x": x, "k": k, "b": b}[name][r])
			if name == "k" && math.IsNaN(v) {
				v = kFill
			}
			st := step(name, "standardize")
			want[name] = (v - st.Mean) / st.Std
		}
		for _, c := range step("s", "onehot").Categories {
			want["s="+c] = 0
			if s[r] == c {
				want["s="+c] = 1
			}
		}
		for j, name := range got.Features {
			g, w, rr := got.Cols[j][i], want[name], rows.Cols[j][i]
			same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
			if !same(g, w) || !same(g, rr) {
				t.Fatalf("row %d %s: Apply %v, ApplyRows %v, want %v", r, name, g, rr, w)
			}
		}
	}
}
