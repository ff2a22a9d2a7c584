package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// xgbFixtures is where internal/xgbjson keeps the XGBoost-made models and
// XGBoost's predictions (made by its testdata/gen.py).
const xgbFixtures = "../xgbjson/testdata"

// xgbData is xgbFixtures/data.json.
type xgbData struct {
	Features [][]*float64 `json:"features"`
	Binary   struct {
		Prediction []float64 `json:"prediction"`
	} `json:"binary"`
	Regression struct {
		Prediction []float64 `json:"prediction"`
	} `json:"regression"`
	// Multiclass holds multiclass.json's probabilities, 3 per row,
	// row-major.
	Multiclass struct {
		Prediction []float64 `json:"prediction"`
	} `json:"multiclass"`
}

func readXGBData(t testing.TB, path string) *xgbData {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d xgbData
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &d
}

// matrix returns the rows as a column-major matrix (NaN for null) with the
// given feature names.
func (d *xgbData) matrix(names []string) *transform.Matrix {
	x := &transform.Matrix{Rows: len(d.Features), Features: names, Cols: make([][]float64, len(names))}
	for j := range names {
		x.Cols[j] = make([]float64, x.Rows)
		for i, row := range d.Features {
			x.Cols[j][i] = math.NaN()
			if row[j] != nil {
				x.Cols[j][i] = *row[j]
			}
		}
	}
	return x
}

// within reports the first index where got and want differ by more than tol.
func firstDiff(got, want []float64, tol float64) int {
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= tol) {
			return i
		}
	}
	return -1
}

// TestXGBoostPredictorFixtures scores XGBoost's own models on the fixture
// rows (missing values, values on split thresholds) with the columnar
// predictor and compares with XGBoost's predictions.
func TestXGBoostPredictorFixtures(t *testing.T) {
	d := readXGBData(t, filepath.Join(xgbFixtures, "data.json"))
	names := []string{"f_a", "f_b", "f_c", "f_d", "f_e", "f_f"}
	for _, tt := range []struct {
		file string
		want []float64
	}{
		{"binary.json", d.Binary.Prediction},
		{"regression.json", d.Regression.Prediction},
	} {
		raw, err := os.ReadFile(filepath.Join(xgbFixtures, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseXGBoost(raw, names)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if p.perfect == nil {
			t.Errorf("%s: not scored as complete trees", tt.file)
		}
		// Every prefix length exercises the partial blocks and the rows
		// left over after the interleaved groups.
		for _, rows := range []int{len(d.Features), 1, 7, 9, 128, 129} {
			x := d.matrix(names)
			x.Rows = rows
			for j := range x.Cols {
				x.Cols[j] = x.Cols[j][:rows]
			}
			out := make([]float64, rows)
			if err := p.PredictMatrix(x, out); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(out, tt.want[:rows], 1e-6); i >= 0 {
				t.Errorf("%s, %d rows: row %d: Kiln %v, XGBoost %v", tt.file, rows, i, out[i], tt.want[i])
			}
		}
	}
}

// TestXGBoostMulticlassFixture scores XGBoost's multi:softprob model on the
// fixture rows and compares the probabilities with XGBoost's, and the
// predicted classes with their argmax.
func TestXGBoostMulticlassFixture(t *testing.T) {
	d := readXGBData(t, filepath.Join(xgbFixtures, "data.json"))
	names := []string{"f_a", "f_b", "f_c", "f_d", "f_e", "f_f"}
	raw, err := os.ReadFile(filepath.Join(xgbFixtures, "multiclass.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseXGBoost(raw, names)
	if err != nil {
		t.Fatal(err)
	}
	const k = 3
	if p.NumClass() != k || p.Objective() != xgbjson.ObjectiveMultiSoftprob {
		t.Fatalf("NumClass %d objective %q", p.NumClass(), p.Objective())
	}
	for _, rows := range []int{len(d.Features), 1, 3, 9, 129} {
		x := d.matrix(names)
		x.Rows = rows
		for j := range x.Cols {
			x.Cols[j] = x.Cols[j][:rows]
		}
		proba := make([]float64, rows*k)
		if err := p.PredictProba(x, proba); err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(proba, d.Multiclass.Prediction[:rows*k], 1e-6); i >= 0 {
			t.Errorf("%d rows: row %d class %d: Kiln %v, XGBoost %v", rows, i/k, i%k, proba[i], d.Multiclass.Prediction[i])
		}
		classes := make([]float64, rows)
		if err := p.PredictMatrix(x, classes); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, rows)
		Argmax(d.Multiclass.Prediction[:rows*k], k, want)
		if i := firstDiff(classes, want, 0); i >= 0 {
			t.Errorf("%d rows: row %d: class %v, XGBoost's most probable %v", rows, i, classes[i], want[i])
		}
	}
}

// multiBooster is randomBooster made multi-class: trees rounds of k trees,
// tree i for class i%k.
func multiBooster(seed uint64, rounds, k, depth, nf int, full bool) *xgbjson.Booster {
	b := randomBooster(seed, rounds*k, depth, nf, full, xgbjson.ObjectiveMultiSoftprob)
	b.NumClass = k
	for i := range b.Trees {
		b.TreeInfo = append(b.TreeInfo, i%k)
	}
	return b
}

// TestXGBoostMulticlassMatchesReference compares the multi-class
// predictor's probabilities and classes with xgbjson's row-at-a-time
// reference, bit for bit, for complete and ragged trees (scored as complete
// trees), trees too deep for that (node walk) and deeper than the lock-step
// walk, stumps, and trees not in class order.
func TestXGBoostMulticlassMatchesReference(t *testing.T) {
	for _, tt := range []struct {
		name             string
		rounds, k, depth int
		full             bool
		edit             func(b *xgbjson.Booster)
		perfect          bool
	}{
		{"complete", 10, 3, 6, true, nil, true},
		{"ragged", 10, 4, xgbMaxPerfectDepth, false, nil, true},
		{"too deep for complete", 4, 3, xgbMaxPerfectDepth + 2, false, nil, false},
		{"deep", 2, 2, xgbMaxLockstepDepth + 3, false, nil, false},
		{"stumps", 3, 5, 0, true, nil, true},
		{"shuffled classes", 6, 3, 4, false, func(b *xgbjson.Booster) {
			rng := rand.New(rand.NewPCG(41, 41))
			rng.Shuffle(len(b.TreeInfo), func(i, j int) { b.TreeInfo[i], b.TreeInfo[j] = b.TreeInfo[j], b.TreeInfo[i] })
			b.BaseScore = -3
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const nf, rows = 7, 1003
			b := multiBooster(51, tt.rounds, tt.k, tt.depth, nf, tt.full)
			if tt.edit != nil {
				tt.edit(b)
			}
			x := randomMatrix(52, rows, nf, 0.15)
			x.Cols[2][5] = math.Inf(1)
			x.Cols[3][6] = math.Inf(-1)
			p, err := NewXGBoost(b, x.Features)
			if err != nil {
				t.Fatal(err)
			}
			if p.NumClass() != tt.k {
				t.Fatalf("NumClass %d, want %d", p.NumClass(), tt.k)
			}
			for c, cp := range p.classes {
				if got := cp.perfect != nil; got != tt.perfect {
					t.Fatalf("class %d: complete-tree form used: %v, want %v", c, got, tt.perfect)
				}
			}
			for _, n := range []int{rows, 1, 2, 3, 8, 129} {
				xn := &transform.Matrix{Rows: n, Features: x.Features, Cols: make([][]float64, nf)}
				for j := range x.Cols {
					xn.Cols[j] = x.Cols[j][rows-n:]
				}
				proba := make([]float64, n*tt.k)
				if err := p.PredictProba(xn, proba); err != nil {
					t.Fatal(err)
				}
				classes := make([]float64, n)
				if err := p.PredictMatrix(xn, classes); err != nil {
					t.Fatal(err)
				}
				row := make([]float64, nf)
				ref := make([]float64, tt.k)
				for i := range n {
					for j := range row {
						row[j] = xn.Cols[j][i]
					}
					b.PredictProba(row, ref)
					for c := range ref {
						if math.Float64bits(proba[i*tt.k+c]) != math.Float64bits(ref[c]) {
							t.Fatalf("%d rows: row %d class %d: %v, reference %v", n, i, c, proba[i*tt.k+c], ref[c])
						}
					}
					if want := b.Predict(row); classes[i] != want {
						t.Fatalf("%d rows: row %d: class %v, reference %v", n, i, classes[i], want)
					}
				}
			}
		})
	}
}

// TestXGBoostMulticlassErrors checks the shapes PredictProba refuses and
// that single-output models have no class probabilities.
func TestXGBoostMulticlassErrors(t *testing.T) {
	const nf = 3
	x := randomMatrix(61, 10, nf, 0)
	multi, err := NewXGBoost(multiBooster(62, 2, 3, 3, nf, true), x.Features)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := NewXGBoost(randomBooster(63, 2, 3, nf, true, xgbjson.ObjectiveBinaryLogistic), x.Features)
	if err != nil {
		t.Fatal(err)
	}
	if bin.NumClass() != 0 {
		t.Errorf("binary model: NumClass %d, want 0", bin.NumClass())
	}
	for _, tt := range []struct {
		name string
		p    *XGBoost
		x    *transform.Matrix
		out  int
		want string
	}{
		{"binary", bin, x, 30, `an xgboost binary:logistic model has no class probabilities`},
		{"slots", multi, x, 10, "10 probability slots for 10 rows of 3 classes"},
		{"nil matrix", multi, nil, 0, "nil feature matrix"},
		{"features", multi, &transform.Matrix{Rows: 10, Features: []string{"x0", "x1", "zz"}, Cols: x.Cols}, 30, `matrix feature 2 is "zz"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.PredictProba(tt.x, make([]float64, tt.out))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PredictProba: error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := multi.PredictMatrix(x, make([]float64, 30)); err == nil || !strings.Contains(err.Error(), "30 output slots for 10 rows") {
		t.Errorf("PredictMatrix with K slots per row: %v", err)
	}
}

// randomBooster makes a reproducible ensemble of trees with random splits
// over nf features. Trees are complete to depth when full, else random
// shapes up to depth (unbalanced, some leaves shallow).
func randomBooster(seed uint64, trees, depth, nf int, full bool, objective string) *xgbjson.Booster {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := &xgbjson.Booster{Objective: objective, BaseScore: 0.5, NumFeature: nf}
	for range trees {
		var t xgbjson.Tree
		var grow func(d int) int32
		grow = func(d int) int32 {
			n := int32(len(t.LeftChildren))
			t.LeftChildren = append(t.LeftChildren, -1)
			t.RightChildren = append(t.RightChildren, -1)
			t.SplitIndices = append(t.SplitIndices, 0)
			t.DefaultLeft = append(t.DefaultLeft, false)
			t.BaseWeights = append(t.BaseWeights, 0)
			if d == depth || (!full && d > 0 && rng.IntN(4) == 0) {
				v := float32(rng.NormFloat64() * 0.1)
				t.SplitConditions = append(t.SplitConditions, v)
				t.BaseWeights[n] = v
				return n
			}
			t.SplitConditions = append(t.SplitConditions, float32(rng.NormFloat64()))
			t.SplitIndices[n] = int32(rng.IntN(nf))
			t.DefaultLeft[n] = rng.IntN(2) == 0
			l := grow(d + 1)
			r := grow(d + 1)
			t.LeftChildren[n], t.RightChildren[n] = l, r
			return n
		}
		grow(0)
		b.Trees = append(b.Trees, t)
	}
	return b
}

// randomMatrix is rows×nf standard normal values with a fraction nan
// missing.
func randomMatrix(seed uint64, rows, nf int, nan float64) *transform.Matrix {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := &transform.Matrix{Rows: rows, Features: make([]string, nf), Cols: make([][]float64, nf)}
	for j := range nf {
		x.Features[j] = fmt.Sprintf("x%d", j)
		c := make([]float64, rows)
		for i := range c {
			c[i] = rng.NormFloat64()
			if rng.Float64() < nan {
				c[i] = math.NaN()
			}
		}
		x.Cols[j] = c
	}
	return x
}

// TestXGBoostPredictorMatchesReference compares the columnar predictor with
// xgbjson's row-at-a-time reference, bit for bit, on complete, ragged and
// deep (> xgbMaxLockstepDepth, walked row by row) trees.
func TestXGBoostPredictorMatchesReference(t *testing.T) {
	for _, tt := range []struct {
		name         string
		trees, depth int
		full         bool
		objective    string
	}{
		{"complete", 20, 6, true, xgbjson.ObjectiveBinaryLogistic},
		{"ragged", 30, 8, false, xgbjson.ObjectiveSquaredError},
		{"deep", 3, xgbMaxLockstepDepth + 4, false, xgbjson.ObjectiveBinaryLogistic},
		{"stumps", 5, 0, true, xgbjson.ObjectiveSquaredError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const nf, rows = 7, 1000
			b := randomBooster(11, tt.trees, tt.depth, nf, tt.full, tt.objective)
			x := randomMatrix(12, rows, nf, 0.1)
			x.Cols[2][5] = math.Inf(1)
			x.Cols[3][6] = math.Inf(-1)
			p, err := NewXGBoost(b, x.Features)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float64, rows)
			if err := p.PredictMatrix(x, out); err != nil {
				t.Fatal(err)
			}
			row := make([]float64, nf)
			for i := range rows {
				for j := range row {
					row[j] = x.Cols[j][i]
				}
				if want := b.Predict(row); out[i] != want {
					t.Fatalf("row %d: %v, reference %v", i, out[i], want)
				}
			}
		})
	}
}

// BenchmarkPredictXGBoost scores 1M rows × 30 features (1% missing) with
// 100 complete trees of depth 6, single-threaded. With
// KILN_XGB_BENCH_DIR=dir it also writes the model (model.json) and the data
// (x.f64: row-major little-endian float64, 1M×30) for
// scripts/bench/xgb_predict.py, XGBoost's side of the comparison.
func BenchmarkPredictXGBoost(b *testing.B) {
	const trees, depth, nf, rows = 100, 6, 30, 1_000_000
	bst := randomBooster(1, trees, depth, nf, true, xgbjson.ObjectiveBinaryLogistic)
	x := randomMatrix(2, rows, nf, 0.01)
	if dir := os.Getenv("KILN_XGB_BENCH_DIR"); dir != "" {
		writeBenchData(b, dir, bst, x)
	}
	p, err := NewXGBoost(bst, x.Features)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, rows)
	cpu0 := cpuTime()
	for b.Loop() {
		if err := p.PredictMatrix(x, out); err != nil {
			b.Fatal(err)
		}
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(rows/perOp, "rows/s")
	b.ReportMetric(perOp*1e9/(rows*trees), "ns/tree/row")
	// CPU time is steadier than wall time on a shared machine;
	// scripts/bench/xgb_predict.py reports the same for XGBoost.
	b.ReportMetric((cpuTime()-cpu0).Seconds()*1e9/float64(b.N)/(rows*trees), "cpu-ns/tree/row")
}

// BenchmarkPredictXGBoostOneRow scores one row at a time, as a model server
// does, with the ensemble of BenchmarkPredictXGBoost.
func BenchmarkPredictXGBoostOneRow(b *testing.B) {
	const trees, depth, nf, rows = 100, 6, 30, 1024
	bst := randomBooster(1, trees, depth, nf, true, xgbjson.ObjectiveBinaryLogistic)
	x := randomMatrix(2, rows, nf, 0.01)
	p, err := NewXGBoost(bst, x.Features)
	if err != nil {
		b.Fatal(err)
	}
	one := &transform.Matrix{Rows: 1, Features: x.Features, Cols: make([][]float64, nf)}
	out := make([]float64, 1)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := range one.Cols {
			one.Cols[j] = x.Cols[j][i : i+1]
		}
		if err := p.PredictMatrix(one, out); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % rows
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/trees, "ns/tree")
}

// TestXGBoostOneRowWide checks the row-by-row walk (predictRows) of a model
// with more block columns than its stack buffer holds against the batch.
func TestXGBoostOneRowWide(t *testing.T) {
	const nf, rows = 50, 200
	b := randomBooster(31, 40, 6, nf, true, xgbjson.ObjectiveBinaryLogistic)
	x := randomMatrix(32, rows, nf, 0.2)
	p, err := NewXGBoost(b, x.Features)
	if err != nil {
		t.Fatal(err)
	}
	if p.perfect == nil || len(p.perfect.cols) <= 64 {
		t.Fatalf("want the complete-tree form with more than 64 block columns")
	}
	batch := make([]float64, rows)
	if err := p.PredictMatrix(x, batch); err != nil {
		t.Fatal(err)
	}
	one := &transform.Matrix{Rows: 1, Features: x.Features, Cols: make([][]float64, nf)}
	out := make([]float64, 1)
	for i := range rows {
		for j := range one.Cols {
			one.Cols[j] = x.Cols[j][i : i+1]
		}
		if err := p.PredictMatrix(one, out); err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(out[0]) != math.Float64bits(batch[i]) {
			t.Fatalf("row %d alone: %v, in the batch %v", i, out[0], batch[i])
		}
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeBenchData writes the benchmark's model and data for the Python peer.
func writeBenchData(b *testing.B, dir string, bst *xgbjson.Booster, x *transform.Matrix) {
	model, err := bst.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), model, 0o644); err != nil {
		b.Fatal(err)
	}
	nf := len(x.Cols)
	buf := make([]byte, 8*x.Rows*nf)
	for i := range x.Rows {
		for j := range nf {
			binary.LittleEndian.PutUint64(buf[8*(i*nf+j):], math.Float64bits(x.Cols[j][i]))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "x.f64"), buf, 0o644); err != nil {
		b.Fatal(err)
	}
	// Kiln's predictions of the first 1000 rows, for the peer to check.
	p, err := NewXGBoost(bst, x.Features)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, x.Rows)
	if err := p.PredictMatrix(x, out); err != nil {
		b.Fatal(err)
	}
	pred, _ := json.Marshal(out[:1000])
	if err := os.WriteFile(filepath.Join(dir, "kiln_pred.json"), pred, 0o644); err != nil {
		b.Fatal(err)
	}
}

// TestXGBoostPerfectMatchesWalk compares the complete-tree predictor
// (perfectForest) with the node walk it replaces and with xgbjson's
// reference, bit for bit, on random data with missing values, ±Inf, ±0
// and values equal to split thresholds, for complete and ragged trees,
// stumps, and thresholds of ±Inf and 0.
func TestXGBoostPerfectMatchesWalk(t *testing.T) {
	for _, tt := range []struct {
		name         string
		trees, depth int
		full         bool
		objective    string
		// edit changes the booster before the predictor is built.
		edit func(b *xgbjson.Booster)
		// perfect says whether the complete-tree form is used.
		perfect bool
	}{
		{"complete", 40, 6, true, xgbjson.ObjectiveBinaryLogistic, nil, true},
		{"ragged", 40, xgbMaxPerfectDepth, false, xgbjson.ObjectiveSquaredError, nil, true},
		{"shallow", 10, 1, false, xgbjson.ObjectiveSquaredError, nil, true},
		{"stumps", 5, 0, true, xgbjson.ObjectiveBinaryLogistic, nil, true},
		{"too deep", 10, xgbMaxPerfectDepth + 1, false, xgbjson.ObjectiveBinaryLogistic, nil, false},
		{"inf and zero thresholds", 30, 5, false, xgbjson.ObjectiveSquaredError, func(b *xgbjson.Booster) {
			for ti := range b.Trees {
				tr := &b.Trees[ti]
				for n := range tr.NumNodes() {
					if tr.IsLeaf(n) {
						continue
					}
					switch n % 5 {
					case 0:
						tr.SplitConditions[n] = float32(math.Inf(1))
					case 1:
						tr.SplitConditions[n] = 0
					case 2:
						tr.SplitConditions[n] = float32(math.Inf(-1))
						tr.DefaultLeft[n] = false
					}
				}
			}
		}, true},
		{"default left at -Inf", 10, 4, true, xgbjson.ObjectiveSquaredError, func(b *xgbjson.Booster) {
			b.Trees[3].SplitConditions[0] = float32(math.Inf(-1))
			b.Trees[3].DefaultLeft[0] = true
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const nf, rows = 9, 1003 // not a multiple of xgbGroup
			b := randomBooster(21, tt.trees, tt.depth, nf, tt.full, tt.objective)
			if tt.edit != nil {
				tt.edit(b)
			}
			x := randomMatrix(22, rows, nf, 0.15)
			// Values on thresholds, ±Inf and ±0 in every column.
			var thr []float32
			for _, tr := range b.Trees {
				for n := range tr.NumNodes() {
					if !tr.IsLeaf(n) {
						thr = append(thr, tr.SplitConditions[n])
					}
				}
			}
			rng := rand.New(rand.NewPCG(23, 3))
			special := []float64{math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1)}
			for j := range x.Cols {
				for i := range x.Cols[j] {
					switch k := rng.IntN(10); {
					case k < 2 && len(thr) > 0:
						x.Cols[j][i] = float64(thr[rng.IntN(len(thr))])
					case k == 2:
						x.Cols[j][i] = special[rng.IntN(len(special))]
					}
				}
			}
			p, err := NewXGBoost(b, x.Features)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.perfect != nil; got != tt.perfect {
				t.Fatalf("complete-tree form used: %v, want %v", got, tt.perfect)
			}
			walk := *p
			walk.perfect = nil
			// 1..xgbRowWalk-1 rows are walked row by row (predictRows).
			for _, n := range []int{rows, 1, 2, 3, xgbRowWalk, 5, 8, 9, 127, 128, 129} {
				xn := &transform.Matrix{Rows: n, Features: x.Features, Cols: make([][]float64, nf)}
				for j := range x.Cols {
					xn.Cols[j] = x.Cols[j][rows-n:]
				}
				got := make([]float64, n)
				want := make([]float64, n)
				if err := p.PredictMatrix(xn, got); err != nil {
					t.Fatal(err)
				}
				if err := walk.PredictMatrix(xn, want); err != nil {
					t.Fatal(err)
				}
				row := make([]float64, nf)
				for i := range n {
					for j := range row {
						row[j] = xn.Cols[j][i]
					}
					ref := b.Predict(row)
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) || math.Float64bits(got[i]) != math.Float64bits(ref) {
						t.Fatalf("%d rows: row %d %v: complete trees %v, node walk %v, reference %v", n, i, row, got[i], want[i], ref)
					}
				}
			}
		})
	}
}
