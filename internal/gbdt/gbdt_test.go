package gbdt

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/metrics"
)

// synth makes n rows of nf uniform features with labels from fn; a fraction
// nan of feature 0 is set missing (fn sees NaN there).
func synth(seed uint64, n, nf int, nan float64, fn func(x []float64, r *rand.Rand) float64) *Data {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &Data{X: make([][]float64, nf), Y: make([]float64, n)}
	for j := range d.X {
		d.X[j] = make([]float64, n)
	}
	x := make([]float64, nf)
	for i := range n {
		for j := range nf {
			x[j] = r.Float64()
			if j == 0 && r.Float64() < nan {
				x[j] = math.NaN()
			}
			d.X[j][i] = x[j]
		}
		d.Y[i] = fn(x, r)
	}
	return d
}

func noisyBinary(x []float64, r *rand.Rand) float64 {
	z := 4*(x[0]-0.5) + 3*math.Sin(6*x[1]) - 2*x[2]*x[3]
	if math.IsNaN(x[0]) {
		z = 3*math.Sin(6*x[1]) - 2*x[2]*x[3] + 1
	}
	if r.Float64() < 1/(1+math.Exp(-z)) {
		return 1
	}
	return 0
}

func train(t *testing.T, d, v *Data, p Params) *Model {
	t.Helper()
	m, err := Train(context.Background(), d, v, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeterministic(t *testing.T) {
	d := synth(1, 3000, 6, 0.1, noisyBinary)
	v := synth(2, 500, 6, 0.1, noisyBinary)
	p := DefaultParams(BinaryLogistic)
	p.NumRound, p.Subsample, p.ColsampleByTree, p.Seed, p.MaxBin = 20, 0.7, 0.5, 9, 64
	p.EarlyStoppingRounds = 5
	var models []*Model
	for _, threads := range []int{1, 2, 3, 8} {
		p.Threads = threads
		models = append(models, train(t, d, v, p))
	}
	for i, m := range models[1:] {
		if !reflect.DeepEqual(models[0], m) {
			t.Errorf("model %d differs from the single-threaded one", i+1)
		}
	}
	p.Seed = 10
	if other := train(t, d, v, p); reflect.DeepEqual(other.Trees, models[0].Trees) {
		t.Error("a different seed gave the same trees with subsample and colsample_bytree < 1")
	}
}

// TestMissingDirection checks that missing values follow the rows they
// behave like: with labels 1 when x0 > 0.5 or x0 is missing, missing rows
// go right at the root; with 1 when x0 < 0.5 or missing, left.
func TestMissingDirection(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fn          func(x []float64, r *rand.Rand) float64
		defaultLeft bool
	}{
		{"like high values", func(x []float64, _ *rand.Rand) float64 { return b2f(math.IsNaN(x[0]) || x[0] > 0.5) }, false},
		{"like low values", func(x []float64, _ *rand.Rand) float64 { return b2f(math.IsNaN(x[0]) || x[0] < 0.5) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := synth(3, 2000, 2, 0.2, tc.fn)
			p := DefaultParams(BinaryLogistic)
			p.NumRound, p.MaxDepth = 10, 1
			m := train(t, d, nil, p)
			root := &m.Trees[0]
			if root.Len() != 3 || root.Feature[0] != 0 {
				t.Fatalf("first tree: want a split on feature 0, got %+v", root)
			}
			if math.Abs(float64(root.Threshold[0])-0.5) > 0.01 {
				t.Errorf("threshold %v, want about 0.5", root.Threshold[0])
			}
			if root.DefaultLeft[0] != tc.defaultLeft {
				t.Errorf("default left = %v, want %v", root.DefaultLeft[0], tc.defaultLeft)
			}
			if p := m.Predict([]float64{math.NaN(), 0.5}); p < 0.9 {
				t.Errorf("P(y=1 | x0 missing) = %v, want > 0.9", p)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestEarlyStoppingKeepsBest(t *testing.T) {
	// Few noisy rows and deep trees: validation loss turns up quickly.
	d := synth(4, 300, 5, 0, noisyBinary)
	v := synth(5, 300, 5, 0, noisyBinary)
	p := DefaultParams(BinaryLogistic)
	p.NumRound, p.MaxDepth, p.Eta, p.MinChildWeight, p.Lambda = 200, 8, 0.5, 0, 0
	p.EarlyStoppingRounds = 10
	m := train(t, d, v, p)
	if m.Rounds == p.NumRound {
		t.Fatalf("trained all %d rounds; the data should overfit early", p.NumRound)
	}
	best := 0
	for i, x := range m.ValidHistory {
		if x < m.ValidHistory[best] {
			best = i
		}
	}
	if m.BestRound != best || len(m.Trees) != best+1 || m.Rounds != best+1+p.EarlyStoppingRounds {
		t.Fatalf("best round %d, %d trees, %d rounds; want best %d, %d trees, %d rounds (history %v)",
			m.BestRound, len(m.Trees), m.Rounds, best, best+1, best+1+p.EarlyStoppingRounds, m.ValidHistory)
	}
	if got := metrics.LogLoss(v.Y, m.PredictColumns(v.X)); math.Abs(got-m.ValidHistory[best]) > 1e-12 {
		t.Errorf("kept model's validation logloss %v, want the best round's %v", got, m.ValidHistory[best])
	}
}

func TestRegressionKnownFunction(t *testing.T) {
	f := func(x []float64, r *rand.Rand) float64 {
		return 2*math.Sin(4*x[0]) + 3*x[1]*x[1] - x[2] + 0.05*r.NormFloat64()
	}
	d := synth(6, 20000, 4, 0, f)
	test := synth(7, 5000, 4, 0, func(x []float64, r *rand.Rand) float64 { return f(x, r) })
	p := DefaultParams(SquaredError)
	p.NumRound, p.Eta = 200, 0.1
	m := train(t, d, nil, p)
	if m.BaseScore != float64(float32(mean(d.Y))) {
		t.Errorf("base score %v, want the label mean %v", m.BaseScore, mean(d.Y))
	}
	pred := m.PredictColumns(test.X)
	var se, sst float64
	my := mean(test.Y)
	for i, y := range test.Y {
		se += (pred[i] - y) * (pred[i] - y)
		sst += (y - my) * (y - my)
	}
	rmse := math.Sqrt(se / float64(len(pred)))
	// The noise alone gives 0.05; the target's spread is about 1.3.
	if rmse > 0.1 {
		t.Errorf("holdout RMSE %.4f, want <= 0.1 (R² %.4f)", rmse, 1-se/sst)
	}
}

// TestThresholdsMatchBins checks that the float32 thresholds written in the
// trees send every training row where its bins did: the margins Train
// accumulated from the row partition equal the model's predictions.
func TestThresholdsMatchBins(t *testing.T) {
	d := synth(8, 5000, 5, 0.1, noisyBinary)
	// Values that crowd around float32 rounding boundaries.
	for i := range d.X[1] {
		d.X[1][i] = 1 + float64(i%7)*1e-9
	}
	for _, sub := range []float64{1, 0.6} {
		p := DefaultParams(BinaryLogistic)
		p.NumRound, p.Subsample, p.MaxBin = 30, sub, 32
		g, margins, m := trainWithMargins(t, d, p)
		_ = g
		want := m.marginColumns(d.X)
		for i := range margins {
			if margins[i] != want[i] {
				t.Fatalf("subsample %v: row %d: training margin %v, model margin %v", sub, i, margins[i], want[i])
			}
		}
	}
}

// trainWithMargins trains like Train without validation and returns the
// training margins the grower accumulated.
func trainWithMargins(t *testing.T, d *Data, p Params) (*grower, []float64, *Model) {
	t.Helper()
	_, margins, m := trainWithClassMargins(t, d, p)
	return nil, margins[0], m
}

// trainWithClassMargins is trainWithMargins returning every class's
// margins.
func trainWithClassMargins(t *testing.T, d *Data, p Params) (*grower, [][]float64, *Model) {
	t.Helper()
	var margins [][]float64
	testHookMargins = func(z [][]float64) { margins = z }
	defer func() { testHookMargins = nil }()
	m := train(t, d, nil, p)
	return nil, margins, m
}

func TestGammaPrunes(t *testing.T) {
	d := synth(9, 2000, 4, 0, noisyBinary)
	p := DefaultParams(BinaryLogistic)
	p.NumRound = 5
	full := train(t, d, nil, p)
	p.Gamma = 5
	pruned := train(t, d, nil, p)
	nodes := func(m *Model) (n int) {
		for i := range m.Trees {
			n += m.Trees[i].Len()
		}
		return n
	}
	if nodes(pruned) >= nodes(full) {
		t.Fatalf("gamma 5 kept %d nodes, gamma 0 %d", nodes(pruned), nodes(full))
	}
	for ti, tr := range pruned.Trees {
		for i := range tr.Left {
			l, r := tr.Left[i], tr.Right[i]
			if l >= 0 && tr.Left[l] < 0 && tr.Left[r] < 0 && float64(tr.LossChange[i]) < p.Gamma {
				t.Errorf("tree %d node %d: split with loss change %v < gamma over two leaves survived", ti, i, tr.LossChange[i])
			}
		}
	}
}

func TestParamErrors(t *testing.T) {
	d := synth(10, 100, 4, 0, noisyBinary)
	for _, tc := range []struct {
		set  func(p *Params)
		want string
	}{
		{func(p *Params) { p.Objective = "multi:softmax" }, `objective "multi:softmax" is not supported`},
		{func(p *Params) { p.NumRound = 0 }, "n_estimators must be at least 1"},
		{func(p *Params) { p.Eta = 0 }, "learning_rate must be in (0, 1]"},
		{func(p *Params) { p.MaxDepth = 0 }, "max_depth must be from 1 to 31"},
		{func(p *Params) { p.Lambda = -1 }, "lambda must be a finite number >= 0"},
		{func(p *Params) { p.Gamma = math.NaN() }, "gamma must be a finite number >= 0"},
		{func(p *Params) { p.MinChildWeight = -0.5 }, "min_child_weight"},
		{func(p *Params) { p.Subsample = 1.5 }, "subsample must be in (0, 1]"},
		{func(p *Params) { p.ColsampleByTree = 0 }, "colsample_bytree must be in (0, 1]"},
		{func(p *Params) { p.MaxBin = 1 }, "max_bin must be from 2 to 65535"},
		{func(p *Params) { p.BaseScore = 1 }, "base_score must be a probability in (0, 1)"},
		{func(p *Params) { p.EarlyStoppingRounds = 3 }, "early_stopping_rounds needs validation rows"},
		{func(p *Params) { p.Objective = MultiSoftprob }, "num_class must be from 2 to 65536 for multi:softprob, got 0"},
		{func(p *Params) { p.Objective, p.NumClass = MultiSoftprob, 1 }, "num_class must be from 2 to 65536 for multi:softprob, got 1"},
		{func(p *Params) { p.NumClass = 3 }, "num_class is for multi:softprob only, got 3 for binary:logistic"},
		{func(p *Params) { p.Objective, p.NumClass, p.BaseScore = MultiSoftprob, 2, math.Inf(1) }, "base_score must be finite"},
	} {
		p := DefaultParams(BinaryLogistic)
		tc.set(&p)
		_, err := Train(context.Background(), d, nil, p, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	bad := synth(11, 10, 4, 0, noisyBinary)
	bad.Y[3] = 2
	if _, err := Train(context.Background(), bad, nil, DefaultParams(BinaryLogistic), nil); err == nil || !strings.Contains(err.Error(), "label of row 3 is 2") {
		t.Errorf("label 2: got %v", err)
	}
	mp := DefaultParams(MultiSoftprob)
	mp.NumClass = 2
	if _, err := Train(context.Background(), bad, nil, mp, nil); err == nil || !strings.Contains(err.Error(), "label of row 3 is 2; multi:softprob with num_class 2 needs a class index from 0 to 1") {
		t.Errorf("multi label 2: got %v", err)
	}
	bad.Y[3] = 0.5
	if _, err := Train(context.Background(), bad, nil, mp, nil); err == nil || !strings.Contains(err.Error(), "label of row 3 is 0.5") {
		t.Errorf("multi label 0.5: got %v", err)
	}
	bad.Y[3], bad.X[1][4] = 1, math.Inf(1)
	if _, err := Train(context.Background(), bad, nil, DefaultParams(BinaryLogistic), nil); err == nil || !strings.Contains(err.Error(), "feature 1 is infinite in row 4") {
		t.Errorf("inf: got %v", err)
	}
}

func TestCuts(t *testing.T) {
	for _, tc := range []struct {
		col    []float64
		maxBin int
		want   []float32
	}{
		{[]float64{3, 1, 2, 2, math.NaN()}, 256, []float32{2, 3, float32(3 + 3 + 1e-5)}},
		{[]float64{5, 5}, 256, []float32{float32(10 + 1e-5)}},
		{[]float64{math.NaN()}, 256, nil},
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 4, []float32{2, 4, 6, float32(14 + 1e-5)}},
	} {
		got := featureCuts(tc.col, tc.maxBin)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("featureCuts(%v, %d) = %v, want %v", tc.col, tc.maxBin, got, tc.want)
		}
		for i, v := range tc.col {
			if math.IsNaN(v) {
				continue
			}
			b := searchCut(got, float32(v))
			if !(float32(v) < got[b]) || (b > 0 && float32(v) < got[b-1]) {
				t.Errorf("value %v (row %d) in bin %d of %v", v, i, b, got)
			}
		}
	}
}

func TestSortFloat32s(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	for _, n := range []int{0, 5, 1023, 1024, 5000} {
		vals := make([]float32, n)
		for i := range vals {
			switch i % 5 {
			case 0:
				vals[i] = float32(r.NormFloat64() * 1e6)
			case 1:
				vals[i] = float32(r.IntN(3)) // ties, zeros
			case 2:
				vals[i] = -float32(r.ExpFloat64())
			case 3:
				vals[i] = float32(math.Copysign(0, -1))
			default:
				vals[i] = float32(r.Float64())
			}
		}
		want := append([]float32(nil), vals...)
		slices.Sort(want)
		sortFloat32s(vals)
		for i := range vals {
			if vals[i] != want[i] {
				t.Fatalf("n=%d: position %d is %v, want %v", n, i, vals[i], want[i])
			}
		}
	}
}

// threeClass labels rows with one of three classes: the largest of three
// noisy scores; a missing x0 favours class 0.
func threeClass(x []float64, r *rand.Rand) float64 {
	x0 := x[0]
	if math.IsNaN(x0) {
		x0 = 1.2
	}
	s := []float64{3 * x0, 4*x[1]*x[2] + 0.5, 2 * math.Sin(5*x[3])}
	best := 0
	for k := range s {
		s[k] += 0.5 * r.NormFloat64()
		if s[k] > s[best] {
			best = k
		}
	}
	return float64(best)
}

func multiParams(k int) Params {
	p := DefaultParams(MultiSoftprob)
	p.NumClass = k
	return p
}

// TestMulticlass trains three classes and checks the model's layout (k
// trees a round, classes in order), its probabilities (rows sum to 1, the
// batch equals the row path, classes are their argmax), its holdout
// accuracy and log loss, and its XGBoost booster.
func TestMulticlass(t *testing.T) {
	d := synth(21, 4000, 5, 0.1, threeClass)
	test := synth(22, 2000, 5, 0.1, threeClass)
	p := multiParams(3)
	p.NumRound, p.MaxDepth, p.Eta = 30, 4, 0.3
	m := train(t, d, nil, p)
	if m.NumClass != 3 || len(m.Trees) != 90 || len(m.TreeClass) != 90 || m.Metric != "mlogloss" || m.BaseScore != 0.5 {
		t.Fatalf("num_class %d, %d trees, %d classes, metric %q, base_score %v", m.NumClass, len(m.Trees), len(m.TreeClass), m.Metric, m.BaseScore)
	}
	for i, c := range m.TreeClass {
		if c != i%3 {
			t.Fatalf("tree %d is for class %d, want %d", i, c, i%3)
		}
	}
	proba := m.PredictProbaColumns(test.X)
	classes := m.PredictColumns(test.X)
	if len(proba) != 3*test.Rows() || len(classes) != test.Rows() {
		t.Fatalf("%d probabilities, %d classes for %d rows", len(proba), len(classes), test.Rows())
	}
	x := make([]float64, 5)
	correct := 0
	for i := range test.Rows() {
		row := proba[3*i : 3*i+3]
		if s := row[0] + row[1] + row[2]; math.Abs(s-1) > 1e-12 {
			t.Fatalf("row %d: probabilities %v sum to %v", i, row, s)
		}
		for j := range x {
			x[j] = test.X[j][i]
		}
		if one := m.PredictProba(x); !reflect.DeepEqual(one, row) {
			t.Fatalf("row %d: PredictProba %v, columns %v", i, one, row)
		}
		if c := float64(argmax(row)); classes[i] != c || m.Predict(x) != c {
			t.Fatalf("row %d: class %v (Predict %v), argmax of %v", i, classes[i], m.Predict(x), row)
		}
		if classes[i] == test.Y[i] {
			correct++
		}
	}
	all := metrics.Multiclass(test.Y, proba)
	// The label noise leaves about 85% predictable.
	if acc := float64(correct) / float64(test.Rows()); acc < 0.75 || all["logloss"] > 0.6 {
		t.Errorf("holdout accuracy %.4f, log loss %.4f", acc, all["logloss"])
	}
	t.Logf("holdout accuracy %.4f, log loss %.4f", all["accuracy"], all["logloss"])

	b := m.Booster([]string{"a", "b", "c", "d", "e"})
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if b.NumClass != 3 || !reflect.DeepEqual(b.TreeInfo, m.TreeClass) || b.Objective != "multi:softprob" {
		t.Fatalf("booster num_class %d tree_info %v objective %q", b.NumClass, b.TreeInfo, b.Objective)
	}
	// The booster sums in float32 (as XGBoost), the model in float64.
	bp := make([]float64, 3)
	worst := 0.0
	for i := range test.Rows() {
		for j := range x {
			x[j] = test.X[j][i]
		}
		b.PredictProba(x, bp)
		for k := range bp {
			worst = math.Max(worst, math.Abs(bp[k]-proba[3*i+k]))
		}
	}
	if worst > 1e-5 {
		t.Errorf("booster and model probabilities differ by up to %g", worst)
	}
}

// TestMulticlassGradients checks the softmax gradients against XGBoost's
// formulas on hand-computed margins: row i's margins are z[0][i], z[1][i],
// z[2][i] (0, 0, ln 3; 2, 0, 1; -1000, 0, 0).
func TestMulticlassGradients(t *testing.T) {
	z := [][]float64{{0, 2, -1000}, {0, 0, 0}, {math.Log(3), 1, 0}}
	y := []float64{1, 0, 2}
	grads := [][]gpair{make([]gpair, 3), make([]gpair, 3), make([]gpair, 3)}
	softmaxGradients(y, z, grads)
	e := math.E
	for _, tt := range []struct {
		row, class int
		p          float64
		label      bool
	}{
		{0, 0, 1.0 / 5, false}, {0, 1, 1.0 / 5, true}, {0, 2, 3.0 / 5, false},
		{1, 0, e * e / (e*e + 1 + e), true}, {1, 1, 1 / (e*e + 1 + e), false}, {1, 2, e / (e*e + 1 + e), false},
	} {
		g, h := tt.p, math.Max(2*tt.p*(1-tt.p), 1e-16)
		if tt.label {
			g = tt.p - 1
		}
		got := grads[tt.class][tt.row]
		if math.Abs(got.g-g) > 1e-15 || math.Abs(got.h-h) > 1e-15 {
			t.Errorf("row %d class %d: (g, h) = (%v, %v), want (%v, %v)", tt.row, tt.class, got.g, got.h, g, h)
		}
	}
	// Row 2: class 0 has margin -1000, so p_0 = 0 and its hessian is the
	// floor 1e-16; classes 1 and 2 share the rest.
	if got := grads[0][2]; got.g != 0 || got.h != 1e-16 {
		t.Errorf("row 2 class 0: (%v, %v), want (0, 1e-16)", got.g, got.h)
	}
	if got := grads[2][2]; math.Abs(got.g-(-0.5)) > 1e-15 || math.Abs(got.h-0.5) > 1e-15 {
		t.Errorf("row 2 class 2: (%v, %v), want (-0.5, 0.5)", got.g, got.h)
	}
}

// TestMulticlassDeterministicAndEarlyStopping checks that multi-class
// training does not depend on the number of goroutines, that early
// stopping keeps whole rounds up to the best mlogloss, and that the
// training margins match the model's (thresholds send rows where their
// bins did).
func TestMulticlassDeterministicAndEarlyStopping(t *testing.T) {
	d := synth(23, 600, 4, 0.1, threeClass)
	v := synth(24, 600, 4, 0.1, threeClass)
	p := multiParams(3)
	p.NumRound, p.MaxDepth, p.Eta, p.MinChildWeight, p.Lambda = 200, 8, 0.5, 0, 0
	p.Subsample, p.ColsampleByTree, p.Seed = 0.8, 0.75, 3
	p.EarlyStoppingRounds = 8
	var models []*Model
	for _, threads := range []int{1, 3} {
		p.Threads = threads
		models = append(models, train(t, d, v, p))
	}
	if !reflect.DeepEqual(models[0], models[1]) {
		t.Error("the model differs with 1 and 3 goroutines")
	}
	m := models[0]
	if m.Rounds == p.NumRound {
		t.Fatalf("trained all %d rounds; the data should overfit early", p.NumRound)
	}
	best := 0
	for i, x := range m.ValidHistory {
		if x < m.ValidHistory[best] {
			best = i
		}
	}
	if m.BestRound != best || len(m.Trees) != 3*(best+1) || len(m.TreeClass) != 3*(best+1) || m.Rounds != best+1+p.EarlyStoppingRounds {
		t.Fatalf("best round %d, %d trees, %d rounds; want best %d, %d trees", m.BestRound, len(m.Trees), m.Rounds, best, 3*(best+1))
	}
	proba := m.PredictProbaColumns(v.X)
	var loss float64
	for i, y := range v.Y {
		loss -= math.Log(max(proba[3*i+int(y)], 1e-16))
	}
	if loss /= float64(len(v.Y)); math.Abs(loss-m.ValidHistory[best]) > 1e-12 {
		t.Errorf("kept model's validation mlogloss %v, want the best round's %v", loss, m.ValidHistory[best])
	}

	p.EarlyStoppingRounds, p.NumRound = 0, 15
	_, margins, m := trainWithClassMargins(t, d, p)
	want := m.classMarginColumns(d.X)
	if !reflect.DeepEqual(margins, want) {
		t.Error("training margins differ from the model's")
	}
}
