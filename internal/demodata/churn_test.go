package demodata

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// churnTable is a parsed churn CSV.
type churnTable struct {
	header []string
	rows   [][]string
}

func generate(t *testing.T, opts ChurnOptions) ([]byte, churnTable) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteChurnCSV(&buf, opts); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), churnTable{header: recs[0], rows: recs[1:]}
}

// col returns the index of a column.
func (c churnTable) col(t *testing.T, name string) int {
	i := slices.Index(c.header, name)
	if i < 0 {
		t.Fatalf("no column %q", name)
	}
	return i
}

// floats returns a numeric column, NaN for empty fields.
func (c churnTable) floats(t *testing.T, name string) []float64 {
	i := c.col(t, name)
	out := make([]float64, len(c.rows))
	for r, row := range c.rows {
		if row[i] == "" {
			out[r] = math.NaN()
			continue
		}
		v, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			t.Fatalf("row %d column %s: %v", r+2, name, err)
		}
		out[r] = v
	}
	return out
}

func mean(xs []float64) float64 {
	var s, n float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			s += x
			n++
		}
	}
	return s / n
}

func TestWriteChurnCSVDeterministic(t *testing.T) {
	tests := []struct {
		name string
		a, b ChurnOptions
		same bool
	}{
		{"same options", ChurnOptions{Rows: 500, Seed: 1}, ChurnOptions{Rows: 500, Seed: 1}, true},
		{"same drifted options", ChurnOptions{Rows: 500, Seed: 1, Drift: 0.5}, ChurnOptions{Rows: 500, Seed: 1, Drift: 0.5}, true},
		{"other seed", ChurnOptions{Rows: 500, Seed: 1}, ChurnOptions{Rows: 500, Seed: 2}, false},
		{"other drift", ChurnOptions{Rows: 500, Seed: 1}, ChurnOptions{Rows: 500, Seed: 1, Drift: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := generate(t, tc.a)
			b, _ := generate(t, tc.b)
			if bytes.Equal(a, b) != tc.same {
				t.Errorf("outputs equal = %v, want %v", bytes.Equal(a, b), tc.same)
			}
		})
	}
}

func TestWriteChurnCSVShape(t *testing.T) {
	for _, rows := range []int{0, 1, 1234} {
		_, tab := generate(t, ChurnOptions{Rows: rows, Seed: 9})
		if !slices.Equal(tab.header, ChurnHeader) {
			t.Errorf("header %v", tab.header)
		}
		if len(tab.rows) != rows {
			t.Errorf("%d rows, want %d", len(tab.rows), rows)
		}
		if rows > 0 && tab.rows[0][0] != "C0000001" {
			t.Errorf("first id %q", tab.rows[0][0])
		}
	}
}

func TestWriteChurnCSVValues(t *testing.T) {
	_, tab := generate(t, ChurnOptions{Rows: 20000, Seed: 42})
	allowed := map[string][]string{
		"plan":      {"basic", "standard", "premium"},
		"contract":  {"month-to-month", "one-year", "two-year"},
		"region":    {"north", "south", "east", "west", ""},
		"paperless": {"true", "false"},
		"churned":   {"0", "1"},
	}
	for name, vals := range allowed {
		i := tab.col(t, name)
		for r, row := range tab.rows {
			if !slices.Contains(vals, row[i]) {
				t.Fatalf("row %d: %s = %q", r+2, name, row[i])
			}
		}
	}
	ranges := []struct {
		name    string
		lo, hi  float64
		missing [2]float64 // allowed share of empty fields
	}{
		{"tenure", 0, 72, [2]float64{0.04, 0.06}},
		{"monthly_charges", 20, 120, [2]float64{0, 0}},
		{"total_charges", 0, 72 * 120 * 1.3, [2]float64{0.04, 0.06}},
		{"support_calls", 0, 10, [2]float64{0, 0}},
	}
	for _, rg := range ranges {
		xs := tab.floats(t, rg.name)
		missing := 0
		for _, x := range xs {
			if math.IsNaN(x) {
				missing++
			} else if x < rg.lo || x > rg.hi {
				t.Fatalf("%s = %v outside [%v, %v]", rg.name, x, rg.lo, rg.hi)
			}
		}
		if share := float64(missing) / float64(len(xs)); share < rg.missing[0] || share > rg.missing[1] {
			t.Errorf("%s: %.3f missing, want within %v", rg.name, share, rg.missing)
		}
	}
	tenure, total := tab.floats(t, "tenure"), tab.floats(t, "total_charges")
	for r := range tenure {
		if math.IsNaN(tenure[r]) != math.IsNaN(total[r]) {
			t.Fatalf("row %d: tenure %v but total_charges %v", r+2, tenure[r], total[r])
		}
	}
	region := tab.col(t, "region")
	missing := 0
	for _, row := range tab.rows {
		if row[region] == "" {
			missing++
		}
	}
	if share := float64(missing) / float64(len(tab.rows)); share < 0.01 || share > 0.03 {
		t.Errorf("region: %.3f missing", share)
	}
}

func TestChurnRateAndSignal(t *testing.T) {
	_, tab := generate(t, ChurnOptions{Rows: 20000, Seed: 7})
	y := tab.floats(t, "churned")
	rate := mean(y)
	t.Logf("churn rate %.3f", rate)
	if rate < 0.20 || rate > 0.30 {
		t.Errorf("churn rate %.3f, want about 0.25", rate)
	}
	// Fit a logistic regression on the first half, score the second.
	x := features(t, tab)
	half := len(y) / 2
	w := fitLogistic(x[:half], y[:half])
	scores := make([]float64, len(y)-half)
	for i := range scores {
		scores[i] = dot(w, x[half+i])
	}
	auc := rocAUC(scores, y[half:])
	t.Logf("held-out AUC %.3f", auc)
	if auc < 0.78 || auc > 0.92 {
		t.Errorf("AUC %.3f, want within [0.78, 0.92]", auc)
	}
}

func TestDriftMovesMeans(t *testing.T) {
	_, base := generate(t, ChurnOptions{Rows: 10000, Seed: 3})
	_, drifted := generate(t, ChurnOptions{Rows: 10000, Seed: 3, Drift: 1})
	tests := []struct {
		column   string
		minShift float64 // drifted mean - base mean, signed
	}{
		{"monthly_charges", 30},
		{"tenure", -10},
		{"support_calls", 1.5},
	}
	for _, tc := range tests {
		b, d := mean(base.floats(t, tc.column)), mean(drifted.floats(t, tc.column))
		t.Logf("%s: mean %.2f -> %.2f", tc.column, b, d)
		if shift := d - b; (tc.minShift > 0 && shift < tc.minShift) || (tc.minShift < 0 && shift > tc.minShift) {
			t.Errorf("%s: mean moved by %.2f, want at least %.2f", tc.column, shift, tc.minShift)
		}
	}
	share := func(tab churnTable, col, val string) float64 {
		i := tab.col(t, col)
		n := 0
		for _, row := range tab.rows {
			if row[i] == val {
				n++
			}
		}
		return float64(n) / float64(len(tab.rows))
	}
	if b, d := share(base, "plan", "premium"), share(drifted, "plan", "premium"); d-b < 0.15 {
		t.Errorf("premium share %.2f -> %.2f, want a shift of at least 0.15", b, d)
	}
}

func TestWriteChurnCSVErrors(t *testing.T) {
	for _, opts := range []ChurnOptions{{Rows: -1}, {Rows: 1, Drift: -0.1}, {Rows: 1, Drift: 1.5}, {Rows: 1, Drift: math.NaN()}} {
		if err := WriteChurnCSV(&bytes.Buffer{}, opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
}

// features builds a standardized design matrix with an intercept.
func features(t *testing.T, tab churnTable) [][]float64 {
	tenure := tab.floats(t, "tenure")
	monthly := tab.floats(t, "monthly_charges")
	calls := tab.floats(t, "support_calls")
	mt := mean(tenure)
	cols := map[string]int{}
	for _, name := range []string{"plan", "contract", "paperless"} {
		cols[name] = tab.col(t, name)
	}
	x := make([][]float64, len(tab.rows))
	for r, row := range tab.rows {
		ten, miss := tenure[r], 0.0
		if math.IsNaN(ten) {
			ten, miss = mt, 1
		}
		x[r] = []float64{
			1, ten, miss, monthly[r], calls[r],
			b2f(row[cols["paperless"]] == "true"),
			b2f(row[cols["plan"]] == "standard"), b2f(row[cols["plan"]] == "premium"),
			b2f(row[cols["contract"]] == "one-year"), b2f(row[cols["contract"]] == "two-year"),
		}
	}
	for j := 1; j < len(x[0]); j++ {
		var s, ss float64
		for _, v := range x {
			s += v[j]
		}
		m := s / float64(len(x))
		for _, v := range x {
			ss += (v[j] - m) * (v[j] - m)
		}
		sd := math.Sqrt(ss / float64(len(x)))
		for _, v := range x {
			v[j] = (v[j] - m) / sd
		}
	}
	return x
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// fitLogistic fits logistic regression weights by Newton's method.
func fitLogistic(x [][]float64, y []float64) []float64 {
	p := len(x[0])
	w := make([]float64, p)
	for range 25 {
		grad := make([]float64, p)
		hess := make([][]float64, p)
		for i := range hess {
			hess[i] = make([]float64, p)
			hess[i][i] = 1e-6 // ridge for stability
		}
		for r, xi := range x {
			mu := 1 / (1 + math.Exp(-dot(w, xi)))
			for i := range p {
				grad[i] += (y[r] - mu) * xi[i]
				for j := range p {
					hess[i][j] += mu * (1 - mu) * xi[i] * xi[j]
				}
			}
		}
		step := solve(hess, grad)
		for i := range w {
			w[i] += step[i]
		}
	}
	return w
}

// solve solves a*x = b by Gaussian elimination with partial pivoting.
func solve(a [][]float64, b []float64) []float64 {
	n := len(b)
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k < n; k++ {
				a[r][k] -= f * a[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < n; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x
}

// rocAUC is the probability that a random positive outscores a random
// negative (ties count half).
func rocAUC(scores, y []float64) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var rankSum, pos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2 // 1-based average rank of the tie group
		for k := i; k < j; k++ {
			if y[idx[k]] == 1 {
				rankSum += avgRank
				pos++
			}
		}
		i = j
	}
	neg := float64(len(y)) - pos
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
