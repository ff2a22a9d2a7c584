// Package metrics computes evaluation metrics for binary classifiers and
// regressors, and tests whether one model is significantly better than
// another on the same rows (DeLong's test for AUC, a paired bootstrap for any
// metric).
//
// For classifiers, labels are 0 or 1 (a label >= 0.5 counts as positive);
// scores and probabilities are the model's outputs for the positive class.
// For regressors, labels are the true values and predictions the model's.
// Label and prediction slices must have the same length; the functions panic
// otherwise.
//
// The metrics agree with scikit-learn 1.2 (roc_auc_score,
// average_precision_score, log_loss, accuracy/precision/recall/f1_score with
// zero_division=0, mean_squared_error, mean_absolute_error, r2_score) to
// 1e-9 or better; see the tests. Names (as used in gates) are listed in
// BinaryNames and RegressionNames.
package metrics

import (
	"fmt"
	"math"
	"sort"
)

// LogLossEpsilon bounds the probabilities LogLoss uses to
// [LogLossEpsilon, 1-LogLossEpsilon], keeping the loss finite.
const LogLossEpsilon = 1e-15

// positive reports whether a label is the positive class.
func positive(label float64) bool { return label >= 0.5 }

// checkLengths panics when labels and values differ in length.
func checkLengths(fn string, labels, values []float64) {
	if len(labels) != len(values) {
		panic(fmt.Sprintf("metrics.%s: %d labels but %d predictions", fn, len(labels), len(values)))
	}
}

// AUC returns the area under the ROC curve: the probability that a random
// positive scores higher than a random negative, ties counting one half (the
// Mann–Whitney U statistic with average ranks for ties). It is NaN when only
// one class is present or a label or score is NaN.
func AUC(labels, scores []float64) float64 {
	checkLengths("AUC", labels, scores)
	idx := make([]int, len(scores))
	for i := range idx {
		if math.IsNaN(scores[i]) || math.IsNaN(labels[i]) {
			return math.NaN()
		}
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	// Walk groups of tied scores in increasing order. Each positive in a
	// group beats every negative of lower groups and ties with the
	// negatives of its own group; twice the U statistic stays an integer.
	var nPos, nNeg, twiceU int64
	for start := 0; start < len(idx); {
		end := start
		var pos, neg int64
		for end < len(idx) && scores[idx[end]] == scores[idx[start]] {
			if positive(labels[idx[end]]) {
				pos++
			} else {
				neg++
			}
			end++
		}
		twiceU += pos * (2*nNeg + neg)
		nPos += pos
		nNeg += neg
		start = end
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return float64(twiceU) / (2 * float64(nPos) * float64(nNeg))
}

// LogLoss returns the mean negative log-likelihood (binary cross-entropy) of
// the labels under the predicted positive-class probabilities, each clipped to
// [LogLossEpsilon, 1-LogLossEpsilon]. It is NaN for empty input.
func LogLoss(labels, probs []float64) float64 {
	checkLengths("LogLoss", labels, probs)
	if len(labels) == 0 {
		return math.NaN()
	}
	var sum, c float64 // Neumaier-compensated sum
	for i, p := range probs {
		p = min(max(p, LogLossEpsilon), 1-LogLossEpsilon)
		var term float64
		if positive(labels[i]) {
			term = -math.Log(p)
		} else {
			term = -math.Log1p(-p)
		}
		t := sum + term
		if math.Abs(sum) >= math.Abs(term) {
			c += (sum - t) + term
		} else {
			c += (term - t) + sum
		}
		sum = t
	}
	return (sum + c) / float64(len(labels))
}

// Matrix is a binary confusion matrix.
type Matrix struct {
	TP int64 `json:"tp"`
	FP int64 `json:"fp"`
	TN int64 `json:"tn"`
	FN int64 `json:"fn"`
}

// Confusion counts predictions against labels, predicting positive when the
// probability is >= threshold (a NaN probability predicts negative).
func Confusion(labels, probs []float64, threshold float64) Matrix {
	checkLengths("Confusion", labels, probs)
	var m Matrix
	for i, p := range probs {
		pred := p >= threshold
		switch actual := positive(labels[i]); {
		case pred && actual:
			m.TP++
		case pred && !actual:
			m.FP++
		case !pred && actual:
			m.FN++
		default:
			m.TN++
		}
	}
	return m
}

// ratio returns num/den, or 0 when den is 0.
func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// Rows is the number of predictions counted.
func (m Matrix) Rows() int64 { return m.TP + m.FP + m.TN + m.FN }

// Accuracy is (TP+TN)/rows, 0 when there are no rows.
func (m Matrix) Accuracy() float64 { return ratio(m.TP+m.TN, m.Rows()) }

// Precision is TP/(TP+FP), 0 when nothing is predicted positive.
func (m Matrix) Precision() float64 { return ratio(m.TP, m.TP+m.FP) }

// Recall is TP/(TP+FN), 0 when there are no positives.
func (m Matrix) Recall() float64 { return ratio(m.TP, m.TP+m.FN) }

// F1 is the harmonic mean of precision and recall, 2TP/(2TP+FP+FN), 0 when
// both are 0 or undefined.
func (m Matrix) F1() float64 { return ratio(2*m.TP, 2*m.TP+m.FP+m.FN) }

// Binary computes the standard metrics of a binary classifier, keyed auc,
// pr_auc, logloss, accuracy, precision, recall, f1 (at threshold), ece,
// positive_rate (the share of positive labels) and rows. auc, pr_auc, ece and
// logloss may be NaN (see their functions).
func Binary(labels, probs []float64, threshold float64) map[string]float64 {
	checkLengths("Binary", labels, probs)
	m := Confusion(labels, probs, threshold)
	return map[string]float64{
		"auc":           AUC(labels, probs),
		"pr_auc":        AveragePrecision(labels, probs),
		"ece":           ECE(labels, probs),
		"logloss":       LogLoss(labels, probs),
		"accuracy":      m.Accuracy(),
		"precision":     m.Precision(),
		"recall":        m.Recall(),
		"f1":            m.F1(),
		"positive_rate": ratio(m.TP+m.FN, m.Rows()),
		"rows":          float64(m.Rows()),
	}
}

// AveragePrecision returns the area under the precision-recall curve as
// scikit-learn's average_precision_score computes it: the sum over distinct
// score thresholds, from the highest down, of (R_k - R_{k-1}) * P_k, where P_k
// and R_k are the precision and recall when everything scoring >= the k-th
// threshold is predicted positive (no interpolation). Tied scores form one
// threshold. It is NaN when there are no positives or a label or score is NaN.
func AveragePrecision(labels, scores []float64) float64 {
	checkLengths("AveragePrecision", labels, scores)
	idx := make([]int, len(scores))
	var nPos int64
	for i := range idx {
		if math.IsNaN(scores[i]) || math.IsNaN(labels[i]) {
			return math.NaN()
		}
		if positive(labels[i]) {
			nPos++
		}
		idx[i] = i
	}
	if nPos == 0 {
		return math.NaN()
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	var tp, fp, prevTP int64
	var sum float64
	for start := 0; start < len(idx); {
		end := start
		for end < len(idx) && scores[idx[end]] == scores[idx[start]] {
			if positive(labels[idx[end]]) {
				tp++
			} else {
				fp++
			}
			end++
		}
		if tp > prevTP {
			sum += float64(tp-prevTP) / float64(nPos) * (float64(tp) / float64(tp+fp))
			prevTP = tp
		}
		start = end
	}
	return sum
}

// ECEBins is the number of bins ECE uses.
const ECEBins = 10

// eceEdges are the inner bin edges of ECE, computed as numpy's
// linspace(0, 1, ECEBins+1)[1:-1] computes them (i * 0.1), so that a
// probability on an edge falls in the same bin as in scikit-learn's
// calibration_curve.
var eceEdges = func() []float64 {
	e := make([]float64, ECEBins-1)
	for i := range e {
		e[i] = float64(i+1) * (1.0 / ECEBins)
	}
	return e
}()

// ECEBin returns the ECE bin (0 to ECEBins-1) of probability p: the number of
// inner edges below p.
func ECEBin(p float64) int { return sort.SearchFloat64s(eceEdges, p) }

// ECE returns the expected calibration error with ECEBins (10) equal-width
// bins over [0, 1], as in Guo et al. (2017) and scikit-learn's
// calibration_curve(strategy="uniform"): bin b holds the probabilities in
// (b/10, (b+1)/10], bin 0 also 0 itself (values below 0 fall in the first
// bin, above 1 in the last). ECE is the sum over bins of
// (n_b / n) * |share of positives in b - mean probability in b|. It is NaN
// for empty input or a NaN label or probability.
func ECE(labels, probs []float64) float64 {
	checkLengths("ECE", labels, probs)
	if len(labels) == 0 {
		return math.NaN()
	}
	var n [ECEBins]int64
	var sumP, sumY [ECEBins]float64
	for i, p := range probs {
		if math.IsNaN(p) || math.IsNaN(labels[i]) {
			return math.NaN()
		}
		b := ECEBin(p)
		n[b]++
		sumP[b] += p
		if positive(labels[i]) {
			sumY[b]++
		}
	}
	var ece float64
	for b := range n {
		if n[b] > 0 {
			ece += math.Abs(sumY[b]-sumP[b]) / float64(len(labels))
		}
	}
	return ece
}
