package model

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/transform"
)

// TestLogisticNonFinite checks the finite check fused into
// Logistic.PredictMatrix: a NaN or ±Inf feature anywhere in a batch
// larger than one block is an error naming the feature and row, and a
// finite row whose sum overflows is scored, not rejected.
func TestLogisticNonFinite(t *testing.T) {
	const rows = 3*logisticBlock + 17
	l := &Logistic{Type: EstimatorLogistic, Features: []string{"a", "b", "c"}, Weights: []float64{0.5, 0, -2}, Intercept: 0.25}
	tests := []struct {
		name string
		row  int
		col  int
		v    float64
		want string // "" for no error
	}{
		{"NaN", 5000, 0, math.NaN(), `feature "a" is missing (NaN) in row 5000`},
		{"+Inf", rows - 1, 2, math.Inf(1), `feature "c" is infinite (+Inf) in row ` + strconv.Itoa(rows-1)},
		{"-Inf zero weight", 3, 1, math.Inf(-1), `row 3 is NaN`}, // 0·-Inf
		{"overflow", 7, 2, -math.MaxFloat64, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &transform.Matrix{Rows: rows, Features: l.Features}
			for range l.Features {
				c := make([]float64, rows)
				for i := range c {
					c[i] = float64(i%13) - 6
				}
				x.Cols = append(x.Cols, c)
			}
			x.Cols[tc.col][tc.row] = tc.v
			out := make([]float64, rows)
			err := l.PredictMatrix(x, out)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if out[tc.row] != 1 {
					t.Errorf("out[%d] = %v, want 1", tc.row, out[tc.row])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
