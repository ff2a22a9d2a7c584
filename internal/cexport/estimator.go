package cexport

import (
	"fmt"

	"github.com/kiln-ml/kiln/internal/model"
)

// newEstimator returns the C emitter of m's estimator, which must read
// features (the transforms' outputs) in order. Multi-class models (task
// multiclass, or an estimator with class probabilities) are refused: the C
// API returns one value per row.
func newEstimator(m *model.Model, features []string) (estimator, error) {
	p := m.Predictor()
	if p == nil {
		return nil, fmt.Errorf("the model has no estimator")
	}
	if mp, ok := p.(model.MultiPredictor); m.Manifest.Task == model.TaskMulticlass || (ok && mp.NumClass() >= 2) {
		return nil, fmt.Errorf("multi-class models cannot be exported as C yet (task %q, estimator %q)", m.Manifest.Task, m.Manifest.Estimator.Type)
	}
	if err := sameFeatures(features, p.FeatureNames()); err != nil {
		return nil, err
	}
	typ := m.Manifest.Estimator.Type
	var e estimator
	var task string
	switch p := p.(type) {
	case *model.Logistic:
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("logistic estimator: %w", err)
		}
		e, task = &linear{weights: p.Weights, intercept: p.Intercept, logistic: true}, model.TaskBinary
		if typ != model.EstimatorLogistic {
			return nil, fmt.Errorf("the manifest's estimator type is %q but the estimator is logistic", typ)
		}
	case *model.Linear:
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("linear estimator: %w", err)
		}
		e, task = &linear{weights: p.Weights, intercept: p.Intercept}, model.TaskRegression
		if typ != model.EstimatorLinear {
			return nil, fmt.Errorf("the manifest's estimator type is %q but the estimator is linear", typ)
		}
	case *model.XGBoost:
		x, err := newForest(p.Booster())
		if err != nil {
			return nil, fmt.Errorf("xgboost estimator: %w", err)
		}
		e, task = x, model.TaskRegression
		if x.prob {
			task = model.TaskBinary
		}
		if typ != model.EstimatorXGBoost {
			return nil, fmt.Errorf("the manifest's estimator type is %q but the estimator is xgboost", typ)
		}
	default:
		return nil, fmt.Errorf("estimator %T (type %q) is not supported by the C export (want logistic, linear or xgboost)", p, typ)
	}
	if task != m.Manifest.Task {
		return nil, fmt.Errorf("the estimator performs task %q but the manifest's task is %q", task, m.Manifest.Task)
	}
	if e.output() != m.Manifest.Output {
		return nil, fmt.Errorf("the estimator outputs %q but the manifest's output is %q", e.output(), m.Manifest.Output)
	}
	return e, nil
}

// sameFeatures checks the estimator reads the transforms' features in
// order.
func sameFeatures(produced, read []string) error {
	if len(produced) != len(read) {
		return fmt.Errorf("the estimator reads %d features but the transforms produce %d", len(read), len(produced))
	}
	for j := range read {
		if read[j] != produced[j] {
			return fmt.Errorf("estimator feature %d is %q but the transforms produce %q", j, read[j], produced[j])
		}
	}
	return nil
}

// linear is a Logistic or Linear estimator: intercept + Σ weights[j]·f[j],
// summed in feature order, then sigmoid for logistic.
type linear struct {
	weights   []float64
	intercept float64
	logistic  bool
}

func (l *linear) describe() string {
	if l.logistic {
		return fmt.Sprintf("logistic regression over %d features", len(l.weights))
	}
	return fmt.Sprintf("linear regression over %d features", len(l.weights))
}

func (l *linear) output() string {
	if l.logistic {
		return model.OutputProbability
	}
	return model.OutputValue
}

func (l *linear) stack(g *gen) int { return 8*len(l.weights) + 128 }

func (l *linear) tables(g *gen, w *writer) {
	w.l("/* The estimator: %s. */", l.describe())
	w.f("static const double %s_weights[%s_NUM_FEATURES] = {", g.p, g.P)
	for j, x := range l.weights {
		if j%4 == 0 {
			w.f("\n   ")
		}
		w.f(" %s,", dbl(x))
	}
	w.l("\n};")
	w.l("")
	// Go's checks: model.Linear fails on a NaN score (nanError), Logistic on
	// any non-finite score unless every feature is finite (an overflow to
	// ±Inf then scores 0 or 1).
	w.l("/* The error of a NaN score: a missing feature or cancelling infinities. */")
	w.l("static int %s_nan_error(const double *f)", g.p)
	w.l("{")
	w.l("    int j;")
	w.l("    for (j = 0; j < %s_NUM_FEATURES; j++) {", g.P)
	w.l("        if (f[j] != f[j]) {")
	w.l("            return %s_EMISSING;", g.P)
	w.l("        }")
	w.l("    }")
	w.l("    return %s_ENONFINITE;", g.P)
	w.l("}")
	w.l("")
	if l.logistic {
		g.use("sigmoid")
	}
	w.l("/* Scores the features f: the estimator's sum over them in feature order. */")
	w.l("static int %s_score(const double *f, double *out)", g.p)
	w.l("{")
	w.l("    double z = %s; /* intercept %s */", dbl(l.intercept), dec(l.intercept))
	w.l("    int j;")
	w.l("    for (j = 0; j < %s_NUM_FEATURES; j++) {", g.P)
	w.l("        z += %s_weights[j] * f[j];", g.p)
	w.l("    }")
	if l.logistic {
		w.l("    if (z - z != 0.0) { /* NaN or infinite */")
		w.l("        if (z != z) {")
		w.l("            *out = NAN;")
		w.l("            return %s_nan_error(f);", g.p)
		w.l("        }")
		w.l("        for (j = 0; j < %s_NUM_FEATURES; j++) {", g.P)
		w.l("            if (f[j] - f[j] != 0.0) {")
		w.l("                *out = NAN;")
		w.l("                return %s_ENONFINITE;", g.P)
		w.l("            }")
		w.l("        }")
		w.l("    }")
		w.l("    *out = %s_sigmoid(z);", g.p)
	} else {
		w.l("    if (z != z) {")
		w.l("        *out = NAN;")
		w.l("        return %s_nan_error(f);", g.p)
		w.l("    }")
		w.l("    *out = z;")
	}
	w.l("    return %s_OK;", g.P)
	w.l("}")
}

func (l *linear) predict(g *gen, w *writer) {
	w.l("int %s_predict(const struct %s_row *row, double *out)", g.p, g.p)
	w.l("{")
	w.l("    double f[%s_NUM_FEATURES];", g.P)
	w.l("    int rc;")
	w.l("    if (out == NULL) {")
	w.l("        return %s_EBAD_ARGUMENT;", g.P)
	w.l("    }")
	w.l("    rc = %s_features(row, f);", g.p)
	w.l("    if (rc != %s_OK) {", g.P)
	w.l("        *out = NAN;")
	w.l("        return rc;")
	w.l("    }")
	w.l("    return %s_score(f, out);", g.p)
	w.l("}")
	w.l("")
	g.batchHead(w)
	w.l("    for (i = 0; i < n; i++) {")
	w.l("        int rc = %s_predict(&rows[i], &out[i]);", g.p)
	w.l("        if (rc != %s_OK && first == %s_OK) {", g.P, g.P)
	w.l("            first = rc;")
	w.l("            at = i;")
	w.l("        }")
	w.l("    }")
	g.batchTail(w)
}

// batchHead writes the start of <prefix>_predict_batch: the signature,
// the checks and the variables i, first and at.
func (g *gen) batchHead(w *writer) {
	w.l("int %s_predict_batch(const struct %s_row *rows, size_t n, double *out, size_t *first_error)", g.p, g.p)
	w.l("{")
	w.l("    size_t i, at = n;")
	w.l("    int first = %s_OK;", g.P)
	w.l("    if (n > 0 && (rows == NULL || out == NULL)) {")
	w.l("        if (first_error != NULL) {")
	w.l("            *first_error = 0;")
	w.l("        }")
	w.l("        return %s_EBAD_ARGUMENT;", g.P)
	w.l("    }")
}

// batchTail writes the end of <prefix>_predict_batch.
func (g *gen) batchTail(w *writer) {
	w.l("    if (first_error != NULL) {")
	w.l("        *first_error = at;")
	w.l("    }")
	w.l("    return first;")
	w.l("}")
}
