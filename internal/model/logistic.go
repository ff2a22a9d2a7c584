package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/detmath"
	"github.com/kiln-ml/kiln/internal/transform"
)

// Predictor is a fitted estimator: it turns a feature matrix into one score
// per row. Implementations: Logistic, Linear and XGBoost.
type Predictor interface {
	// FeatureNames names the features the predictor reads, in order.
	FeatureNames() []string
	// PredictMatrix writes the score of row i of x into out[i]. x's columns
	// must be FeatureNames() in order and len(out) must be x.Rows. On error the
	// contents of out are unspecified.
	PredictMatrix(x *transform.Matrix, out []float64) error
}

// EstimatorLogistic is the estimator type of Logistic.
const EstimatorLogistic = "logistic"

// Logistic is a binary logistic regression in Kiln's JSON format:
//
//	{"type":"logistic","features":[...],"weights":[...],"intercept":0.0}
//
// It predicts sigmoid(Intercept + Σ Weights[j]·x[j]).
type Logistic struct {
	// Type is always "logistic".
	Type string `json:"type"`
	// Features names the inputs, in order.
	Features []string `json:"features"`
	// Weights has one coefficient per feature.
	Weights []float64 `json:"weights"`
	// Intercept is the bias term.
	Intercept float64 `json:"intercept"`
}

// ParseLogistic decodes and validates a Logistic estimator file. Unknown
// fields are an error.
func ParseLogistic(data []byte) (*Logistic, error) {
	var l Logistic
	if err := decodeEstimator(data, "logistic", &l); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks the type, that there is one finite weight per distinct,
// non-empty feature name, and that the intercept is finite.
func (l *Logistic) Validate() error {
	if l.Type != EstimatorLogistic {
		return fmt.Errorf("type is %q, want %q", l.Type, EstimatorLogistic)
	}
	if err := checkFeatureNames(l.Features); err != nil {
		return err
	}
	if len(l.Weights) != len(l.Features) {
		return fmt.Errorf("%d weights for %d features", len(l.Weights), len(l.Features))
	}
	for j, f := range l.Features {
		if w := l.Weights[j]; math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("weight of %q is %v", f, w)
		}
	}
	if math.IsNaN(l.Intercept) || math.IsInf(l.Intercept, 0) {
		return fmt.Errorf("intercept is %v", l.Intercept)
	}
	return nil
}

// decodeEstimator decodes a Kiln JSON estimator file (what names its type
// in errors) into v strictly: unknown fields and data after the object are
// errors.
func decodeEstimator(data []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding %s model: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("decoding %s model: data after the JSON object", what)
	}
	return nil
}

// checkFeatureNames checks that an estimator names at least one feature,
// each non-empty and listed once.
func checkFeatureNames(features []string) error {
	if len(features) == 0 {
		return fmt.Errorf("no features")
	}
	seen := make(map[string]bool, len(features))
	for j, f := range features {
		if f == "" {
			return fmt.Errorf("features[%d] is empty", j)
		}
		if seen[f] {
			return fmt.Errorf("feature %q is listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

// logisticBlock is how many rows PredictMatrix accumulates at a time, so the
// partial sums stay in cache while every feature column streams past.
const logisticBlock = 4096

// PredictMatrix writes sigmoid(Intercept + Σ_j Weights[j]·x.Cols[j][i]) into
// out[i]. The sum is accumulated feature by feature in feature order, so
// every row gets the same arithmetic whatever the batch. A NaN feature
// (a missing value no step imputed) or an infinite one is an error naming
// the feature and row: any non-finite feature makes the sum non-finite, so
// the check costs one compare per row and the features of a row are only
// looked at when its sum is not finite.
func (l *Logistic) PredictMatrix(x *transform.Matrix, out []float64) error {
	if err := checkMatrix(l.Features, x, out); err != nil {
		return err
	}
	for lo := 0; lo < x.Rows; lo += logisticBlock {
		hi := min(lo+logisticBlock, x.Rows)
		o := out[lo:hi]
		for i := range o {
			o[i] = l.Intercept
		}
		// Two features per pass halve the loads and stores of the partial
		// sums; each row still adds the terms one at a time, in order.
		j := 0
		for ; j+2 <= len(l.Weights); j += 2 {
			w0, w1 := l.Weights[j], l.Weights[j+1]
			c0 := x.Cols[j][lo:hi]
			c1 := x.Cols[j+1][lo:hi]
			c1 = c1[:len(c0)] // lets the compiler drop the bounds checks
			oc := o[:len(c0)]
			for i, v := range c0 {
				// float64(w*x) rounds the product, so no architecture
				// fuses it with the sum (package detmath).
				z := oc[i] + float64(w0*v)
				oc[i] = z + float64(w1*c1[i])
			}
		}
		if j < len(l.Weights) {
			w := l.Weights[j]
			c := x.Cols[j][lo:hi]
			oc := o[:len(c)]
			for i, v := range c {
				oc[i] += float64(w * v)
			}
		}
		for i, z := range o {
			if z-z != 0 { // NaN or ±Inf: a non-finite feature, or an overflow
				if err := nonFiniteError(x, lo+i, z); err != nil {
					return err
				}
			}
			o[i] = sigmoid(z)
		}
	}
	return nil
}

// FeatureNames returns l.Features.
func (l *Logistic) FeatureNames() []string { return l.Features }

// sigmoid is 1/(1+e^-z), computed without overflow, the same bits on every
// architecture (package detmath), so exported predictors agree with batch
// scoring.
func sigmoid(z float64) float64 { return detmath.Sigmoid(z) }

// checkMatrix checks that x has the features want, in order, and that out
// has one slot per row.
func checkMatrix(want []string, x *transform.Matrix, out []float64) error {
	if x == nil {
		return fmt.Errorf("model: nil feature matrix")
	}
	if len(out) != x.Rows {
		return fmt.Errorf("model: %d output slots for %d rows", len(out), x.Rows)
	}
	if len(x.Cols) != len(want) || len(x.Features) != len(want) {
		return fmt.Errorf("model: the matrix has %d features, the estimator wants %d", len(x.Cols), len(want))
	}
	for j, name := range want {
		if x.Features[j] != name {
			return fmt.Errorf("model: matrix feature %d is %q, the estimator wants %q", j, x.Features[j], name)
		}
		if len(x.Cols[j]) != x.Rows {
			return fmt.Errorf("model: feature %q has %d values for %d rows", name, len(x.Cols[j]), x.Rows)
		}
	}
	return nil
}

// nonFiniteError explains a non-finite sum z in row i: nil when every
// feature of the row is finite (a large but finite sum that overflowed).
func nonFiniteError(x *transform.Matrix, i int, z float64) error {
	if z != z {
		return nanError(x, i)
	}
	for j, c := range x.Cols {
		if math.IsInf(c[i], 0) {
			return fmt.Errorf("model: feature %q is infinite (%v) in row %d", x.Features[j], c[i], i)
		}
	}
	return nil
}

// nanError explains a NaN score in row i: a missing feature value, or
// infinities that cancelled.
func nanError(x *transform.Matrix, i int) error {
	for j, c := range x.Cols {
		if math.IsNaN(c[i]) {
			return fmt.Errorf("model: feature %q is missing (NaN) in row %d; impute it in preprocess", x.Features[j], i)
		}
	}
	return fmt.Errorf("model: the score of row %d is NaN (infinite feature values)", i)
}
