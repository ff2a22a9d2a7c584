package main

import (
	"context"
	"fmt"
	"math"
)

// logisticFit is the result of fitLogistic.
type logisticFit struct {
	b          float64   // intercept
	w          []float64 // one weight per feature
	iterations int       // Newton steps taken
	converged  bool      // max |gradient| <= tol at the end
	grad       float64   // final max |gradient|
}

// rowBlock is how many rows the Hessian loop handles at a time.
const rowBlock = 1024

// fitLogistic minimises
//
//	f(b, w) = (1/n) Σ_i [log(1+e^{z_i}) - y_i z_i] + (l2/2)‖w‖²,  z_i = b + w·x_i
//
// by Newton's method: each step solves H·Δ = g by Cholesky and takes the
// largest step in {1, 1/2, 1/4, ...} that satisfies the Armijo condition, or,
// once the predicted decrease is below what f can resolve, the full step if
// it shrinks the gradient.
// It stops when max |g| <= tol, after MaxIter steps, or when no step
// decreases f any more (the optimum to machine precision). onIter is called
// after each step with the new objective and largest gradient component. All
// sums run in a fixed order, so the result is deterministic.
func fitLogistic(ctx context.Context, d *data, p logisticParams, onIter func(it int, obj, grad float64)) (*logisticFit, error) {
	dim := len(d.x) + 1 // θ = (b, w...)
	theta := make([]float64, dim)
	z := make([]float64, d.rows)
	g := make([]float64, dim)
	gTrial := make([]float64, dim)
	h := make([]float64, dim*dim)
	step := make([]float64, dim)
	trial := make([]float64, dim)
	zTrial := make([]float64, d.rows)

	fit := &logisticFit{}
	scores(d, theta, z)
	obj := objective(d, theta, z, p.L2)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		gradient(d, theta, z, p.L2, g)
		fit.grad = maxAbs(g)
		if fit.iterations > 0 && onIter != nil {
			onIter(fit.iterations, obj, fit.grad)
		}
		if fit.grad <= p.Tol {
			fit.converged = true
			break
		}
		if fit.iterations == p.MaxIter {
			break
		}
		hessian(d, z, p.L2, h)
		copy(step, g)
		if err := choleskySolve(h, dim, step); err != nil {
			return nil, badInput("the Hessian is not positive definite at iteration %d (constant or collinear features with l2 = 0?); increase params.l2", fit.iterations+1)
		}
		accepted := false
		slope := dot(g, step) // predicted decrease rate along -step (> 0)
		if slope <= 1e-10*math.Max(1, math.Abs(obj)) {
			// Near the optimum the objective cannot resolve the decrease;
			// take the full Newton step if it shrinks the gradient.
			for k := range theta {
				trial[k] = theta[k] - step[k]
			}
			scores(d, trial, zTrial)
			gradient(d, trial, zTrial, p.L2, gTrial)
			if maxAbs(gTrial) < fit.grad {
				obj = objective(d, trial, zTrial, p.L2)
				accepted = true
			}
		} else {
			// Armijo backtracking: the largest t in {1, 1/2, ...} with
			// f(θ - tΔ) <= f(θ) - 1e-4·t·g·Δ.
			t := 1.0
			for range 60 {
				for k := range theta {
					trial[k] = theta[k] - t*step[k]
				}
				scores(d, trial, zTrial)
				if o := objective(d, trial, zTrial, p.L2); o <= obj-1e-4*t*slope {
					obj = o
					accepted = true
					break
				}
				t /= 2
			}
		}
		if !accepted {
			// No step improves θ: it is optimal to machine precision.
			fit.converged = true
			break
		}
		theta, trial = trial, theta
		z, zTrial = zTrial, z
		fit.iterations++
	}
	fit.b = theta[0]
	fit.w = append([]float64(nil), theta[1:]...)
	if math.IsNaN(fit.b) || math.IsInf(fit.b, 0) {
		return nil, fmt.Errorf("training diverged (intercept %v)", fit.b)
	}
	for j, w := range fit.w {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("training diverged (weight %d is %v)", j, w)
		}
	}
	return fit, nil
}

// scores sets z_i = b + Σ_j w_j x_ij, accumulated feature by feature in
// feature order as Kiln's predictor does.
func scores(d *data, theta []float64, z []float64) {
	for i := range z {
		z[i] = theta[0]
	}
	for j, col := range d.x {
		w := theta[j+1]
		zz := z[:len(col)]
		for i, v := range col {
			zz[i] += w * v
		}
	}
}

// softplus is log(1+e^z) without overflow.
func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// sigmoid is 1/(1+e^-z) without overflow.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// objective is f(θ) given the scores z of θ.
func objective(d *data, theta, z []float64, l2 float64) float64 {
	var s float64
	for i, zi := range z {
		s += softplus(zi) - d.y[i]*zi
	}
	var r float64
	for _, w := range theta[1:] {
		r += w * w
	}
	return s/float64(d.rows) + l2/2*r
}

// gradient sets g = ∇f(θ).
func gradient(d *data, theta, z []float64, l2 float64, g []float64) {
	n := float64(d.rows)
	resid := make([]float64, len(z))
	var g0 float64
	for i, zi := range z {
		resid[i] = sigmoid(zi) - d.y[i]
		g0 += resid[i]
	}
	g[0] = g0 / n
	for j, col := range d.x {
		g[j+1] = dot(resid, col)/n + l2*theta[j+1]
	}
}

// hessian sets h (dim×dim, row-major) to ∇²f: (1/n) Σ_i s_i x̃_i x̃_iᵀ with
// x̃_i = (1, x_i) and s_i = p_i(1-p_i), plus l2 on the weights' diagonal.
// Rows are processed in blocks so each block's columns stay in cache.
func hessian(d *data, z []float64, l2 float64, h []float64) {
	dim := len(d.x) + 1
	clear(h)
	s := make([]float64, rowBlock)
	sx := make([][]float64, dim) // s ⊙ x̃_j for the block
	for j := range sx {
		sx[j] = make([]float64, rowBlock)
	}
	col := func(j, lo, hi int) []float64 { return d.x[j-1][lo:hi] }
	for lo := 0; lo < d.rows; lo += rowBlock {
		hi := min(lo+rowBlock, d.rows)
		m := hi - lo
		bs := s[:m]
		for i := range bs {
			p := sigmoid(z[lo+i])
			bs[i] = p * (1 - p)
		}
		copy(sx[0][:m], bs)
		for j := 1; j < dim; j++ {
			c := col(j, lo, hi)
			out := sx[j][:m]
			for i, v := range c {
				out[i] = bs[i] * v
			}
		}
		// Lower triangle: h[j][k] += Σ sx_j x̃_k for k <= j.
		for j := 0; j < dim; j++ {
			h[j*dim] += sum(sx[j][:m]) // k = 0: x̃_0 = 1
			for k := 1; k <= j; k++ {
				h[j*dim+k] += dot(sx[j][:m], col(k, lo, hi))
			}
		}
	}
	n := float64(d.rows)
	for j := 0; j < dim; j++ {
		for k := 0; k <= j; k++ {
			h[j*dim+k] /= n
			h[k*dim+j] = h[j*dim+k]
		}
		if j > 0 {
			h[j*dim+j] += l2
		}
	}
}

// choleskySolve solves A·x = b in place (b becomes x) for a symmetric
// positive definite dim×dim row-major A, which it overwrites with its
// Cholesky factor. It fails if A is not numerically positive definite.
func choleskySolve(a []float64, dim int, b []float64) error {
	for j := 0; j < dim; j++ {
		s := a[j*dim+j]
		for k := 0; k < j; k++ {
			s -= a[j*dim+k] * a[j*dim+k]
		}
		if !(s > 0) || s <= 1e-13*math.Abs(a[j*dim+j]) {
			return fmt.Errorf("matrix not positive definite at pivot %d", j)
		}
		l := math.Sqrt(s)
		a[j*dim+j] = l
		for i := j + 1; i < dim; i++ {
			t := a[i*dim+j]
			for k := 0; k < j; k++ {
				t -= a[i*dim+k] * a[j*dim+k]
			}
			a[i*dim+j] = t / l
		}
	}
	// L·y = b, then Lᵀ·x = y.
	for i := 0; i < dim; i++ {
		t := b[i]
		for k := 0; k < i; k++ {
			t -= a[i*dim+k] * b[k]
		}
		b[i] = t / a[i*dim+i]
	}
	for i := dim - 1; i >= 0; i-- {
		t := b[i]
		for k := i + 1; k < dim; k++ {
			t -= a[k*dim+i] * b[k]
		}
		b[i] = t / a[i*dim+i]
	}
	return nil
}

// predict returns the probabilities of the fitted model on d.
func (f *logisticFit) predict(d *data) []float64 {
	theta := append([]float64{f.b}, f.w...)
	z := make([]float64, d.rows)
	scores(d, theta, z)
	for i, zi := range z {
		z[i] = sigmoid(zi)
	}
	return z
}

// dot is Σ a_i b_i over len(a) (b at least as long).
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// maxAbs is max_i |x_i|.
func maxAbs(xs []float64) float64 {
	var m float64
	for _, x := range xs {
		m = math.Max(m, math.Abs(x))
	}
	return m
}
