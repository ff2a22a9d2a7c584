package metrics

import (
	"fmt"
	"math"
)

// TaskMulticlass is multi-class classification: labels are class indexes
// 0..K-1 (as float64) and predictions are K probabilities per row,
// row-major (probs[i*K+k] is P(row i is class k)).
const TaskMulticlass = "multiclass"

// MulticlassNames are the metrics Multiclass computes that a gate may name.
var MulticlassNames = []string{"accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "logloss", "auc_ovr"}

// numClasses returns K for n labels and n*K probabilities, panicking when the
// lengths do not fit.
func numClasses(fn string, labels, probs []float64) int {
	if len(labels) == 0 || len(probs)%len(labels) != 0 || len(probs)/len(labels) < 2 {
		panic(fmt.Sprintf("metrics.%s: %d labels but %d probabilities (want K >= 2 per label)", fn, len(labels), len(probs)))
	}
	return len(probs) / len(labels)
}

// classOf returns the class index of a label, or -1 when it is not a whole
// number in [0, k).
func classOf(label float64, k int) int {
	c := int(label)
	if float64(c) != label || c < 0 || c >= k {
		return -1
	}
	return c
}

// MulticlassEpsilon bounds the probabilities Multiclass's logloss uses to
// [MulticlassEpsilon, 1-MulticlassEpsilon]: float64's machine epsilon
// (2⁻⁵²), scikit-learn 1.2's log_loss default (eps="auto", that is
// np.finfo(float64).eps). Binary's LogLoss keeps the older default
// LogLossEpsilon (1e-15); the two differ only for probabilities within
// 1e-15 of 0 or 1.
const MulticlassEpsilon = 0x1p-52

// predicted returns the index of row i's most probable class, the first on
// ties (numpy's argmax).
func predicted(row []float64) int {
	best := 0
	for c := 1; c < len(row); c++ {
		if row[c] > row[best] {
			best = c
		}
	}
	return best
}

// Multiclass computes the standard metrics of a K-class classifier from
// class-index labels and row-major probabilities (see TaskMulticlass), keyed
// accuracy, f1_macro, f1_weighted, precision_macro, recall_macro, logloss,
// auc_ovr and rows, as scikit-learn 1.2 computes them:
//
//   - accuracy: the share of rows whose most probable class is the label.
//   - precision/recall/f1 macro: the unweighted mean over the classes that
//     occur as a label or a prediction (scikit-learn's default labels), 0
//     for an undefined ratio (zero_division=0); f1_weighted weighs each
//     class's F1 by its number of labels.
//   - logloss: the mean of -log p(label), probabilities clipped to
//     [MulticlassEpsilon, 1-MulticlassEpsilon] and renormalised per row
//     (log_loss(labels=range(K)) with its default eps).
//   - auc_ovr: the mean over classes of the one-vs-rest AUC of P(class)
//     (roc_auc_score(multi_class="ovr", average="macro")); NaN when a
//     class has no label (scikit-learn refuses that case).
//
// Every label must be a class index in [0, K); Multiclass panics otherwise.
// It is empty (all NaN, rows 0) for no rows.
func Multiclass(labels, probs []float64) map[string]float64 {
	if len(labels) == 0 {
		nan := math.NaN()
		return map[string]float64{"accuracy": nan, "f1_macro": nan, "f1_weighted": nan, "precision_macro": nan, "recall_macro": nan, "logloss": nan, "auc_ovr": nan, "rows": 0}
	}
	k := numClasses("Multiclass", labels, probs)
	pred := make([]int, len(labels))
	var loss neumaier
	for i, l := range labels {
		c := classOf(l, k)
		if c < 0 {
			panic(fmt.Sprintf("metrics.Multiclass: label %v of row %d is not a class index in [0, %d)", l, i, k))
		}
		row := probs[i*k : (i+1)*k]
		pred[i] = predicted(row)
		var sum float64
		for _, q := range row {
			sum += min(max(q, MulticlassEpsilon), 1-MulticlassEpsilon)
		}
		loss.add(-math.Log(min(max(row[c], MulticlassEpsilon), 1-MulticlassEpsilon) / sum))
	}
	m := classMetrics(labels, pred, k)
	m["logloss"] = loss.value() / float64(len(labels))
	m["auc_ovr"] = aucOVR(labels, probs, k)
	return m
}

// MulticlassPredictedNames are the metrics MulticlassPredicted computes:
// those of MulticlassNames that need only the predicted class.
var MulticlassPredictedNames = []string{"accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro"}

// MulticlassPredicted computes the metrics of a K-class classifier that
// need only its predicted classes (MulticlassPredictedNames, and rows), as
// Multiclass does, from class-index labels and predictions: what a model
// server's request log keeps. A label or prediction that is not a class
// index in [0, k) panics. It is all NaN (rows 0) for no rows.
func MulticlassPredicted(labels, preds []float64, k int) map[string]float64 {
	checkLengths("MulticlassPredicted", labels, preds)
	if len(labels) == 0 {
		nan := math.NaN()
		return map[string]float64{"accuracy": nan, "f1_macro": nan, "f1_weighted": nan, "precision_macro": nan, "recall_macro": nan, "rows": 0}
	}
	pred := make([]int, len(preds))
	for i, p := range preds {
		if pred[i] = classOf(p, k); pred[i] < 0 {
			panic(fmt.Sprintf("metrics.MulticlassPredicted: prediction %v of row %d is not a class index in [0, %d)", p, i, k))
		}
		if classOf(labels[i], k) < 0 {
			panic(fmt.Sprintf("metrics.MulticlassPredicted: label %v of row %d is not a class index in [0, %d)", labels[i], i, k))
		}
	}
	return classMetrics(labels, pred, k)
}

// classMetrics computes accuracy, the macro precision, recall and F1, the
// weighted F1 and rows from class-index labels (checked) and predicted
// classes.
func classMetrics(labels []float64, pred []int, k int) map[string]float64 {
	tp := make([]int64, k)
	fp := make([]int64, k)
	support := make([]int64, k)
	var correct int64
	for i, l := range labels {
		c, p := classOf(l, k), pred[i]
		support[c]++
		if p == c {
			correct++
			tp[c]++
		} else {
			fp[p]++
		}
	}
	n := float64(len(labels))
	var used int
	var f1Macro, f1Weighted, precMacro, recMacro float64
	for c := range k {
		fn := support[c] - tp[c]
		if support[c] == 0 && fp[c] == 0 {
			continue // neither a label nor a prediction
		}
		used++
		f1 := ratio(2*tp[c], 2*tp[c]+fp[c]+fn)
		f1Macro += f1
		f1Weighted += f1 * float64(support[c])
		precMacro += ratio(tp[c], tp[c]+fp[c])
		recMacro += ratio(tp[c], support[c])
	}
	u := float64(used)
	return map[string]float64{
		"accuracy":        float64(correct) / n,
		"f1_macro":        f1Macro / u,
		"f1_weighted":     f1Weighted / n,
		"precision_macro": precMacro / u,
		"recall_macro":    recMacro / u,
		"rows":            n,
	}
}

// aucOVR is the macro average of the one-vs-rest AUCs.
func aucOVR(labels, probs []float64, k int) float64 {
	n := len(labels)
	bin := make([]float64, n)
	score := make([]float64, n)
	var sum float64
	for c := range k {
		for i, l := range labels {
			bin[i] = 0
			if classOf(l, k) == c {
				bin[i] = 1
			}
			score[i] = probs[i*k+c]
		}
		a := AUC(bin, score)
		if math.IsNaN(a) {
			return math.NaN()
		}
		sum += a
	}
	return sum / float64(k)
}
