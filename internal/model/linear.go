package model

import (
	"fmt"

	"github.com/kiln-ml/kiln/internal/transform"
)

// EstimatorLinear is the estimator type of Linear.
const EstimatorLinear = "linear"

// Linear is a linear regression (e.g. ridge) in Kiln's JSON format:
//
//	{"type":"linear","features":[...],"weights":[...],"intercept":0.0}
//
// It predicts the raw value Intercept + Σ Weights[j]·x[j].
type Linear struct {
	// Type is always "linear".
	Type string `json:"type"`
	// Features names the inputs, in order.
	Features []string `json:"features"`
	// Weights has one coefficient per feature.
	Weights []float64 `json:"weights"`
	// Intercept is the bias term.
	Intercept float64 `json:"intercept"`
}

// ParseLinear decodes and validates a Linear estimator file. Unknown fields
// are an error.
func ParseLinear(data []byte) (*Linear, error) {
	var l Linear
	if err := decodeEstimator(data, "linear", &l); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks the type, that there is one finite weight per distinct,
// non-empty feature name, and that the intercept is finite.
func (l *Linear) Validate() error {
	if l.Type != EstimatorLinear {
		return fmt.Errorf("type is %q, want %q", l.Type, EstimatorLinear)
	}
	// The same rules as Logistic's.
	lg := Logistic{Type: EstimatorLogistic, Features: l.Features, Weights: l.Weights, Intercept: l.Intercept}
	return lg.Validate()
}

// FeatureNames returns l.Features.
func (l *Linear) FeatureNames() []string { return l.Features }

// PredictMatrix writes Intercept + Σ_j Weights[j]·x.Cols[j][i] into out[i],
// accumulated feature by feature in feature order. A NaN feature is an
// error naming the feature and row.
func (l *Linear) PredictMatrix(x *transform.Matrix, out []float64) error {
	if err := checkMatrix(l.Features, x, out); err != nil {
		return err
	}
	for lo := 0; lo < x.Rows; lo += logisticBlock {
		hi := min(lo+logisticBlock, x.Rows)
		o := out[lo:hi]
		for i := range o {
			o[i] = l.Intercept
		}
		for j, w := range l.Weights {
			c := x.Cols[j][lo:hi]
			oc := o[:len(c)]
			for i, v := range c {
				oc[i] += float64(w * v) // rounded: never fused (package detmath)
			}
		}
		for i, z := range o {
			if z != z {
				return nanError(x, lo+i)
			}
		}
	}
	return nil
}
