package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// ridgeParams are the ridge algorithm's parameters.
type ridgeParams struct {
	// L2 is the penalty on the standardized coefficients. Default 1.
	L2 float64
}

// parseRidgeParams reads the ridge parameters: l2 (>= 0, default 1).
func parseRidgeParams(raw map[string]any) (ridgeParams, error) {
	p := ridgeParams{L2: 1}
	err := parseParams("ridge", raw, []paramSpec{
		{name: "l2", lo: 0, hi: math.Inf(1), set: func(x float64) { p.L2 = x }},
	}, nil)
	return p, err
}

// linearModel is Kiln's JSON for a linear regression model.
type linearModel struct {
	Type      string    `json:"type"`
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
}

// ridgeAlgo is ridge linear regression.
type ridgeAlgo struct{ params ridgeParams }

func (a *ridgeAlgo) tasks() []string { return []string{taskRegression} }
func (a *ridgeAlgo) missingOK() bool { return false }
func (a *ridgeAlgo) describe() string {
	return fmt.Sprintf("ridge regression (l2=%g)", a.params.L2)
}

func (a *ridgeAlgo) fit(ctx context.Context, schema schemaSpec, train, _ *data, p *progress, log io.Writer) (*fitResult, error) {
	w, b, err := fitRidge(ctx, train, a.params.L2)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "ridge: solved the %d×%d normal equations\n", len(w), len(w))
	p.report(80, "solved")
	return &fitResult{
		predict: func(d *data) []float64 {
			out := make([]float64, d.rows)
			for i := range out {
				out[i] = b
			}
			for j, col := range d.x {
				for i, v := range col {
					out[i] += w[j] * v
				}
			}
			return out
		},
		model: func() ([]byte, error) {
			return json.MarshalIndent(linearModel{Type: "linear", Features: schema.Features, Weights: w, Intercept: b}, "", "  ")
		},
		iterations: 1,
	}, nil
}

// fitRidge minimises Σ_i (y_i - b - Σ_j β_j z_ij)² + l2·‖β‖² over the
// standardized features z_ij = (x_ij - μ_j)/σ_j (population σ) in closed
// form: β = (ZᵀZ + l2·I)⁻¹ Zᵀ(y - ȳ) by Cholesky, then returns the weights
// and intercept on the original scale (w_j = β_j/σ_j, b = ȳ - Σ w_j μ_j).
// This is scikit-learn's Ridge(alpha=l2) after a StandardScaler. Constant
// features get weight 0. All sums run in a fixed order (deterministic).
func fitRidge(ctx context.Context, d *data, l2 float64) ([]float64, float64, error) {
	nf, n := len(d.x), float64(d.rows)
	mu, sigma := make([]float64, nf), make([]float64, nf)
	var active []int
	for j, col := range d.x {
		mu[j] = sum(col) / n
		var ss float64
		for _, v := range col {
			ss += (v - mu[j]) * (v - mu[j])
		}
		sigma[j] = math.Sqrt(ss / n)
		if sigma[j] > 0 {
			active = append(active, j)
		}
	}
	ybar := sum(d.y) / n
	k := len(active)
	z := make([][]float64, k)
	for a, j := range active {
		z[a] = make([]float64, d.rows)
		for i, v := range d.x[j] {
			z[a][i] = (v - mu[j]) / sigma[j]
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	h := make([]float64, k*k)
	rhs := make([]float64, k)
	yc := make([]float64, d.rows)
	for i, v := range d.y {
		yc[i] = v - ybar
	}
	for a := range k {
		rhs[a] = dot(z[a], yc)
		for c := 0; c <= a; c++ {
			h[a*k+c] = dot(z[a], z[c])
			h[c*k+a] = h[a*k+c]
		}
		h[a*k+a] += l2
	}
	if k > 0 {
		if err := choleskySolve(h, k, rhs); err != nil {
			return nil, 0, badInput("ridge: the normal equations are singular (collinear features with l2 = 0?); increase params.l2")
		}
	}
	w := make([]float64, nf)
	b := ybar
	for a, j := range active {
		w[j] = rhs[a] / sigma[j]
		b -= w[j] * mu[j]
	}
	for j, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, 0, fmt.Errorf("ridge: weight %d is %v", j, v)
		}
	}
	return w, b, nil
}
