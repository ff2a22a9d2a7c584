package metrics

import "math"

// neumaier is a compensated running sum.
type neumaier struct{ sum, c float64 }

func (s *neumaier) add(x float64) {
	t := s.sum + x
	if math.Abs(s.sum) >= math.Abs(x) {
		s.c += (s.sum - t) + x
	} else {
		s.c += (x - t) + s.sum
	}
	s.sum = t
}

func (s *neumaier) value() float64 { return s.sum + s.c }

// MSE returns the mean squared error of the predictions. It is NaN for empty
// input or when a value is NaN.
func MSE(labels, preds []float64) float64 {
	checkLengths("MSE", labels, preds)
	if len(labels) == 0 {
		return math.NaN()
	}
	var s neumaier
	for i, p := range preds {
		d := labels[i] - p
		s.add(d * d)
	}
	return s.value() / float64(len(labels))
}

// RMSE returns the root mean squared error, sqrt(MSE).
func RMSE(labels, preds []float64) float64 {
	checkLengths("RMSE", labels, preds)
	return math.Sqrt(MSE(labels, preds))
}

// MAE returns the mean absolute error. It is NaN for empty input or when a
// value is NaN.
func MAE(labels, preds []float64) float64 {
	checkLengths("MAE", labels, preds)
	if len(labels) == 0 {
		return math.NaN()
	}
	var s neumaier
	for i, p := range preds {
		s.add(math.Abs(labels[i] - p))
	}
	return s.value() / float64(len(labels))
}

// R2 returns the coefficient of determination, 1 - SS_res / SS_tot, where
// SS_tot is the sum of squared deviations of the labels from their mean. As
// in scikit-learn's r2_score, constant labels give 1 when the predictions are
// exact and 0 otherwise. It is NaN for empty input or when a value is NaN.
func R2(labels, preds []float64) float64 {
	checkLengths("R2", labels, preds)
	if len(labels) == 0 {
		return math.NaN()
	}
	var mean neumaier
	for _, y := range labels {
		mean.add(y)
	}
	mu := mean.value() / float64(len(labels))
	var res, tot neumaier
	for i, p := range preds {
		d := labels[i] - p
		res.add(d * d)
		e := labels[i] - mu
		tot.add(e * e)
	}
	ssRes, ssTot := res.value(), tot.value()
	switch {
	case math.IsNaN(ssRes) || math.IsNaN(ssTot):
		return math.NaN()
	case ssTot == 0 && ssRes == 0:
		return 1
	case ssTot == 0:
		return 0
	}
	return 1 - ssRes/ssTot
}

// Regression computes the standard metrics of a regressor, keyed rmse, mae,
// r2 and rows.
func Regression(labels, preds []float64) map[string]float64 {
	checkLengths("Regression", labels, preds)
	return map[string]float64{
		"rmse": RMSE(labels, preds),
		"mae":  MAE(labels, preds),
		"r2":   R2(labels, preds),
		"rows": float64(len(labels)),
	}
}
