package drift

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/internal/drift/benchdata"
)

var update = flag.Bool("update", false, "regenerate testdata/scipy_golden.json with /usr/bin/python3 (SciPy)")

const goldenFile = "testdata/scipy_golden.json"

// jf is a float64 that reads the strings "inf", "-inf" and "nan" too.
type jf float64

func (f *jf) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "inf":
			*f = jf(math.Inf(1))
		case "-inf":
			*f = jf(math.Inf(-1))
		case "nan":
			*f = jf(math.NaN())
		default:
			return fmt.Errorf("bad float %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jf(v)
	return nil
}

func (f jf) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"nan"`), nil
	case math.IsInf(v, 1):
		return []byte(`"inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-inf"`), nil
	}
	return json.Marshal(v)
}

func floats(xs []jf) []float64 {
	if xs == nil {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func jfs(xs []float64) []jf {
	out := make([]jf, len(xs))
	for i, x := range xs {
		out[i] = jf(x)
	}
	return out
}

type golden struct {
	SciPy string `json:"scipy"`
	KS    []struct {
		Name      string `json:"name"`
		A, B      []jf
		Statistic jf `json:"statistic"`
		PValue    jf `json:"pvalue"`
	} `json:"ks"`
	KStwoSF []struct {
		N  int `json:"n"`
		X  float64
		SF jf `json:"sf"`
	} `json:"kstwo_sf"`
	Smirnov []struct {
		N  int `json:"n"`
		X  float64
		SF jf `json:"sf"`
	} `json:"smirnov"`
	ChiSquare []struct {
		Observed  []jf `json:"observed"`
		Expected  []jf `json:"expected"`
		Statistic jf   `json:"statistic"`
		PValue    jf   `json:"pvalue"`
	} `json:"chisquare"`
	Chi2SF []struct {
		DF float64 `json:"df"`
		X  float64 `json:"x"`
		SF jf      `json:"sf"`
	} `json:"chi2_sf"`
	Wasserstein []struct {
		Name     string `json:"name"`
		A, B     []jf
		Distance jf `json:"distance"`
		Normed   jf `json:"normed"`
	} `json:"wasserstein"`
	JensenShannon []struct {
		P, Q     []jf
		Distance jf `json:"distance"`
	} `json:"jensenshannon"`
}

// scipyPython returns /usr/bin/python3 (or $KILN_PYTHON) when it imports
// scipy, or "".
func scipyPython() string {
	candidates := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("KILN_PYTHON"); p != "" {
		candidates = append([]string{p}, candidates...)
	}
	for _, c := range candidates {
		if exec.Command(c, "-c", "import scipy, numpy").Run() == nil {
			return c
		}
	}
	return ""
}

// regenerate runs gen_scipy.py once per test binary under -update.
var regenerate = sync.OnceValue(func() error {
	py := scipyPython()
	if py == "" {
		return fmt.Errorf("-update needs a python3 with scipy")
	}
	cmd := exec.Command(py, "testdata/gen_scipy.py", goldenFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gen_scipy.py: %v\n%s", err, out)
	}
	return nil
})

func loadGolden(t *testing.T) golden {
	t.Helper()
	if *update {
		if err := regenerate(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// agree reports whether got equals want to tol, absolute or relative,
// whichever is looser; NaNs and equal infinities agree.
func agree(got, want, tol float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	d := math.Abs(got - want)
	return d <= tol || d <= tol*math.Abs(want)
}

// relErr returns |got-want| / max(|want|, tiny), 0 for agreeing NaN/Inf.
func relErr(got, want float64) float64 {
	if agree(got, want, 0) {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

// Tolerances: the brief is 1e-6 (absolute or relative, whichever is
// looser); these tests hold the code to 1e-9, relative, wherever SciPy
// itself is that accurate.
const (
	tolStat = 1e-12 // statistics: the same floating-point operations as SciPy
	tolP    = 1e-9  // p-values: relative, or absolute below 1e-9
)

func TestGoldenKS(t *testing.T) {
	g := loadGolden(t)
	if len(g.KS) == 0 {
		t.Fatal("no golden KS cases")
	}
	for _, c := range g.KS {
		t.Run(c.Name, func(t *testing.T) {
			a, b := floats(c.A), floats(c.B)
			d, p := KS(a, b)
			if !agree(d, float64(c.Statistic), tolStat) || !agree(p, float64(c.PValue), tolP) {
				t.Errorf("KS = %.17g, %.17g; SciPy %.17g, %.17g (relerr p %.2g)", d, p, float64(c.Statistic), float64(c.PValue), relErr(p, float64(c.PValue)))
			}
			// Symmetry and the one-sort variant.
			d2, p2 := KS(b, a)
			d3, p3, _ := KSAndWasserstein(a, b)
			if d2 != d || p2 != p || d3 != d || p3 != p {
				t.Errorf("KS(b, a) = %v, %v and KSAndWasserstein = %v, %v; KS(a, b) = %v, %v", d2, p2, d3, p3, d, p)
			}
		})
	}
}

func TestGoldenKStwo(t *testing.T) {
	g := loadGolden(t)
	if len(g.KStwoSF) < 100 {
		t.Fatalf("%d golden kstwo cases", len(g.KStwoSF))
	}
	worst := 0.0
	for _, c := range g.KStwoSF {
		got := kstwoSF(c.X, float64(c.N))
		want := float64(c.SF)
		if !agree(got, want, tolP) {
			t.Errorf("kstwo.sf(%.17g, %d) = %.17g, SciPy %.17g (relerr %.2g)", c.X, c.N, got, want, relErr(got, want))
		}
		if want > 1e-300 {
			worst = math.Max(worst, relErr(got, want))
		}
	}
	t.Logf("kstwo.sf: %d cases, worst relative error %.2g", len(g.KStwoSF), worst)
	worst = 0
	for _, c := range g.Smirnov {
		got, want := smirnov(c.N, c.X), float64(c.SF)
		if !agree(got, want, tolP) {
			t.Errorf("smirnov(%d, %.17g) = %.17g, SciPy %.17g", c.N, c.X, got, want)
		}
		if want > 1e-300 {
			worst = math.Max(worst, relErr(got, want))
		}
	}
	t.Logf("smirnov: %d cases, worst relative error %.2g", len(g.Smirnov), worst)
}

func TestGoldenChiSquare(t *testing.T) {
	g := loadGolden(t)
	for i, c := range g.ChiSquare {
		s, p := ChiSquare(floats(c.Observed), floats(c.Expected))
		if !agree(s, float64(c.Statistic), tolStat) || !agree(p, float64(c.PValue), tolP) {
			t.Errorf("case %d: ChiSquare = %.17g, %.17g; SciPy %.17g, %.17g", i, s, p, float64(c.Statistic), float64(c.PValue))
		}
	}
	worst := 0.0
	for _, c := range g.Chi2SF {
		got, want := chi2SF(c.X, c.DF), float64(c.SF)
		if !agree(got, want, 1e-12) {
			t.Errorf("chi2.sf(%.17g, %v) = %.17g, SciPy %.17g (relerr %.2g)", c.X, c.DF, got, want, relErr(got, want))
		}
		if want > 1e-300 {
			worst = math.Max(worst, relErr(got, want))
		}
	}
	t.Logf("chi2.sf: %d cases, worst relative error %.2g", len(g.Chi2SF), worst)
}

func TestGoldenWassersteinAndJS(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.Wasserstein {
		a, b := floats(c.A), floats(c.B)
		w := Wasserstein(a, b)
		if !agree(w, float64(c.Distance), tolStat) {
			t.Errorf("%s: Wasserstein = %.17g, SciPy %.17g", c.Name, w, float64(c.Distance))
		}
		if w2 := Wasserstein(b, a); w2 != w {
			t.Errorf("%s: Wasserstein(b, a) = %v, (a, b) = %v", c.Name, w2, w)
		}
		res := CompareNumeric(a, b, Options{NumericMethod: MethodWasserstein})
		if !agree(res.Statistic, float64(c.Normed), tolStat) {
			t.Errorf("%s: normed Wasserstein = %.17g, SciPy/Evidently %.17g", c.Name, res.Statistic, float64(c.Normed))
		}
	}
	for i, c := range g.JensenShannon {
		d := JensenShannon(floats(c.P), floats(c.Q))
		if !agree(d, float64(c.Distance), tolStat) {
			t.Errorf("case %d: JensenShannon = %.17g, SciPy %.17g", i, d, float64(c.Distance))
		}
	}
}

// liveCase is one case sent to gen_scipy.py --live.
type liveCase struct {
	Kind     string  `json:"kind"`
	A        []jf    `json:"a,omitempty"`
	B        []jf    `json:"b,omitempty"`
	Observed []jf    `json:"observed,omitempty"`
	Expected []jf    `json:"expected,omitempty"`
	P        []jf    `json:"p,omitempty"`
	Q        []jf    `json:"q,omitempty"`
	N        int     `json:"n,omitempty"`
	X        float64 `json:"x,omitempty"`
}

type liveResult struct {
	Statistic   jf `json:"statistic"`
	PValue      jf `json:"pvalue"`
	Wasserstein jf `json:"wasserstein"`
	Normed      jf `json:"normed"`
	Distance    jf `json:"distance"`
	SF          jf `json:"sf"`
}

func runLive(t *testing.T, py string, cases []liveCase) []liveResult {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "gen_scipy.py"), "--live")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gen_scipy.py --live: %v\n%s", err, stderr.String())
	}
	var res []liveResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != len(cases) {
		t.Fatalf("%d answers for %d cases", len(res), len(cases))
	}
	return res
}

// TestLiveSciPy runs SciPy on freshly generated random data (a new seed
// each run, logged) when a python3 with scipy is available.
func TestLiveSciPy(t *testing.T) {
	py := scipyPython()
	if py == "" {
		t.Skip("no python3 with scipy (set KILN_PYTHON)")
	}
	seed := uint64(rand.Int64())
	if s := os.Getenv("KILN_DRIFT_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (rerun with KILN_DRIFT_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	sizes := []int{1, 2, 3, 7, 20, 50, 100, 333, 1000, 2500, 10000, 10001, 30000}
	var cases []liveCase
	for i := 0; i < 40; i++ {
		n1 := sizes[rng.IntN(len(sizes))]
		n2 := sizes[rng.IntN(len(sizes))]
		if i%3 == 0 {
			n2 = n1
		}
		// Rounding to a random number of decimals makes ties.
		dec := math.Pow(10, float64(rng.IntN(4)))
		shift := rng.Float64() * 0.3
		a, b := make([]float64, n1), make([]float64, n2)
		for j := range a {
			a[j] = math.Round(rng.NormFloat64()*dec) / dec
		}
		for j := range b {
			b[j] = math.Round((rng.NormFloat64()*(0.8+0.4*rng.Float64())+shift)*dec) / dec
		}
		cases = append(cases, liveCase{Kind: "ks", A: jfs(a), B: jfs(b)})
	}
	for i := 0; i < 20; i++ {
		k := 2 + rng.IntN(60)
		ref, cur := make([]float64, k), make([]float64, k)
		var sr, sc float64
		for j := range ref {
			ref[j] = float64(1 + rng.IntN(200))
			cur[j] = float64(rng.IntN(220))
			sr += ref[j]
			sc += cur[j]
		}
		for j := range ref {
			ref[j] *= sc / sr
		}
		cases = append(cases, liveCase{Kind: "chisquare", Observed: jfs(cur), Expected: jfs(ref)})
		p, q := make([]float64, k), make([]float64, k)
		for j := range p {
			p[j] = float64(rng.IntN(5)) * rng.Float64()
			q[j] = float64(rng.IntN(5)) * rng.Float64()
		}
		p[0]++
		q[k-1]++
		cases = append(cases, liveCase{Kind: "jensenshannon", P: jfs(p), Q: jfs(q)})
	}
	for i := 0; i < 60; i++ {
		n := 1 + int(math.Exp(rng.Float64()*math.Log(3e6)))
		x := math.Sqrt(rng.Float64() * 30 / float64(n))
		if x >= 1 {
			x = rng.Float64()
		}
		cases = append(cases, liveCase{Kind: "kstwo", N: n, X: x})
	}
	res := runLive(t, py, cases)
	for i, c := range cases {
		r := res[i]
		switch c.Kind {
		case "ks":
			a, b := floats(c.A), floats(c.B)
			d, p, w := KSAndWasserstein(a, b)
			if !agree(d, float64(r.Statistic), tolStat) || !agree(p, float64(r.PValue), tolP) || !agree(w, float64(r.Wasserstein), tolStat) {
				t.Errorf("ks %dx%d: got %.17g %.17g W %.17g; SciPy %.17g %.17g W %.17g",
					len(a), len(b), d, p, w, float64(r.Statistic), float64(r.PValue), float64(r.Wasserstein))
			}
			res := CompareNumeric(a, b, Options{NumericMethod: MethodWasserstein})
			if !agree(res.Statistic, float64(r.Normed), tolStat) {
				t.Errorf("normed W %dx%d = %.17g, SciPy %.17g", len(a), len(b), res.Statistic, float64(r.Normed))
			}
		case "chisquare":
			s, p := ChiSquare(floats(c.Observed), floats(c.Expected))
			if !agree(s, float64(r.Statistic), tolStat) || !agree(p, float64(r.PValue), tolP) {
				t.Errorf("chisquare %v %v: got %.17g %.17g; SciPy %.17g %.17g", floats(c.Observed), floats(c.Expected), s, p, float64(r.Statistic), float64(r.PValue))
			}
		case "jensenshannon":
			d := JensenShannon(floats(c.P), floats(c.Q))
			if !agree(d, float64(r.Distance), tolStat) {
				t.Errorf("jensenshannon: got %.17g; SciPy %.17g", d, float64(r.Distance))
			}
		case "kstwo":
			sf := kstwoSF(c.X, float64(c.N))
			if !agree(sf, float64(r.SF), tolP) {
				t.Errorf("kstwo.sf(%.17g, %d) = %.17g; SciPy %.17g", c.X, c.N, sf, float64(r.SF))
			}
		}
	}
}

// TestBenchmarkDataAgainstSciPy checks the exact statistics on the
// benchmark's own data (1M vs 1M rows; the first 3 columns, or
// $KILN_DRIFT_BENCHCHECK of them) against SciPy, through
// scripts/bench/drift_scipy.py, and logs how far the streamed (binned)
// normed Wasserstein distance is from the exact one. Skipped with -short
// or without SciPy.
func TestBenchmarkDataAgainstSciPy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	py := scipyPython()
	if py == "" {
		t.Skip("no python3 with scipy (set KILN_PYTHON)")
	}
	columns := 3
	if s := os.Getenv("KILN_DRIFT_BENCHCHECK"); s != "" {
		fmt.Sscan(s, &columns)
	}
	dir := t.TempDir()
	for c := 0; c < columns; c++ {
		if err := benchdata.WriteColumn(dir, c, benchdata.Rows); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, filepath.Join("..", "..", "scripts", "bench", "drift_scipy.py"), "stats", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drift_scipy.py stats: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Column      int     `json:"column"`
		KS          float64 `json:"ks"`
		KSPValue    float64 `json:"ks_pvalue"`
		Wasserstein float64 `json:"wasserstein"`
		Normed      float64 `json:"normed"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != columns {
		t.Fatalf("%d SciPy results for %d columns", len(want), columns)
	}
	for _, w := range want {
		ref, cur := benchdata.Column(w.Column, benchdata.Rows)
		d, p, wd := KSAndWasserstein(ref, cur)
		normed := CompareNumeric(ref, cur, Options{NumericMethod: MethodWasserstein}).Statistic
		if !agree(d, w.KS, tolStat) || !agree(p, w.KSPValue, tolP) || !agree(wd, w.Wasserstein, 1e-9) || !agree(normed, w.Normed, 1e-9) {
			t.Errorf("column %d: KS %.17g p %.17g W %.17g normed %.17g; SciPy %.17g %.17g %.17g %.17g",
				w.Column, d, p, wd, normed, w.KS, w.KSPValue, w.Wasserstein, w.Normed)
		}
		acc := NewNumericReference(ref, Options{}).NewAccumulator()
		acc.Add(cur, nil)
		st := acc.Result(Options{})
		if math.Abs(st.Statistic-w.Normed) > st.StatisticError+1e-9 {
			t.Errorf("column %d: streamed normed W %v ± %v, SciPy %v", w.Column, st.Statistic, st.StatisticError, w.Normed)
		}
		t.Logf("column %d: KS %.6g p %.6g (relerr p %.2g), W %.6g (relerr %.2g); streamed normed W %.6g ± %.2g vs %.6g",
			w.Column, d, p, relErr(p, w.KSPValue), wd, relErr(wd, w.Wasserstein), st.Statistic, st.StatisticError, w.Normed)
	}
}
