package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
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
			obj, accepted = armijo(theta, step, trial, obj, slope, func(trial []float64) float64 {
				scores(d, trial, zTrial)
				return objective(d, trial, zTrial, p.L2)
			})
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

// multinomialFit is the result of fitMultinomial.
type multinomialFit struct {
	b          []float64   // one intercept per class, summing to 0
	w          [][]float64 // w[c][j] is class c's weight of feature j
	iterations int         // Newton steps taken
	converged  bool        // max |gradient| <= tol at the end
	grad       float64     // final max |gradient|
}

// fitMultinomial minimises the multinomial (softmax) counterpart of
// fitLogistic's objective over K = k classes,
//
//	f(b, W) = (1/n) Σ_i [log Σ_c e^{z_ic} - z_{i,y_i}] + (l2/2) Σ_c ‖w_c‖²,
//	z_ic = b_c + w_c·x_i,
//
// which is scikit-learn's LogisticRegression(multi_class="multinomial",
// C=1/(n·l2)) divided by n·C: every class has its own weights and
// intercept (K·(p+1) parameters), the weights are penalised, the
// intercepts are not. It runs fitLogistic's damped Newton method on all
// K·(p+1) parameters with the same stopping rules. f does not change when
// the same number is added to every intercept (or, with l2 = 0, the same
// vector to every class's weights), so the Hessian is singular along those
// directions; the Newton system adds s_j·Σ_c Σ_c' e_cj e_c'jᵀ for each
// parameter slot j (the Hessian of (s_j/2)(Σ_c θ_cj)², s_j the slot's mean
// diagonal), which makes it positive definite without changing the step:
// the gradient has no component along those directions, so every step
// keeps Σ_c b_c = 0 and Σ_c w_c = 0 from the zero start, the minimiser that
// scikit-learn's solvers also reach. Requires every class to occur in
// d.y (else an intercept goes to -∞). All sums run in a fixed order
// (deterministic).
func fitMultinomial(ctx context.Context, d *data, k int, p logisticParams, onIter func(it int, obj, grad float64)) (*multinomialFit, error) {
	slot := len(d.x) + 1 // per class: (b_c, w_c...)
	dim := k * slot
	theta := make([]float64, dim)
	z := make([]float64, k*d.rows) // class-major: z[c*n+i]
	zTrial := make([]float64, k*d.rows)
	prob := make([]float64, k*d.rows)
	g := make([]float64, dim)
	gTrial := make([]float64, dim)
	h := make([]float64, dim*dim)
	step := make([]float64, dim)
	trial := make([]float64, dim)

	fit := &multinomialFit{}
	multiScores(d, theta, k, z)
	obj := multiObjective(d, theta, z, k, p.L2)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		multiGradient(d, theta, z, k, p.L2, prob, g)
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
		multiHessian(d, prob, k, p.L2, h)
		copy(step, g)
		if err := choleskySolve(h, dim, step); err != nil {
			return nil, badInput("the Hessian is not positive definite at iteration %d (constant or collinear features with l2 = 0?); increase params.l2", fit.iterations+1)
		}
		accepted := false
		slope := dot(g, step)
		if slope <= 1e-10*math.Max(1, math.Abs(obj)) {
			for j := range theta {
				trial[j] = theta[j] - step[j]
			}
			multiScores(d, trial, k, zTrial)
			multiGradient(d, trial, zTrial, k, p.L2, prob, gTrial)
			if maxAbs(gTrial) < fit.grad {
				obj = multiObjective(d, trial, zTrial, k, p.L2)
				accepted = true
			}
		} else {
			obj, accepted = armijo(theta, step, trial, obj, slope, func(trial []float64) float64 {
				multiScores(d, trial, k, zTrial)
				return multiObjective(d, trial, zTrial, k, p.L2)
			})
		}
		if !accepted {
			fit.converged = true
			break
		}
		theta, trial = trial, theta
		z, zTrial = zTrial, z
		fit.iterations++
	}
	fit.b = make([]float64, k)
	fit.w = make([][]float64, k)
	for c := range k {
		fit.b[c] = theta[c*slot]
		fit.w[c] = append([]float64(nil), theta[c*slot+1:(c+1)*slot]...)
	}
	for j, v := range theta {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			c, f := j/slot, j%slot
			if f == 0 {
				return nil, fmt.Errorf("training diverged (intercept of class %d is %v)", c, v)
			}
			return nil, fmt.Errorf("training diverged (class %d's weight %d is %v)", c, f-1, v)
		}
	}
	return fit, nil
}

// multiScores sets z[c*n+i] = b_c + Σ_j w_cj x_ij, accumulated feature by
// feature in feature order.
func multiScores(d *data, theta []float64, k int, z []float64) {
	slot := len(d.x) + 1
	for c := range k {
		zc := z[c*d.rows : (c+1)*d.rows]
		th := theta[c*slot : (c+1)*slot]
		for i := range zc {
			zc[i] = th[0]
		}
		for j, col := range d.x {
			w := th[j+1]
			for i, v := range col[:len(zc)] {
				zc[i] += w * v
			}
		}
	}
}

// multiObjective is f(θ) given the class-major scores z of θ.
func multiObjective(d *data, theta, z []float64, k int, l2 float64) float64 {
	n := d.rows
	var s float64
	for i := range n {
		zmax := math.Inf(-1)
		for c := range k {
			zmax = math.Max(zmax, z[c*n+i])
		}
		var e float64
		for c := range k {
			e += math.Exp(z[c*n+i] - zmax)
		}
		s += math.Log(e) + zmax - z[int(d.y[i])*n+i]
	}
	slot := len(d.x) + 1
	var r float64
	for j, v := range theta {
		if j%slot != 0 {
			r += v * v
		}
	}
	return s/float64(n) + l2/2*r
}

// multiGradient sets prob (class-major) to the softmax of z and g to ∇f(θ):
// for class c, (1/n) Σ_i (p_ic - [y_i = c]) x̃_i plus l2·w_c on the
// weights.
func multiGradient(d *data, theta, z []float64, k int, l2 float64, prob, g []float64) {
	n := d.rows
	for i := range n {
		zmax := math.Inf(-1)
		for c := range k {
			zmax = math.Max(zmax, z[c*n+i])
		}
		var e float64
		for c := range k {
			q := math.Exp(z[c*n+i] - zmax)
			prob[c*n+i] = q
			e += q
		}
		for c := range k {
			prob[c*n+i] /= e
		}
	}
	slot := len(d.x) + 1
	resid := make([]float64, n)
	nf := float64(n)
	for c := range k {
		copy(resid, prob[c*n:(c+1)*n])
		for i, y := range d.y {
			if int(y) == c {
				resid[i]--
			}
		}
		g[c*slot] = sum(resid) / nf
		for j, col := range d.x {
			g[c*slot+j+1] = dot(resid, col)/nf + l2*theta[c*slot+j+1]
		}
	}
}

// multiHessian sets h (dim×dim row-major, dim = K·(p+1), parameter (c, j)
// at c·(p+1)+j) to ∇²f: block (c, c') is (1/n) Σ_i p_ic([c = c'] - p_ic')
// x̃_i x̃_iᵀ with x̃_i = (1, x_i), plus l2 on the weights' diagonal, plus
// the s_j terms that remove the softmax's invariance (see fitMultinomial).
// Rows are processed in blocks so each block's columns stay in cache.
func multiHessian(d *data, prob []float64, k int, l2 float64, h []float64) {
	slot := len(d.x) + 1
	dim := k * slot
	n := d.rows
	clear(h)
	at := func(c, j, c2, j2 int) *float64 { return &h[(c*slot+j)*dim+c2*slot+j2] }
	s := make([]float64, rowBlock)
	sx := make([][]float64, slot) // s ⊙ x̃_j for the block
	for j := range sx {
		sx[j] = make([]float64, rowBlock)
	}
	col := func(j, lo, hi int) []float64 { return d.x[j-1][lo:hi] }
	for lo := 0; lo < n; lo += rowBlock {
		hi := min(lo+rowBlock, n)
		m := hi - lo
		for c := range k {
			pc := prob[c*n+lo : c*n+hi]
			for c2 := 0; c2 <= c; c2++ {
				pc2 := prob[c2*n+lo : c2*n+hi]
				bs := s[:m]
				for i := range bs {
					if c == c2 {
						bs[i] = pc[i] * (1 - pc[i])
					} else {
						bs[i] = -pc[i] * pc2[i]
					}
				}
				copy(sx[0][:m], bs)
				for j := 1; j < slot; j++ {
					out := sx[j][:m]
					for i, v := range col(j, lo, hi) {
						out[i] = bs[i] * v
					}
				}
				// The block is symmetric: accumulate (j, j2) for j2 <= j.
				for j := 0; j < slot; j++ {
					*at(c, j, c2, 0) += sum(sx[j][:m])
					for j2 := 1; j2 <= j; j2++ {
						*at(c, j, c2, j2) += dot(sx[j][:m], col(j2, lo, hi))
					}
				}
			}
		}
	}
	nf := float64(n)
	for c := range k {
		for c2 := 0; c2 <= c; c2++ {
			for j := 0; j < slot; j++ {
				for j2 := 0; j2 <= j; j2++ {
					v := *at(c, j, c2, j2) / nf
					*at(c, j, c2, j2) = v
					*at(c, j2, c2, j) = v
					*at(c2, j, c, j2) = v
					*at(c2, j2, c, j) = v
				}
			}
		}
	}
	for j := 0; j < slot; j++ {
		var sj float64
		for c := range k {
			sj += *at(c, j, c, j)
		}
		sj /= float64(k)
		for c := range k {
			for c2 := range k {
				*at(c, j, c2, j) += sj
			}
			if j > 0 {
				*at(c, j, c, j) += l2
			}
		}
	}
}

// estimator returns the fitted model as internal/model's Multinomial, the
// model.json the trainer writes and Kiln serves.
func (f *multinomialFit) estimator(features []string) *model.Multinomial {
	return &model.Multinomial{Type: model.EstimatorMultinomial, Features: features, Weights: f.w, Intercepts: f.b}
}

// maxMultinomialParams caps K·(p+1) for multinomial logistic regression:
// its Newton system is dense, (K·(p+1))² float64s (128 MiB at the cap) and
// a Cholesky factorisation per step.
const maxMultinomialParams = 4096

// fitMulticlass is logisticAlgo.fit for task multiclass: multinomial
// logistic regression over the len(schema.Classes) classes, every one of
// which must occur in train. model.json is internal/model's Multinomial.
func (a *logisticAlgo) fitMulticlass(ctx context.Context, schema schemaSpec, train *data, p *progress, log io.Writer) (*fitResult, error) {
	params := a.params
	k := len(schema.Classes)
	if dim := k * (len(schema.Features) + 1); dim > maxMultinomialParams {
		return nil, badInput("%s: %d classes × (%d features + 1) = %d parameters; multinomial logistic regression solves a dense Newton system and allows at most %d; use fewer features", schemaFile, k, len(schema.Features), dim, maxMultinomialParams)
	}
	count := make([]int, k)
	for _, y := range train.y {
		count[int(y)]++
	}
	for c, m := range count {
		if m == 0 {
			return nil, badInput("%s: class %q (target %q = %d) has no rows; multinomial logistic regression needs every class of %s in the training split", trainFile, schema.Classes[c], schema.Target, c, schemaFile)
		}
	}
	fit, err := fitMultinomial(ctx, train, k, params, func(it int, obj, grad float64) {
		fmt.Fprintf(log, "iteration %d: objective %.12g, max |gradient| %.3g\n", it, obj, grad)
		p.report(10+80*it/params.MaxIter, fmt.Sprintf("iteration %d/%d", it, params.MaxIter))
	})
	if err != nil {
		return nil, err
	}
	if !fit.converged {
		fmt.Fprintf(log, "warning: not converged after %d iterations (max |gradient| %.3g > tol %g)\n", fit.iterations, fit.grad, params.Tol)
	}
	est := fit.estimator(schema.Features)
	var predictErr error
	return &fitResult{
		predict: func(d *data) []float64 {
			if d.rows == 0 {
				return nil
			}
			out := make([]float64, d.rows*k)
			x := &transform.Matrix{Rows: d.rows, Features: schema.Features, Cols: d.x}
			if err := est.PredictProba(x, out); err != nil {
				// Only a score beyond ±MaxFloat64 gets here (the features
				// are finite); model() reports it.
				predictErr = cmp.Or(predictErr, err)
				for i := range out {
					out[i] = math.NaN()
				}
			}
			return out
		},
		model: func() ([]byte, error) {
			if predictErr != nil {
				return nil, fmt.Errorf("predicting with the trained model: %w", predictErr)
			}
			return json.MarshalIndent(est, "", "  ")
		},
		iterations: fit.iterations,
	}, nil
}

// armijo is the backtracking line search of the Newton fits: the largest t
// in {1, 1/2, ..., 2^-59} with f(θ - tΔ) <= f(θ) - 1e-4·t·slope, where obj
// is f(θ) and slope the predicted decrease rate g·Δ. It leaves the accepted
// point in trial and returns its objective; ok is false (obj returned
// unchanged) when no t is accepted.
func armijo(theta, step, trial []float64, obj, slope float64, f func(trial []float64) float64) (float64, bool) {
	t := 1.0
	for range 60 {
		for j := range theta {
			trial[j] = theta[j] - t*step[j]
		}
		if o := f(trial); o <= obj-1e-4*t*slope {
			return o, true
		}
		t /= 2
	}
	return obj, false
}
