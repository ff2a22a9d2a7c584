package metrics

import (
	"fmt"
	"slices"
)

// Tasks whose metrics this package computes.
const (
	TaskBinary     = "binary"
	TaskRegression = "regression"
)

// BinaryNames are the metrics Binary computes that a gate may name.
var BinaryNames = []string{"auc", "pr_auc", "logloss", "accuracy", "precision", "recall", "f1", "ece", "positive_rate"}

// RegressionNames are the metrics Regression computes that a gate may name.
var RegressionNames = []string{"rmse", "mae", "r2"}

// Names returns the gate metric names of a task, or nil for an unknown task.
func Names(task string) []string {
	switch task {
	case TaskBinary:
		return BinaryNames
	case TaskRegression:
		return RegressionNames
	case TaskMulticlass:
		return MulticlassNames
	}
	return nil
}

// lowerIsBetter lists the metrics where a smaller value is a better model.
var lowerIsBetter = []string{"logloss", "ece", "rmse", "mae"}

// HigherIsBetter reports whether a larger value of the named metric means a
// better model (false for logloss, ece, rmse and mae).
func HigherIsBetter(name string) bool { return !slices.Contains(lowerIsBetter, name) }

// Func computes one metric from labels and predictions.
type Func func(labels, preds []float64) float64

// Lookup returns the function computing the named metric of a task; threshold
// is the classification threshold of accuracy, precision, recall and f1.
// positive_rate is not a property of a model and has no function.
func Lookup(task, name string, threshold float64) (Func, error) {
	thresholded := func(f func(Matrix) float64) Func {
		return func(labels, probs []float64) float64 { return f(Confusion(labels, probs, threshold)) }
	}
	var fn Func
	switch task {
	case TaskBinary:
		fn = map[string]Func{
			"auc": AUC, "pr_auc": AveragePrecision, "logloss": LogLoss, "ece": ECE,
			"accuracy": thresholded(Matrix.Accuracy), "precision": thresholded(Matrix.Precision),
			"recall": thresholded(Matrix.Recall), "f1": thresholded(Matrix.F1),
		}[name]
	case TaskRegression:
		fn = map[string]Func{"rmse": RMSE, "mae": MAE, "r2": R2}[name]
	default:
		return nil, fmt.Errorf("unknown task %q (known: %s, %s)", task, TaskBinary, TaskRegression)
	}
	if fn == nil {
		return nil, fmt.Errorf("no metric %q for task %s (known: %v)", name, task, Names(task))
	}
	return fn, nil
}
