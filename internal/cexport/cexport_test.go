package cexport

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/gbdt/gbdtdata"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// gccFlags are the flags the generated code and the test harness must
// compile cleanly with; the generated code also with strictFlags.
var (
	gccFlags    = []string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"}
	strictFlags = []string{"-Wconversion", "-Wdouble-promotion", "-Wshadow", "-Wstrict-prototypes",
		"-Wmissing-prototypes", "-Wcast-qual", "-Wundef", "-Wredundant-decls"}
)

// testRows is how many rows every model is checked on.
const testRows = 10000

// exportCase is a model and the rows to check its C export on.
type exportCase struct {
	name string
	// build returns the model and its test rows (decoded JSON rows:
	// float64, bool, string or nil values).
	build func(t *testing.T) (*model.Model, []map[string]any)
	// wantCodes lists return codes some rows must produce.
	wantCodes []int
	// goPredict, when set, replaces Model.PredictRows as the Go reference.
	goPredict func(m *model.Model, rows []map[string]any) ([]float64, error)
	// check runs extra checks on the model's C predictions.
	check func(t *testing.T, m *model.Model, rows []map[string]any, got []cResult)
}

// TestGenerateMatchesGo compiles each model's C export with gcc and checks
// its features and predictions on 10,000 rows with missing values (and
// unknown categories, invalid values, infinities and split thresholds)
// against Kiln's Go predictions: the same return code for every row,
// bit-identical features, bit-identical predictions (probabilities too: the
// C sigmoid is a port of internal/detmath's), and the batch function equal
// to the row function.
func TestGenerateMatchesGo(t *testing.T) {
	gcc := needGCC(t)
	for _, tc := range []exportCase{
		{name: "breast cancer gbdt", build: breastCancerGBDT},
		{name: "churn logistic", build: churnLogistic(false)},
		{name: "churn logistic strict", build: churnLogistic(true),
			wantCodes: []int{codeUnknownCategory, codeInvalidLog1p, codeMissing, codeNonFinite}},
		{name: "diabetes linear", build: diabetesLinear},
		{name: "diabetes gbdt regression", build: diabetesGBDT},
		{name: "xgboost 1.7 binary", build: xgboostFixture("binary.json", model.TaskBinary), check: checkXGBoostFixture("binary.json")},
		{name: "xgboost 1.7 regression", build: xgboostFixture("regression.json", model.TaskRegression), check: checkXGBoostFixture("regression.json")},
		{name: "deep trees", build: deepGBDT, check: checkDeep},
		{name: "edge trees", build: edgeTrees, goPredict: edgePredict},
		{name: "log1p and bucketize ranges", build: rangesLinear, wantCodes: []int{codeInvalidLog1p}},
		{name: "sigmoid ranges", build: sigmoidLogistic, wantCodes: []int{codeNonFinite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rows := tc.build(t)
			files, err := Generate(m, Options{Prefix: "kiln_test_model"})
			if err != nil {
				t.Fatal(err)
			}
			bin := buildHarness(t, gcc, files)
			rowsFile := writeRows(t, files, rows)

			// Features, bit for bit.
			feats := runFeatures(t, bin, rowsFile, len(rows), len(m.Manifest.Transforms.Features))
			for i, r := range rows {
				x, err := m.Manifest.Transforms.ApplyRows([]map[string]any{r})
				want := codeOK
				if err != nil {
					want = goCode(t, err)
				}
				if feats[i].code != want {
					t.Fatalf("row %d %v: C features return %d, Go %d (%v)", i, r, feats[i].code, want, err)
				}
				if err != nil {
					continue
				}
				for j, c := range x.Cols {
					if !sameBits(c[0], feats[i].f[j]) {
						t.Fatalf("row %d %v: feature %q is %v in C, %v in Go", i, r, x.Features[j], feats[i].f[j], c[0])
					}
				}
			}

			// Predictions.
			got, batchCode, batchFirst := runPredict(t, bin, rowsFile, len(rows))
			goPredict := tc.goPredict
			if goPredict == nil {
				goPredict = (*model.Model).PredictRows
			}
			codes := map[int]int{}
			firstBad := len(rows)
			var okRows []map[string]any
			var okWant []float64
			for i, r := range rows {
				out, err := goPredict(m, []map[string]any{r})
				want := codeOK
				if err != nil {
					want = goCode(t, err)
				}
				g := got[i]
				codes[g.code]++
				if g.code != want {
					t.Fatalf("row %d %v: C returns %d, Go %d (%v)", i, r, g.code, want, err)
				}
				if !sameBits(g.value, g.batch) {
					t.Fatalf("row %d: predict %v, predict_batch %v", i, g.value, g.batch)
				}
				if err != nil {
					firstBad = min(firstBad, i)
					if !math.IsNaN(g.value) {
						t.Fatalf("row %d: error %d with prediction %v, want NaN", i, g.code, g.value)
					}
					continue
				}
				okRows, okWant = append(okRows, r), append(okWant, out[0])
				if !sameBits(g.value, out[0]) {
					t.Fatalf("row %d %v: C %.17g (%#x), Go %.17g (%#x): want the same bits", i, r,
						g.value, math.Float64bits(g.value), out[0], math.Float64bits(out[0]))
				}
			}
			wantBatch := codeOK
			if firstBad < len(rows) {
				wantBatch = got[firstBad].code
			}
			if batchCode != wantBatch || batchFirst != firstBad {
				t.Errorf("predict_batch returns %d, first error %d; want %d, %d", batchCode, batchFirst, wantBatch, firstBad)
			}
			t.Logf("%d rows: %d scored, all bit-identical to Go; return codes %v", len(rows), len(okRows), codes)
			if len(okRows) < len(rows)/2 {
				t.Errorf("only %d of %d rows scored", len(okRows), len(rows))
			}
			for _, c := range tc.wantCodes {
				if codes[c] == 0 {
					t.Errorf("no row returned code %d (%v)", c, codes)
				}
			}
			// Go scores the rows as a batch as it does one by one: the
			// rows are a valid reference for both paths.
			batch, err := goPredict(m, okRows)
			if err != nil {
				t.Fatal(err)
			}
			for i := range batch {
				if !sameBits(batch[i], okWant[i]) {
					t.Fatalf("Go batch row %d: %v, alone %v", i, batch[i], okWant[i])
				}
			}
			if tc.check != nil {
				tc.check(t, m, rows, got)
			}
		})
	}
}

// TestGenerateRefuses checks that what the C export cannot express is
// refused with an error naming it.
func TestGenerateRefuses(t *testing.T) {
	churn := func(t *testing.T) *model.Model { m, _ := churnLogistic(false)(t); return m }
	gbdtModel := func(t *testing.T) *model.Model {
		m, _ := xgboostFixture("regression.json", model.TaskRegression)(t)
		return m
	}
	for _, tt := range []struct {
		name  string
		model func(t *testing.T) *model.Model
		opts  Options
		want  string
	}{
		{"unknown transform kind", func(t *testing.T) *model.Model {
			m := churn(t)
			m.Manifest.Transforms.Steps[len(m.Manifest.Transforms.Steps)-1].Kind = "sqrt"
			return m
		}, Options{}, `"sqrt"`},
		{"unknown handle_unknown", func(t *testing.T) *model.Model {
			m := churn(t)
			for i := range m.Manifest.Transforms.Steps {
				if s := &m.Manifest.Transforms.Steps[i]; s.Kind == transform.KindOnehot {
					s.HandleUnknown = "most_similar"
				}
			}
			return m
		}, Options{}, `"most_similar"`},
		{"numeric spellings", func(t *testing.T) *model.Model {
			m := churn(t)
			for i := range m.Manifest.Transforms.Steps {
				if s := &m.Manifest.Transforms.Steps[i]; s.Kind == transform.KindOnehot {
					s.NumericSpellings = true
				}
			}
			return m
		}, Options{}, "numeric_spellings"},
		{"unknown input type", func(t *testing.T) *model.Model {
			m := churn(t)
			m.Manifest.Transforms.Inputs = slices.Clone(m.Manifest.Transforms.Inputs)
			m.Manifest.Transforms.Inputs[len(m.Manifest.Transforms.Inputs)-1].Type = "timestamp"
			return m
		}, Options{}, `"timestamp"`},
		{"unknown objective", func(t *testing.T) *model.Model {
			m := gbdtModel(t)
			m.Predictor().(*model.XGBoost).Booster().Objective = "reg:pseudohubererror"
			return m
		}, Options{}, `"reg:pseudohubererror"`},
		{"unknown estimator type", func(t *testing.T) *model.Model {
			m := gbdtModel(t)
			m.Manifest.Estimator.Type = "catboost"
			return m
		}, Options{}, `"catboost"`},
		{"no estimator", func(t *testing.T) *model.Model {
			return &model.Model{Manifest: churn(t).Manifest}
		}, Options{}, "no estimator"},
		{"output", func(t *testing.T) *model.Model {
			m := churn(t)
			m.Manifest.Output = model.OutputValue
			return m
		}, Options{}, `output is "value"`},
		{"multiclass xgboost", xgboostMulticlass, Options{}, "multi-class models cannot be exported as C yet"},
		{"multiclass xgboost, binary manifest", func(t *testing.T) *model.Model {
			m := xgboostMulticlass(t)
			m.Manifest.Task, m.Manifest.Output, m.Manifest.Classes = model.TaskBinary, model.OutputProbability, nil
			return m
		}, Options{}, "multi-class models cannot be exported as C yet"},
		{"multinomial", func(t *testing.T) *model.Model {
			m := xgboostMulticlass(t)
			est, err := json.Marshal(model.Multinomial{Type: model.EstimatorMultinomial, Features: m.Predictor().FeatureNames(),
				Weights: [][]float64{make([]float64, 6), make([]float64, 6), make([]float64, 6)}, Intercepts: []float64{0, 1, 2}})
			if err != nil {
				t.Fatal(err)
			}
			man := m.Manifest
			man.Estimator.Type = model.EstimatorMultinomial
			mm, err := model.New(man, map[string][]byte{model.DefaultEstimatorFile: est})
			if err != nil {
				t.Fatal(err)
			}
			return mm
		}, Options{}, "multi-class models cannot be exported as C yet"},
		{"prefix not an identifier", churn, Options{Prefix: "2fast"}, "not a C identifier"},
		{"prefix keyword", churn, Options{Prefix: "int"}, "keyword"},
		{"prefix reserved", churn, Options{Prefix: "__kiln"}, "reserved"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.model(t), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Generate: error %v, want one containing %s", err, tt.want)
			}
		})
	}
	if _, err := Generate(nil, Options{}); err == nil {
		t.Error("Generate(nil): no error")
	}
}

// TestGenerateFiles checks the files' names, the row struct's members and
// the includes.
func TestGenerateFiles(t *testing.T) {
	m, _ := churnLogistic(false)(t)
	f, err := Generate(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f.HeaderName != "kiln_model.h" || f.SourceName != "kiln_model.c" {
		t.Errorf("files %s, %s", f.HeaderName, f.SourceName)
	}
	var got []string
	for _, fl := range f.Fields {
		got = append(got, fl.Input+"->"+fl.Member)
	}
	want := []string{"plan->plan", "region name->region_name", "contract->contract", "tenure->tenure",
		"monthly-charges->monthly_charges", "usage->usage", "score->score", "age->age", "active->active",
		"a b->a_b", "a_b->a_b_2", "int->int_", "1st->f_1st", "_hidden->f__hidden"}
	if !slices.Equal(got, want) {
		t.Errorf("members %v\nwant %v", got, want)
	}
	for _, src := range [][]byte{f.Header, f.Source} {
		for _, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(line, "#include <") && !slices.Contains([]string{"<math.h>", "<stddef.h>", "<stdint.h>", "<string.h>"}, strings.TrimPrefix(line, "#include ")) {
				t.Errorf("includes %s", line)
			}
		}
		if bytes.Contains(src, []byte("malloc")) {
			t.Error("the generated code calls malloc")
		}
	}
	for _, s := range []string{"struct kiln_model_row {", "int kiln_model_predict(const struct kiln_model_row *row, double *out);",
		"int kiln_model_predict_batch(const struct kiln_model_row *rows, size_t n, double *out, size_t *first_error);",
		"const char *plan; /* input 0 \"plan\" (string), NULL = missing */", "#define KILN_MODEL_EUNKNOWN_CATEGORY 1"} {
		if !bytes.Contains(f.Header, []byte(s)) {
			t.Errorf("the header lacks %q", s)
		}
	}
}

// TestGeneratedAPI checks the generated functions' argument checks, an
// all-missing row (as Go scores an empty JSON object), a bool input that
// is neither 0 nor 1, and the name tables.
func TestGeneratedAPI(t *testing.T) {
	gcc := needGCC(t)
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			m, rows := churnLogistic(strict)(t)
			f, err := Generate(m, Options{Prefix: "api"})
			if err != nil {
				t.Fatal(err)
			}
			bin := buildHarness(t, gcc, f)
			// A row Go scores, for the bool test.
			for len(rows) > 0 {
				if _, err := m.PredictRows(rows[:1]); err == nil {
					break
				}
				rows = rows[1:]
			}
			lines := runHarness(t, bin, "api", writeRows(t, f, rows[:1]))
			missing := fmt.Sprintf("missing %d ", codeUnknownCategory) + "nan"
			if want, err := m.PredictRows([]map[string]any{{}}); err == nil {
				missing = "missing 0 " + strconv.FormatFloat(want[0], 'g', 17, 64)
			} else if goCode(t, err) != codeUnknownCategory {
				t.Fatalf("Go: %v", err)
			}
			want := []string{
				fmt.Sprintf("null_row %d", codeBadArgument),
				fmt.Sprintf("null_out %d", codeBadArgument),
				fmt.Sprintf("null_features %d %d", codeBadArgument, codeBadArgument),
				"empty_batch 0 0",
				fmt.Sprintf("null_batch %d 0", codeBadArgument),
				missing,
				fmt.Sprintf("bad_bool %d", codeBadBool),
				"strerror " + codes[codeUnknownCategory].doc + "|unknown return code",
				"names plan|_hidden",
			}
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestLiterals checks the C literals of awkward values.
func TestLiterals(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{dbl(0.1), "0x1.999999999999ap-04"},
		{dbl(math.Copysign(0, -1)), "-0x0p+00"},
		{dbl(math.Inf(-1)), "(-INFINITY)"},
		{flt(0.1), "0x1.99999ap-04f"},
		{flt(float32(math.NaN())), "NAN"},
		{cstr("a\"b\\c??=\x01é"), `"a\"b\\c\?\?=\001\303\251"`},
		{comment("x*/y/*z??=w"), `"x*\/y/\*z\x3f\x3f=w"`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

// TestCThroughput measures C batch and row scoring against Go's on the same
// 100,000 rows for the edge-export benchmark's 100-tree depth-6 GBDT
// (benchModel). Set KILN_BENCH_C=1 to run it (make bench-export does).
func TestCThroughput(t *testing.T) {
	if os.Getenv("KILN_BENCH_C") != "1" {
		t.Skip("set KILN_BENCH_C=1 to measure C against Go throughput")
	}
	gcc := needGCC(t)
	const n = 100000
	m, _, names := benchModel(t)
	rows, cols := benchRows(names, n)
	files, err := Generate(m, Options{Prefix: "kiln_bench"})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildHarness(t, gcc, files)
	rowsFile := writeRows(t, files, rows)
	out, err := exec.Command(bin, "bench", rowsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cRates := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var k string
		var v float64
		if _, err := fmt.Sscanf(line, "%s %g", &k, &v); err != nil {
			t.Fatalf("bench output %q: %v", line, err)
		}
		cRates[k] = v
	}

	x := &transform.Matrix{Rows: n, Features: names, Cols: cols}
	preds := make([]float64, n)
	goBatch := bestRate(n, func() {
		if err := m.PredictMatrix(x, preds); err != nil {
			t.Fatal(err)
		}
	})
	goRows := bestRate(n, func() {
		for _, r := range rows {
			if _, err := m.PredictRows([]map[string]any{r}); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("100 trees of depth 6, %d features, %d rows (best of 5, one core):", len(names), n)
	t.Logf("  batch: C %s_predict_batch %.3g rows/s, Go Model.PredictMatrix %.3g rows/s (C/Go %.2fx)", "kiln_bench", cRates["batch"], goBatch, cRates["batch"]/goBatch)
	t.Logf("  one row per call: C %s_predict %.3g rows/s, Go Model.PredictRows %.3g rows/s (C/Go %.2fx)", "kiln_bench", cRates["row"], goRows, cRates["row"]/goRows)
	t.Logf("RESULT c_batch=%.0f go_batch=%.0f c_row=%.0f go_row=%.0f", cRates["batch"], goBatch, cRates["row"], goRows)
}

// bestRate runs fn (which scores n rows) five times and returns the best
// rows per second.
func bestRate(n int, fn func()) float64 {
	best := time.Duration(math.MaxInt64)
	for range 5 {
		start := time.Now()
		fn()
		best = min(best, time.Since(start))
	}
	return float64(n) / best.Seconds()
}

// ----- models and rows -----

// breastCancerGBDT is a 100-tree depth-6 binary GBDT on the breast cancer
// data (10% of the training values missing, so default directions go both
// ways) and rows drawn around the data set's.
func breastCancerGBDT(t *testing.T) (*model.Model, []map[string]any) {
	header, data := readCSV(t, "../../data/breast_cancer.csv")
	rng := rand.New(rand.NewPCG(1, 1))
	schema := dataset.Schema{}
	for _, h := range header {
		typ := dataset.Float64
		if h == "malignant" {
			typ = dataset.Int64
		}
		schema.Fields = append(schema.Fields, dataset.Field{Name: h, Type: typ})
	}
	train := tableRows(header, data)
	for _, r := range train {
		for _, h := range header[:len(header)-1] {
			if rng.Float64() < 0.1 {
				delete(r, h)
			}
		}
	}
	fitted := fit(t, transform.Recipe{Target: "malignant"}, schema, train)
	m := gbdtOnRows(t, fitted, train, "malignant", gbdt.DefaultParams(gbdt.BinaryLogistic))
	return m, perturbedRows(rng, tableRows(header, data), fitted, m)
}

// churnLogistic is a churn-like logistic model over string, int64, float64
// and bool columns (awkward names and categories included) with every
// transform kind. strict uses handle_unknown: error, log1p on_invalid:
// error and leaves tenure unimputed, so rows fail in every way Go refuses
// them.
func churnLogistic(strict bool) func(t *testing.T) (*model.Model, []map[string]any) {
	return func(t *testing.T) (*model.Model, []map[string]any) {
		rng := rand.New(rand.NewPCG(2, 2))
		r := transform.Recipe{Target: "churn", Transforms: []transform.Spec{
			{Kind: "impute", Columns: []string{"plan"}, Strategy: "constant", Value: "nul\x00cat"},
			{Kind: "impute", Columns: []string{"*"}},
			{Kind: "onehot", Columns: []string{"plan"}},
			{Kind: "onehot", Columns: []string{"region name"}, MaxCategories: 5, HandleUnknown: "as_category"},
			{Kind: "ordinal", Columns: []string{"contract"}},
			{Kind: "standardize", Columns: []string{"tenure", "a b"}},
			{Kind: "minmax", Columns: []string{"monthly-charges", "contract"}},
			{Kind: "log1p", Columns: []string{"usage"}, OnInvalid: "clip"},
			{Kind: "clip", Columns: []string{"score"}, Percentiles: []float64{5, 95}},
			{Kind: "clip", Columns: []string{"a_b"}, Max: ptr(0.5)},
			{Kind: "bucketize", Columns: []string{"age"}, Quantiles: 4},
			{Kind: "bucketize", Columns: []string{"1st"}, Boundaries: []float64{-1, 0, 1}},
			{Kind: "standardize", Columns: []string{"age"}},
		}}
		if strict {
			r.Transforms = []transform.Spec{
				{Kind: "impute", Columns: []string{"region name"}},
				{Kind: "impute", Columns: []string{"monthly-charges", "usage", "score", "age", "active", "a b", "a_b", "int", "1st", "_hidden"}, Strategy: "mean"},
				{Kind: "onehot", Columns: []string{"plan"}, HandleUnknown: "error"},
				{Kind: "onehot", Columns: []string{"region name"}, MaxCategories: 3},
				{Kind: "ordinal", Columns: []string{"contract"}, HandleUnknown: "error"},
				{Kind: "log1p", Columns: []string{"usage"}},
				{Kind: "minmax", Columns: []string{"monthly-charges"}},
			}
		}
		train := churnRows(rng, 3000, false)
		if strict {
			for _, row := range train {
				if row["plan"] == nil {
					row["plan"] = "basic"
				}
				if row["contract"] == nil {
					row["contract"] = "month"
				}
			}
		}
		fitted := fit(t, r, churnSchema, train)
		l := model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features, Intercept: -0.3}
		for range fitted.Features {
			l.Weights = append(l.Weights, math.Round(rng.NormFloat64()*1000)/1000)
		}
		est, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		return newModel(t, fitted, "churn", model.TaskBinary, model.EstimatorLogistic, est), churnRows(rng, testRows, true)
	}
}

var churnSchema = dataset.Schema{Fields: []dataset.Field{
	{Name: "plan", Type: dataset.String},
	{Name: "region name", Type: dataset.String},
	{Name: "contract", Type: dataset.String},
	{Name: "tenure", Type: dataset.Int64},
	{Name: "monthly-charges", Type: dataset.Float64},
	{Name: "usage", Type: dataset.Float64},
	{Name: "score", Type: dataset.Float64},
	{Name: "age", Type: dataset.Float64},
	{Name: "active", Type: dataset.Bool},
	{Name: "a b", Type: dataset.Float64},
	{Name: "a_b", Type: dataset.Float64},
	{Name: "int", Type: dataset.Float64},
	{Name: "1st", Type: dataset.Float64},
	{Name: "_hidden", Type: dataset.Float64},
	{Name: "churn", Type: dataset.Int64},
}}

// churnRows draws churn rows. Test rows (test) add what training rows lack:
// unknown categories, log1p arguments <= -1 and infinities; they never
// hold the category with a NUL byte, which no C string can express.
func churnRows(rng *rand.Rand, n int, test bool) []map[string]any {
	plans := []string{"basic", "pro", "enterprise", `we"ird\??=*/`, "ünï", "", "nul\x00cat"}
	regions := []string{"north", "south", "east", "west", "center", "islands", "overseas"}
	contracts := []string{"month", "year", "two-year"}
	pick := func(xs []string) string {
		return xs[min(len(xs)-1, int(math.Abs(rng.NormFloat64())*float64(len(xs))/2))]
	}
	rows := make([]map[string]any, n)
	for i := range rows {
		r := map[string]any{}
		maybe := func(name string, p float64, v any) {
			if rng.Float64() >= p {
				r[name] = v
			} else if rng.IntN(2) == 0 {
				r[name] = nil // null, else absent
			}
		}
		plan := pick(plans)
		if test && plan == "nul\x00cat" {
			plan = "nul"
		}
		if test && rng.Float64() < 0.05 {
			plan = "trial"
		}
		maybe("plan", 0.1, plan)
		region := pick(regions)
		if test && rng.Float64() < 0.03 {
			region = "mars"
		}
		maybe("region name", 0.08, region)
		contract := pick(contracts)
		if test && rng.Float64() < 0.03 {
			contract = "decade"
		}
		maybe("contract", 0.05, contract)
		maybe("tenure", 0.1, float64(rng.IntN(73)))
		charges := 20 + 80*rng.Float64()
		if test && rng.Float64() < 0.01 {
			charges = math.Inf(1 - 2*rng.IntN(2))
		}
		maybe("monthly-charges", 0.1, charges)
		usage := math.Exp(rng.NormFloat64()) - 0.5
		if test && rng.Float64() < 0.05 {
			usage = -1 - 2*rng.Float64()*float64(rng.IntN(2))
		}
		maybe("usage", 0.05, usage)
		maybe("score", 0.05, 50+10*rng.NormFloat64()*(1+float64(rng.IntN(3))))
		maybe("age", 0.05, float64(18+rng.IntN(73)))
		maybe("active", 0.1, rng.IntN(2) == 0)
		maybe("a b", 0.05, rng.NormFloat64())
		maybe("a_b", 0.05, rng.NormFloat64())
		maybe("int", 0.05, rng.NormFloat64())
		maybe("1st", 0.05, math.Round(rng.NormFloat64()*2)/2)
		maybe("_hidden", 0.05, rng.NormFloat64()*1e6)
		r["churn"] = float64(rng.IntN(2))
		rows[i] = r
	}
	return rows
}

// diabetesLinear is a linear regression over imputed, clipped, log1p'd and
// standardized diabetes features.
func diabetesLinear(t *testing.T) (*model.Model, []map[string]any) {
	header, data := readCSV(t, "testdata/diabetes.csv")
	rng := rand.New(rand.NewPCG(3, 3))
	schema := floatSchema(header)
	train := tableRows(header, data)
	fitted := fit(t, transform.Recipe{Target: "progression", Transforms: []transform.Spec{
		{Kind: "impute", Columns: []string{"*"}, Strategy: "mean"},
		{Kind: "log1p", Columns: []string{"s4"}, OnInvalid: "clip"},
		{Kind: "clip", Columns: []string{"bp"}, Percentiles: []float64{1, 99}},
		{Kind: "standardize", Columns: []string{"*"}},
	}}, schema, train)
	l := model.Linear{Type: model.EstimatorLinear, Features: fitted.Features, Intercept: 152.13}
	for range fitted.Features {
		l.Weights = append(l.Weights, rng.NormFloat64()*20)
	}
	est, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(t, fitted, "progression", model.TaskRegression, model.EstimatorLinear, est)
	return m, perturbedRows(rng, train, fitted, nil)
}

// diabetesGBDT is a reg:squarederror GBDT reading standardized diabetes
// features, trained with missing values.
func diabetesGBDT(t *testing.T) (*model.Model, []map[string]any) {
	header, data := readCSV(t, "testdata/diabetes.csv")
	rng := rand.New(rand.NewPCG(4, 4))
	train := tableRows(header, data)
	for _, r := range train {
		for _, h := range header[:len(header)-1] {
			if rng.Float64() < 0.1 {
				r[h] = nil
			}
		}
	}
	fitted := fit(t, transform.Recipe{Target: "progression", Transforms: []transform.Spec{
		{Kind: "standardize", Columns: []string{"age", "bmi", "bp", "s1", "s2", "s3"}},
		{Kind: "minmax", Columns: []string{"s5"}},
	}}, floatSchema(header), train)
	p := gbdt.DefaultParams(gbdt.SquaredError)
	p.NumRound, p.MaxDepth = 60, 5
	m := gbdtOnRows(t, fitted, train, "progression", p)
	return m, perturbedRows(rng, tableRows(header, data), fitted, m)
}

// xgbFixtures holds models trained by XGBoost 1.7 and its predictions.
const xgbFixtures = "../xgbjson/testdata"

// xgbData is xgbFixtures/data.json.
type xgbData struct {
	Features   [][]*float64 `json:"features"`
	Binary     xgbPreds     `json:"binary"`
	Regression xgbPreds     `json:"regression"`
}

type xgbPreds struct {
	Prediction []float64 `json:"prediction"`
}

// readXGBData reads the fixtures' rows and XGBoost's predictions.
func readXGBData(t *testing.T) (*xgbData, []map[string]any) {
	raw, err := os.ReadFile(filepath.Join(xgbFixtures, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d xgbData
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	rows := make([]map[string]any, len(d.Features))
	for i, f := range d.Features {
		rows[i] = map[string]any{"y": 0.0}
		for j, v := range f {
			if v != nil {
				rows[i][fmt.Sprintf("f_%c", 'a'+j)] = *v
			}
		}
	}
	return &d, rows
}

// xgboostFixture is an XGBoost-trained model of xgbFixtures (binary.json
// names no features), checked on XGBoost's test rows first, then rows
// around them.
func xgboostFixture(file, task string) func(t *testing.T) (*model.Model, []map[string]any) {
	return func(t *testing.T) (*model.Model, []map[string]any) {
		d, rows := readXGBData(t)
		est, err := os.ReadFile(filepath.Join(xgbFixtures, file))
		if err != nil {
			t.Fatal(err)
		}
		schema := dataset.Schema{}
		for j := range 6 {
			schema.Fields = append(schema.Fields, dataset.Field{Name: fmt.Sprintf("f_%c", 'a'+j), Type: dataset.Float64})
		}
		schema.Fields = append(schema.Fields, dataset.Field{Name: "y", Type: dataset.Float64})
		fitted := fit(t, transform.Recipe{Target: "y"}, schema, rows)
		m := newModel(t, fitted, "y", task, model.EstimatorXGBoost, est)
		more := perturbedRows(rand.New(rand.NewPCG(5, 5)), rows, fitted, m)
		return m, append(rows, more[:testRows-len(d.Features)]...)
	}
}

// xgboostMulticlass is XGBoost's multi:softprob model of xgbFixtures
// (multiclass.json) in a multiclass model.
func xgboostMulticlass(t *testing.T) *model.Model {
	t.Helper()
	_, rows := readXGBData(t)
	est, err := os.ReadFile(filepath.Join(xgbFixtures, "multiclass.json"))
	if err != nil {
		t.Fatal(err)
	}
	schema := dataset.Schema{}
	for j := range 6 {
		schema.Fields = append(schema.Fields, dataset.Field{Name: fmt.Sprintf("f_%c", 'a'+j), Type: dataset.Float64})
	}
	schema.Fields = append(schema.Fields, dataset.Field{Name: "y", Type: dataset.Float64})
	fitted := fit(t, transform.Recipe{Target: "y"}, schema, rows)
	m, err := model.New(model.Manifest{
		FormatVersion: model.FormatVersion, Name: "cexport-test", Task: model.TaskMulticlass, Target: "y",
		Classes: []string{"a", "b", "c"}, Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: model.Estimator{Type: model.EstimatorXGBoost, File: model.DefaultEstimatorFile},
		Output:    model.OutputProbabilities,
	}, map[string][]byte{model.DefaultEstimatorFile: est})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkXGBoostFixture compares the C predictions of XGBoost's own rows
// with XGBoost's.
func checkXGBoostFixture(file string) func(t *testing.T, m *model.Model, rows []map[string]any, got []cResult) {
	return func(t *testing.T, m *model.Model, rows []map[string]any, got []cResult) {
		d, _ := readXGBData(t)
		want := d.Binary.Prediction
		if file == "regression.json" {
			want = d.Regression.Prediction
		}
		for i, w := range want {
			if math.Abs(got[i].value-w) > 1e-6 {
				t.Errorf("row %d: C %v, XGBoost %v", i, got[i].value, w)
			}
		}
	}
}

// deepGBDT has trees deeper than maxPerfectDepth, which the C code walks
// node by node, next to shallower ones.
func deepGBDT(t *testing.T) (*model.Model, []map[string]any) {
	const nf = 12
	d := gbdtdata.Synthetic(0, 4000, nf, 7)
	names := make([]string, nf)
	for j := range names {
		names[j] = fmt.Sprintf("x%d", j)
	}
	// Deep trees, then shallow ones: one ensemble summing both.
	p := gbdt.DefaultParams(gbdt.BinaryLogistic)
	p.NumRound, p.MaxDepth, p.MinChildWeight = 8, 12, 0
	b := booster(t, d, names, p)
	p.NumRound, p.MaxDepth = 8, 4
	b.Trees = append(b.Trees, booster(t, d, names, p).Trees...)
	est, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	fitted := &transform.Fitted{Features: names}
	for _, n := range names {
		fitted.Inputs = append(fitted.Inputs, dataset.Field{Name: n, Type: dataset.Float64})
	}
	m := newModel(t, fitted, "label", model.TaskBinary, model.EstimatorXGBoost, est)
	test := gbdtdata.Synthetic(100000, testRows, nf, 7)
	rows := make([]map[string]any, testRows)
	for i := range rows {
		rows[i] = map[string]any{}
		for j, c := range test.X {
			if !math.IsNaN(c[i]) && i%7 != j {
				rows[i][names[j]] = c[i]
			}
		}
	}
	return m, rows
}

// checkDeep checks that deepGBDT has both kinds of trees.
func checkDeep(t *testing.T, m *model.Model, _ []map[string]any, _ []cResult) {
	f, err := newForest(m.Predictor().(*model.XGBoost).Booster())
	if err != nil {
		t.Fatal(err)
	}
	if !f.hasDeep() || !f.hasPerfect() {
		t.Errorf("deep trees %v, complete trees %v; want both", f.hasDeep(), f.hasPerfect())
	}
}

// edgeTrees is a hand-built regression ensemble with what XGBoost files
// may hold but trained models rarely do: single-leaf trees, thresholds at
// -0 with either default direction, children not adjacent and unreachable
// nodes. Thresholds at ±Inf (which JSON files cannot carry, but the C
// export handles, including a default-left split at -Inf, where -Inf itself
// does not go left) are set on the loaded booster; edgePredict is the Go
// reference for them. Rows take values on and around every threshold.
func edgeTrees(t *testing.T) (*model.Model, []map[string]any) {
	type node struct {
		l, r, f int32
		c       float32
		dl      bool
	}
	tree := func(nodes ...node) xgbjson.Tree {
		var tr xgbjson.Tree
		for _, n := range nodes {
			tr.LeftChildren = append(tr.LeftChildren, n.l)
			tr.RightChildren = append(tr.RightChildren, n.r)
			tr.SplitIndices = append(tr.SplitIndices, n.f)
			tr.SplitConditions = append(tr.SplitConditions, n.c)
			tr.DefaultLeft = append(tr.DefaultLeft, n.dl)
			tr.BaseWeights = append(tr.BaseWeights, 0)
		}
		return tr
	}
	lf := func(v float32) node { return node{l: -1, r: -1, c: v} }
	const placeholder = 1e30 // replaced by ±Inf below
	negZero := float32(math.Copysign(0, -1))
	b := &xgbjson.Booster{Objective: xgbjson.ObjectiveSquaredError, BaseScore: 0.5, NumFeature: 3,
		FeatureNames: []string{"a", "b", "c"}, Trees: []xgbjson.Tree{
			tree(lf(0.25)),
			tree(node{1, 2, 0, -placeholder, true}, lf(1), node{3, 4, 1, placeholder, false}, lf(2), lf(3)),
			tree(node{3, 1, 2, 0.5, true}, lf(-1), lf(100), node{5, 4, 0, 1, false}, lf(0.0625), lf(0.125)),
			tree(node{1, 2, 2, negZero, false}, node{3, 4, 1, -placeholder, false}, node{5, 6, 0, placeholder, true},
				lf(4), lf(5), node{7, 8, 1, -placeholder, true}, lf(7), lf(8), lf(9)),
			tree(node{1, 2, 1, negZero, true}, lf(0.5), lf(-0.5)),
		}}
	est, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Float64}, {Name: "c", Type: dataset.Float64}, {Name: "y", Type: dataset.Float64}}}
	fitted := fit(t, transform.Recipe{Target: "y"}, schema, []map[string]any{{"a": 1.0, "b": 2.0, "c": 3.0, "y": 0.0}})
	m := newModel(t, fitted, "y", model.TaskRegression, model.EstimatorXGBoost, est)
	loaded := m.Predictor().(*model.XGBoost).Booster()
	infs := 0
	for ti := range loaded.Trees {
		for n, c := range loaded.Trees[ti].SplitConditions {
			if math.Abs(float64(c)) == float64(float32(placeholder)) {
				loaded.Trees[ti].SplitConditions[n] = float32(math.Inf(int(c / float32(placeholder))))
				infs++
			}
		}
	}
	if infs != 5 {
		t.Fatalf("%d infinite thresholds set, want 5", infs)
	}
	vals := []any{nil, math.Inf(1), math.Inf(-1), 0.0, math.Copysign(0, -1), 0.5, math.Nextafter(0.5, 0), 1.0,
		math.Nextafter(1, 0), -1.0, 1e39, -1e39, math.MaxFloat32, 3.5, math.SmallestNonzeroFloat64,
		// Halfway between the largest float and 2^128, which rounds to +Inf,
		// and the double below it, which rounds to the largest float.
		math.Ldexp(0x1ffffff, 103), math.Nextafter(math.Ldexp(0x1ffffff, 103), 0), -math.Ldexp(0x1ffffff, 103)}
	rng := rand.New(rand.NewPCG(6, 6))
	rows := make([]map[string]any, testRows)
	for i := range rows {
		rows[i] = map[string]any{"a": vals[rng.IntN(len(vals))], "b": vals[rng.IntN(len(vals))], "c": vals[rng.IntN(len(vals))]}
	}
	return m, rows
}

// edgePredict predicts rows with m's current booster: both with a
// predictor built from it (model.NewXGBoost) and with xgbjson's row by row
// reference, which must agree.
func edgePredict(m *model.Model, rows []map[string]any) ([]float64, error) {
	b := m.Predictor().(*model.XGBoost).Booster()
	p, err := model.NewXGBoost(b, nil)
	if err != nil {
		return nil, err
	}
	x, err := m.Manifest.Transforms.ApplyRows(rows)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(rows))
	if err := p.PredictMatrix(x, out); err != nil {
		return nil, err
	}
	row := make([]float64, len(x.Cols))
	for i := range out {
		for j, c := range x.Cols {
			row[j] = c[i]
		}
		if ref := b.Predict(row); !sameBits(ref, out[i]) {
			return nil, fmt.Errorf("row %d: model.XGBoost %v, xgbjson reference %v", i, out[i], ref)
		}
	}
	return out, nil
}

// rangesLinear is a linear regression over log1p (on_invalid error and
// clip) and bucketize of values spanning every magnitude, sign and special
// value, so the C port of Go's log1p is checked on all its branches.
func rangesLinear(t *testing.T) (*model.Model, []map[string]any) {
	rng := rand.New(rand.NewPCG(7, 7))
	value := func() float64 {
		switch u := rng.Float64(); {
		case u < 0.05:
			return []float64{0, math.Copysign(0, -1), -1, math.Nextafter(-1, 0), math.Inf(1), math.Inf(-1), math.MaxFloat64,
				math.SmallestNonzeroFloat64, 0x1p-29, 0x1p-54, 0x1p53, math.Sqrt2 - 1, math.Sqrt2/2 - 1}[rng.IntN(13)]
		case u < 0.1:
			return -1 + math.Ldexp(rng.Float64(), -rng.IntN(60))
		case u < 0.6:
			return math.Ldexp(rng.Float64(), rng.IntN(2100)-1075)
		default:
			return (rng.Float64() - 0.3) * math.Ldexp(1, rng.IntN(8)-3)
		}
	}
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "u", Type: dataset.Float64}, {Name: "v", Type: dataset.Float64},
		{Name: "w", Type: dataset.Float64}, {Name: "y", Type: dataset.Float64}}}
	train := make([]map[string]any, 500)
	for i := range train {
		train[i] = map[string]any{"u": math.Abs(value()), "v": value(), "w": value(), "y": 0.0}
	}
	train[0]["v"] = -0.5
	fitted := fit(t, transform.Recipe{Target: "y", Transforms: []transform.Spec{
		{Kind: "log1p", Columns: []string{"u"}},
		{Kind: "log1p", Columns: []string{"v"}, OnInvalid: "clip"},
		{Kind: "bucketize", Columns: []string{"w"}, Boundaries: []float64{-1e300, -1, -0.5, 0, 1e-300, 0.5, 1, 1e300}},
	}}, schema, train)
	est, err := json.Marshal(model.Linear{Type: model.EstimatorLinear, Features: fitted.Features, Weights: []float64{1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]map[string]any, testRows)
	for i := range rows {
		rows[i] = map[string]any{"u": value(), "v": value(), "w": value()}
		if i%50 == 0 {
			rows[i]["u"] = nil
		}
	}
	return newModel(t, fitted, "y", model.TaskRegression, model.EstimatorLinear, est), rows
}

// perturbedRows draws testRows rows around base: values scaled by
// N(1, 0.1), 10% missing (null or absent), 1% infinite, and when m is a
// GBDT, 4% set to a split threshold of their feature or to the float64
// just below it (which rounds up to the threshold in float32).
func perturbedRows(rng *rand.Rand, base []map[string]any, fitted *transform.Fitted, m *model.Model) []map[string]any {
	thresholds := map[string][]float32{}
	if m != nil {
		if x, ok := m.Predictor().(*model.XGBoost); ok {
			b := x.Booster()
			for ti := range b.Trees {
				tr := &b.Trees[ti]
				for n := range tr.NumNodes() {
					if !tr.IsLeaf(n) {
						f := fitted.Features[tr.SplitIndices[n]]
						thresholds[f] = append(thresholds[f], tr.SplitConditions[n])
					}
				}
			}
		}
	}
	rows := make([]map[string]any, testRows)
	for i := range rows {
		src := base[rng.IntN(len(base))]
		r := map[string]any{}
		for _, in := range fitted.Inputs {
			v, ok := src[in.Name].(float64)
			if !ok {
				continue
			}
			v *= 1 + 0.1*rng.NormFloat64()
			if in.Type == dataset.Int64 {
				v = math.Round(v)
			}
			u := rng.Float64()
			switch ths := thresholds[in.Name]; {
			case u < 0.05:
				continue
			case u < 0.1:
				r[in.Name] = nil
				continue
			case u < 0.11:
				v = math.Inf(1 - 2*rng.IntN(2))
			case u < 0.13 && len(ths) > 0:
				v = float64(ths[rng.IntN(len(ths))])
			case u < 0.15 && len(ths) > 0:
				v = math.Nextafter(float64(ths[rng.IntN(len(ths))]), math.Inf(-1))
			}
			r[in.Name] = v
		}
		rows[i] = r
	}
	return rows
}

// ----- helpers -----

func ptr[T any](v T) *T { return &v }

// needGCC returns gcc's path or skips the test.
func needGCC(t testing.TB) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	return gcc
}

// readCSV reads a numeric CSV file.
func readCSV(t *testing.T, path string) ([]string, [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var data [][]float64
	for _, rec := range recs[1:] {
		row := make([]float64, len(rec))
		for j, s := range rec {
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		data = append(data, row)
	}
	return recs[0], data
}

// tableRows turns a numeric table into rows.
func tableRows(header []string, data [][]float64) []map[string]any {
	rows := make([]map[string]any, len(data))
	for i, d := range data {
		rows[i] = map[string]any{}
		for j, h := range header {
			rows[i][h] = d[j]
		}
	}
	return rows
}

// floatSchema types every column float64.
func floatSchema(header []string) dataset.Schema {
	var s dataset.Schema
	for _, h := range header {
		s.Fields = append(s.Fields, dataset.Field{Name: h, Type: dataset.Float64})
	}
	return s
}

// record builds the Arrow record of rows (float64 for numbers, also of
// int64 columns; nil or absent for null).
func record(t testing.TB, schema dataset.Schema, rows []map[string]any) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema.Arrow())
	defer b.Release()
	for j, f := range schema.Fields {
		fb := b.Field(j)
		for _, r := range rows {
			v := r[f.Name]
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch f.Type {
			case dataset.Float64:
				fb.(*array.Float64Builder).Append(v.(float64))
			case dataset.Int64:
				fb.(*array.Int64Builder).Append(int64(v.(float64)))
			case dataset.Bool:
				fb.(*array.BooleanBuilder).Append(v.(bool))
			case dataset.String:
				fb.(*array.StringBuilder).Append(v.(string))
			}
		}
	}
	rec := b.NewRecord()
	t.Cleanup(rec.Release)
	return rec
}

// fit fits r on rows.
func fit(t testing.TB, r transform.Recipe, schema dataset.Schema, rows []map[string]any) *transform.Fitted {
	t.Helper()
	fitted, err := transform.Fit(r, schema, record(t, schema, rows))
	if err != nil {
		t.Fatal(err)
	}
	return fitted
}

// newModel builds a model from fitted transforms and an estimator file.
func newModel(t testing.TB, fitted *transform.Fitted, target, task, estType string, est []byte) *model.Model {
	t.Helper()
	output := model.OutputProbability
	if task == model.TaskRegression {
		output = model.OutputValue
	}
	m, err := model.New(model.Manifest{
		FormatVersion: model.FormatVersion, Name: "cexport-test", Task: task, Target: target,
		Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: model.Estimator{Type: estType, File: model.DefaultEstimatorFile},
		Output:    output,
	}, map[string][]byte{model.DefaultEstimatorFile: est})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gbdtOnRows trains a GBDT on the transformed features of rows.
func gbdtOnRows(t testing.TB, fitted *transform.Fitted, rows []map[string]any, target string, p gbdt.Params) *model.Model {
	t.Helper()
	x, err := fitted.ApplyRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	d := &gbdt.Data{X: x.Cols}
	for _, r := range rows {
		d.Y = append(d.Y, r[target].(float64))
	}
	b := booster(t, d, fitted.Features, p)
	est, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	task := model.TaskBinary
	if p.Objective == gbdt.SquaredError {
		task = model.TaskRegression
	}
	return newModel(t, fitted, target, task, model.EstimatorXGBoost, est)
}

// gbdtModel trains a GBDT on d with identity transforms over names.
func gbdtModel(t testing.TB, names []string, d *gbdt.Data, p gbdt.Params) *model.Model {
	t.Helper()
	fitted := &transform.Fitted{Features: names}
	for _, n := range names {
		fitted.Inputs = append(fitted.Inputs, dataset.Field{Name: n, Type: dataset.Float64})
	}
	est, err := booster(t, d, names, p).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	task := model.TaskBinary
	if p.Objective == gbdt.SquaredError {
		task = model.TaskRegression
	}
	return newModel(t, fitted, "label", task, model.EstimatorXGBoost, est)
}

// booster trains a GBDT and converts it to XGBoost's model, as Kiln's
// trainer does.
func booster(t testing.TB, d *gbdt.Data, names []string, p gbdt.Params) *xgbjson.Booster {
	t.Helper()
	m, err := gbdt.Train(context.Background(), d, nil, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Booster(names)
}

// goCode is the C return code of a Go error.
func goCode(t testing.TB, err error) int {
	t.Helper()
	msg := err.Error()
	switch {
	case strings.Contains(msg, "(handle_unknown: error"):
		return codeUnknownCategory
	case strings.Contains(msg, "where log1p is not finite (on_invalid: error)"):
		return codeInvalidLog1p
	case strings.Contains(msg, "is missing (NaN)"):
		return codeMissing
	case strings.Contains(msg, "is infinite"), strings.Contains(msg, "is NaN (infinite feature values)"):
		return codeNonFinite
	}
	t.Fatalf("unexpected Go error: %v", err)
	return -1
}

// sameBits compares floats bit for bit, any NaN equal to any NaN.
func sameBits(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

// ----- the C harness -----

// harnessSource is a test program for the generated code. Usage:
//
//	harness features ROWS   prints each row's return code and features
//	harness predict ROWS    prints "batch CODE FIRST_ERROR", then each row's
//	                        predict code and value and predict_batch value
//	harness api ROWS        prints the results of calls with NULL arguments,
//	                        of an all-missing row, a bool 0.5, ...
//	harness bench ROWS      prints the rows/s of predict_batch ("batch")
//	                        and of predict ("row"), best of 5 passes
//
// ROWS is the row count, then every row's fields as tokens: numbers as
// strtod reads them, strings as "-" (NULL) or "=" and their bytes in hex.
const harnessSource = `#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "PREFIX.h"

static int hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static const char *str(char *s)
{
    char *o = s;
    const char *h = s + 1;
    if (strcmp(s, "-") == 0) {
        return NULL;
    }
    for (; h[0] && h[1]; h += 2) {
        *o++ = (char)(hexval(h[0]) * 16 + hexval(h[1]));
    }
    *o = 0;
    return s;
}

static void print_double(double x)
{
    if (x != x) {
        printf("nan");
    } else {
        printf("%.17g", x);
    }
}

static void fill(struct PREFIX_row *r, char **tok)
{
FILL}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    FILE *in;
    char *buf, **tok;
    long len;
    size_t ntok = 0, n, i;
    struct PREFIX_row *rows;
    (void)str;
    if (argc != 3) {
        fprintf(stderr, "usage: harness features|predict|bench ROWS\n");
        return 2;
    }
    in = fopen(argv[2], "rb");
    if (in == NULL || fseek(in, 0, SEEK_END) != 0 || (len = ftell(in)) < 0 || fseek(in, 0, SEEK_SET) != 0) {
        perror(argv[2]);
        return 1;
    }
    buf = malloc((size_t)len + 1);
    tok = malloc(((size_t)len / 2 + 2) * sizeof *tok);
    if (buf == NULL || tok == NULL || fread(buf, 1, (size_t)len, in) != (size_t)len) {
        perror("reading rows");
        return 1;
    }
    buf[len] = 0;
    fclose(in);
    for (i = 0; i < (size_t)len; i++) {
        if (buf[i] == ' ' || buf[i] == '\n') {
            buf[i] = 0;
        } else if (i == 0 || buf[i - 1] == 0) {
            tok[ntok++] = buf + i;
        }
    }
    n = (size_t)strtoul(tok[0], NULL, 10);
    if (ntok != 1 + n * PREFIX_UP_NUM_INPUTS) {
        fprintf(stderr, "%lu tokens for %lu rows\n", (unsigned long)ntok, (unsigned long)n);
        return 1;
    }
    rows = malloc((n + 1) * sizeof *rows);
    if (rows == NULL) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        fill(&rows[i], tok + 1 + i * PREFIX_UP_NUM_INPUTS);
    }
    if (strcmp(argv[1], "features") == 0) {
        static double f[PREFIX_UP_NUM_FEATURES];
        for (i = 0; i < n; i++) {
            int rc = PREFIX_features(&rows[i], f), j;
            printf("%d", rc);
            for (j = 0; rc == 0 && j < PREFIX_UP_NUM_FEATURES; j++) {
                printf(" ");
                print_double(f[j]);
            }
            printf("\n");
        }
    } else if (strcmp(argv[1], "predict") == 0) {
        double *out = malloc((n + 1) * sizeof *out);
        size_t first = 12345;
        int rc = PREFIX_predict_batch(rows, n, out, &first);
        printf("batch %d %lu\n", rc, (unsigned long)first);
        for (i = 0; i < n; i++) {
            double v = 42;
            rc = PREFIX_predict(&rows[i], &v);
            printf("%d ", rc);
            print_double(v);
            printf(" ");
            print_double(out[i]);
            printf("\n");
        }
    } else if (strcmp(argv[1], "api") == 0) {
        struct PREFIX_row r;
        static double f[PREFIX_UP_NUM_FEATURES];
        double v = 42;
        size_t first = 7;
        int rc;
        printf("null_row %d\n", PREFIX_predict(NULL, &v));
        printf("null_out %d\n", PREFIX_predict(&rows[0], NULL));
        printf("null_features %d %d\n", PREFIX_features(NULL, f), PREFIX_features(&rows[0], NULL));
        rc = PREFIX_predict_batch(NULL, 0, NULL, &first);
        printf("empty_batch %d %lu\n", rc, (unsigned long)first);
        rc = PREFIX_predict_batch(NULL, 3, &v, &first);
        printf("null_batch %d %lu\n", rc, (unsigned long)first);
        PREFIX_row_init(&r);
        rc = PREFIX_predict(&r, &v);
        printf("missing %d ", rc);
        print_double(v);
        printf("\n");
BOOLTEST        printf("strerror %s|%s\n", PREFIX_strerror(PREFIX_UP_EUNKNOWN_CATEGORY), PREFIX_strerror(99));
        printf("names %s|%s\n", PREFIX_input_names[0], PREFIX_feature_names[PREFIX_UP_NUM_FEATURES - 1]);
    } else if (strcmp(argv[1], "bench") == 0) {
        double *out = malloc((n + 1) * sizeof *out), best = 1e300, best1 = 1e300, sum = 0;
        int k;
        for (k = 0; k < 5; k++) {
            double t0 = now(), t1;
            PREFIX_predict_batch(rows, n, out, NULL);
            t1 = now() - t0;
            best = t1 < best ? t1 : best;
            sum += out[k];
            t0 = now();
            for (i = 0; i < n; i++) {
                PREFIX_predict(&rows[i], &out[i]);
            }
            t1 = now() - t0;
            best1 = t1 < best1 ? t1 : best1;
            sum += out[n - 1];
        }
        printf("batch %g\nrow %g\n", (double)n / best, (double)n / best1);
        if (sum == 42) {
            printf("\n");
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
`

// buildHarness writes the generated files and the harness into a
// temporary directory and compiles them with gccFlags.
func buildHarness(t testing.TB, gcc string, f Files) string {
	t.Helper()
	return buildHarnessFlags(t, gcc, f, gccFlags, append(slices.Clone(gccFlags), strictFlags...))
}

// buildHarnessFlags is buildHarness with the flags of the harness and of
// the model file given.
func buildHarnessFlags(t testing.TB, gcc string, f Files, harnessFlags, modelFlags []string) string {
	t.Helper()
	dir := t.TempDir()
	prefix := strings.TrimSuffix(f.HeaderName, ".h")
	var fill strings.Builder
	for i, fl := range f.Fields {
		conv := "strtod(tok[%d], NULL)"
		if fl.IsString() {
			conv = "str(tok[%d])"
		}
		fmt.Fprintf(&fill, "    r->%s = "+conv+";\n", fl.Member, i)
	}
	boolTest := ""
	for _, fl := range f.Fields {
		if fl.Type == dataset.Bool {
			boolTest = fmt.Sprintf("        r = rows[0];\n        r.%s = 0.5;\n        printf(\"bad_bool %%d\\n\", PREFIX_predict(&r, &v));\n", fl.Member)
			break
		}
	}
	src := strings.NewReplacer("BOOLTEST", boolTest).Replace(harnessSource)
	src = strings.NewReplacer("PREFIX_UP_", strings.ToUpper(prefix)+"_", "PREFIX", prefix, "FILL", fill.String()).Replace(src)
	for name, data := range map[string][]byte{f.HeaderName: f.Header, f.SourceName: f.Source, "harness.c": []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "harness")
	obj := filepath.Join(dir, "model.o")
	for _, args := range [][]string{
		append(slices.Clone(modelFlags), "-c", "-o", obj, filepath.Join(dir, f.SourceName)),
		append(slices.Clone(harnessFlags), "-o", bin, filepath.Join(dir, "harness.c"), obj, "-lm"),
	} {
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin
}

// writeRows writes rows in the harness's format.
func writeRows(t testing.TB, f Files, rows []map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", len(rows))
	for _, r := range rows {
		for i, fl := range f.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch v := r[fl.Input].(type) {
			case nil:
				if fl.IsString() {
					b.WriteString("-")
				} else {
					b.WriteString("nan")
				}
			case string:
				b.WriteString("=" + hex.EncodeToString([]byte(v)))
			case bool:
				if v {
					b.WriteString("1")
				} else {
					b.WriteString("0")
				}
			case float64:
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			default:
				t.Fatalf("value %v (%T)", v, v)
			}
		}
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "rows.txt")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cFeatures is one row's output of the harness's features mode.
type cFeatures struct {
	code int
	f    []float64
}

// cResult is one row's output of the harness's predict mode.
type cResult struct {
	code         int
	value, batch float64
}

// runFeatures runs the harness's features mode.
func runFeatures(t testing.TB, bin, rowsFile string, n, nf int) []cFeatures {
	t.Helper()
	lines := runHarness(t, bin, "features", rowsFile)
	if len(lines) != n {
		t.Fatalf("%d lines for %d rows", len(lines), n)
	}
	out := make([]cFeatures, n)
	for i, line := range lines {
		fs := strings.Fields(line)
		out[i].code = atoi(t, fs[0])
		if out[i].code != 0 {
			continue
		}
		if len(fs) != 1+nf {
			t.Fatalf("row %d: %d features, want %d", i, len(fs)-1, nf)
		}
		for _, s := range fs[1:] {
			out[i].f = append(out[i].f, atof(t, s))
		}
	}
	return out
}

// runPredict runs the harness's predict mode.
func runPredict(t testing.TB, bin, rowsFile string, n int) (rows []cResult, batchCode, batchFirst int) {
	t.Helper()
	lines := runHarness(t, bin, "predict", rowsFile)
	if len(lines) != n+1 {
		t.Fatalf("%d lines for %d rows", len(lines), n)
	}
	if _, err := fmt.Sscanf(lines[0], "batch %d %d", &batchCode, &batchFirst); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	rows = make([]cResult, n)
	for i, line := range lines[1:] {
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("line %q", line)
		}
		rows[i] = cResult{code: atoi(t, fs[0]), value: atof(t, fs[1]), batch: atof(t, fs[2])}
	}
	return rows, batchCode, batchFirst
}

// runHarness runs the harness and returns its output lines.
func runHarness(t testing.TB, bin, mode, rowsFile string) []string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, mode, rowsFile)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("harness %s: %v: %s", mode, err, stderr.Bytes())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func atof(t testing.TB, s string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
