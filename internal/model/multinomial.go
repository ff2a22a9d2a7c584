package model

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/detmath"
	"github.com/kiln-ml/kiln/internal/transform"
)

// EstimatorMultinomial is the estimator type of Multinomial.
const EstimatorMultinomial = "multinomial"

// Multinomial is a multinomial (softmax) logistic regression in Kiln's JSON
// format, the layout of scikit-learn's LogisticRegression coef_ and
// intercept_:
//
//	{"type":"multinomial","features":[...],"weights":[[...],...],"intercepts":[...]}
//
// Weights has one row per class, each with one coefficient per feature. It
// predicts P(class k) = softmax(z)_k with z_k = Intercepts[k] + Σ_j
// Weights[k][j]·x[j].
type Multinomial struct {
	// Type is always "multinomial".
	Type string `json:"type"`
	// Features names the inputs, in order.
	Features []string `json:"features"`
	// Weights[k][j] is the coefficient of feature j for class k.
	Weights [][]float64 `json:"weights"`
	// Intercepts has one bias term per class.
	Intercepts []float64 `json:"intercepts"`
}

// ParseMultinomial decodes and validates a Multinomial estimator file.
// Unknown fields are an error.
func ParseMultinomial(data []byte) (*Multinomial, error) {
	var l Multinomial
	if err := decodeEstimator(data, "multinomial", &l); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks the type, the features (distinct, non-empty), that there
// are at least two classes, each with one finite weight per feature, and
// that the intercepts are finite.
func (l *Multinomial) Validate() error {
	if l.Type != EstimatorMultinomial {
		return fmt.Errorf("type is %q, want %q", l.Type, EstimatorMultinomial)
	}
	if err := checkFeatureNames(l.Features); err != nil {
		return err
	}
	if len(l.Intercepts) < 2 {
		return fmt.Errorf("%d intercepts: a multinomial model has one per class and at least 2 classes", len(l.Intercepts))
	}
	if len(l.Weights) != len(l.Intercepts) {
		return fmt.Errorf("%d weight rows for %d classes (intercepts)", len(l.Weights), len(l.Intercepts))
	}
	for k, row := range l.Weights {
		if len(row) != len(l.Features) {
			return fmt.Errorf("weights[%d] has %d weights for %d features", k, len(row), len(l.Features))
		}
		for j, w := range row {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return fmt.Errorf("weights[%d] of %q is %v", k, l.Features[j], w)
			}
		}
		if b := l.Intercepts[k]; math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("intercepts[%d] is %v", k, b)
		}
	}
	return nil
}

// FeatureNames returns l.Features.
func (l *Multinomial) FeatureNames() []string { return l.Features }

// NumClass returns the number of classes.
func (l *Multinomial) NumClass() int { return len(l.Intercepts) }

// PredictMatrix writes the index of each row's most probable class.
func (l *Multinomial) PredictMatrix(x *transform.Matrix, out []float64) error {
	if err := checkMatrix(l.Features, x, out); err != nil {
		return err
	}
	proba := make([]float64, x.Rows*l.NumClass())
	if err := l.PredictProba(x, proba); err != nil {
		return err
	}
	Argmax(proba, l.NumClass(), out)
	return nil
}

// PredictProba writes softmax(z) of row i into out[i*K : (i+1)*K]. Each z_k
// is accumulated feature by feature in order with every product rounded
// (package detmath), and the softmax subtracts the largest z first, so the
// bits are the same on every architecture and no exp overflows. A NaN or
// infinite feature is an error naming the feature and row.
func (l *Multinomial) PredictProba(x *transform.Matrix, out []float64) error {
	k := l.NumClass()
	if x == nil {
		return fmt.Errorf("model: nil feature matrix")
	}
	if len(out) != x.Rows*k {
		return fmt.Errorf("model: %d probability slots for %d rows of %d classes", len(out), x.Rows, k)
	}
	if err := checkMatrix(l.Features, x, out[:x.Rows]); err != nil {
		return err
	}
	for c := range k {
		w := l.Weights[c]
		for i := range x.Rows {
			out[i*k+c] = l.Intercepts[c]
		}
		for j, col := range x.Cols {
			wj := w[j]
			for i, v := range col[:x.Rows] {
				out[i*k+c] += float64(wj * v)
			}
		}
	}
	for i := range x.Rows {
		row := out[i*k : (i+1)*k : (i+1)*k]
		zmax := math.Inf(-1)
		for _, z := range row {
			if z-z != 0 {
				if err := nonFiniteError(x, i, z); err != nil {
					return err
				}
				return fmt.Errorf("model: the score of row %d overflows", i)
			}
			zmax = max(zmax, z)
		}
		var sum float64
		for c, z := range row {
			e := detmath.Exp(z - zmax)
			row[c] = e
			sum += e
		}
		for c := range row {
			row[c] /= sum
		}
	}
	return nil
}
