package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/metrics"
)

// Input and output file names.
const (
	trainFile   = "train.parquet"
	validFile   = "valid.parquet"
	schemaFile  = "schema.json"
	paramsFile  = "params.json"
	modelFile   = "model.json"
	metricsFile = "metrics.json"
)

// schemaSpec is schema.json.
type schemaSpec struct {
	Features []string `json:"features"`
	Target   string   `json:"target"`
	Task     string   `json:"task"`
	// Classes names the classes of a multiclass task; the target column
	// holds class indexes 0..len(Classes)-1.
	Classes []string `json:"classes,omitempty"`
}

// paramsSpec is params.json.
type paramsSpec struct {
	Algorithm string         `json:"algorithm"`
	Seed      int64          `json:"seed"`
	Params    map[string]any `json:"params"`
}

// logisticParams are the logistic algorithm's parameters.
type logisticParams struct {
	L2      float64
	MaxIter int
	Tol     float64
}

// logisticModel is the model.json format read by internal/model.
type logisticModel struct {
	Type      string    `json:"type"`
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
}

// metricsOut is metrics.json.
type metricsOut struct {
	Train          splitMetrics `json:"train"`
	Valid          splitMetrics `json:"valid"`
	Iterations     int          `json:"iterations"`
	BestIteration  *int         `json:"best_iteration,omitempty"`
	TrainerVersion string       `json:"trainer_version"`
}

// splitMetrics holds one split's metrics; undefined ones are left out.
// Binary tasks get logloss and auc, multiclass logloss and accuracy,
// regression rmse, mae and r2.
type splitMetrics struct {
	LogLoss  *float64 `json:"logloss,omitempty"`
	AUC      *float64 `json:"auc,omitempty"`
	Accuracy *float64 `json:"accuracy,omitempty"`
	RMSE     *float64 `json:"rmse,omitempty"`
	MAE      *float64 `json:"mae,omitempty"`
	R2       *float64 `json:"r2,omitempty"`
}

// data is a loaded split: column-major features (NaN where missing, for
// algorithms that allow it) and labels (0/1 for binary tasks, class
// indexes 0..K-1 for multiclass).
type data struct {
	rows int
	x    [][]float64 // x[j][i]
	y    []float64
}

// run trains a model from the files in inDir and writes model.json and
// metrics.json to outDir. Progress lines go to stdout, logs to stderr.
func run(ctx context.Context, inDir, outDir string, stdout, stderr io.Writer) error {
	p := &progress{w: stdout}
	p.report(0, "reading inputs")
	var schema schemaSpec
	if err := readJSON(filepath.Join(inDir, schemaFile), &schema); err != nil {
		return err
	}
	if err := schema.check(); err != nil {
		return err
	}
	var spec paramsSpec
	if err := readJSON(filepath.Join(inDir, paramsFile), &spec); err != nil {
		return err
	}
	var algo algorithm
	switch spec.Algorithm {
	case "logistic":
		lp, err := parseLogisticParams(spec.Params)
		if err != nil {
			return err
		}
		algo = &logisticAlgo{params: lp}
	case "gbdt":
		gp, err := parseGBDTParams(spec.Params, spec.Seed, schema.Task)
		if err != nil {
			return err
		}
		algo = &gbdtAlgo{params: gp}
	case "ridge":
		rp, err := parseRidgeParams(spec.Params)
		if err != nil {
			return err
		}
		algo = &ridgeAlgo{params: rp}
	default:
		return badInput("%s: unknown algorithm %q (this trainer knows \"logistic\", \"gbdt\" and \"ridge\")", paramsFile, spec.Algorithm)
	}
	if !slices.Contains(algo.tasks(), schema.Task) {
		return badInput("%s: task %q is not supported by algorithm %s (want %s)", schemaFile, schema.Task, spec.Algorithm, quoteList(algo.tasks()))
	}
	train, err := readSplit(ctx, filepath.Join(inDir, trainFile), schema, algo.missingOK())
	if err != nil {
		return err
	}
	if train.rows == 0 {
		return badInput("%s: no rows", trainFile)
	}
	if schema.Task == taskBinary {
		if pos := sum(train.y); pos == 0 || pos == float64(train.rows) {
			return badInput("%s: target %q has only class %v; training needs both classes", trainFile, schema.Target, train.y[0])
		}
	}
	if schema.Task == taskMulticlass {
		seen := make(map[float64]bool)
		for _, v := range train.y {
			seen[v] = true
		}
		if len(seen) < 2 {
			return badInput("%s: target %q has only class %q; training needs at least two", trainFile, schema.Target, schema.Classes[int(train.y[0])])
		}
	}
	valid, err := readSplit(ctx, filepath.Join(inDir, validFile), schema, algo.missingOK())
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "trainer %s: %s, task %s, %d train rows, %d valid rows, %d features\n",
		version, algo.describe(), schema.Task, train.rows, valid.rows, len(schema.Features))
	p.report(10, fmt.Sprintf("training on %d rows × %d features", train.rows, len(schema.Features)))

	res, err := algo.fit(ctx, schema, train, valid, p, stderr)
	if err != nil {
		return err
	}
	p.report(90, "computing metrics")
	m := metricsOut{
		Train:          metricsFor(schema, train.y, res.predict(train)),
		Valid:          metricsFor(schema, valid.y, res.predict(valid)),
		Iterations:     res.iterations,
		BestIteration:  res.bestIteration,
		TrainerVersion: version,
	}
	model, err := res.model()
	if err != nil {
		return err
	}
	if err := writeOutputs(outDir, model, m); err != nil {
		return err
	}
	p.report(100, "done")
	return nil
}

// Tasks (schema.json "task").
const (
	taskBinary     = "binary"
	taskRegression = "regression"
	taskMulticlass = "multiclass"
)

// algorithm is one training algorithm of the trainer.
type algorithm interface {
	// tasks lists the tasks it can train.
	tasks() []string
	// missingOK says whether features may be missing (null or NaN).
	missingOK() bool
	// describe names the algorithm and its parameters for the log.
	describe() string
	// fit trains on train (valid may have no rows).
	fit(ctx context.Context, schema schemaSpec, train, valid *data, p *progress, log io.Writer) (*fitResult, error)
}

// fitResult is a trained model, ready to predict and to write.
type fitResult struct {
	// predict returns predictions for d: probabilities or values, one per
	// row, or for a multiclass task K class probabilities per row,
	// row-major.
	predict func(d *data) []float64
	// model encodes model.json.
	model func() ([]byte, error)
	// iterations are the iterations (Newton steps, boosting rounds) run;
	// bestIteration, when set, the 0-based round whose model was kept.
	iterations    int
	bestIteration *int
}

// logisticAlgo is logistic regression: binary, or multinomial (softmax)
// for task multiclass.
type logisticAlgo struct{ params logisticParams }

func (a *logisticAlgo) tasks() []string { return []string{taskBinary, taskMulticlass} }
func (a *logisticAlgo) missingOK() bool { return false }
func (a *logisticAlgo) describe() string {
	return fmt.Sprintf("logistic regression (l2=%g max_iter=%d tol=%g)", a.params.L2, a.params.MaxIter, a.params.Tol)
}

func (a *logisticAlgo) fit(ctx context.Context, schema schemaSpec, train, _ *data, p *progress, log io.Writer) (*fitResult, error) {
	if schema.Task == taskMulticlass {
		return a.fitMulticlass(ctx, schema, train, p, log)
	}
	params := a.params
	fit, err := fitLogistic(ctx, train, params, func(it int, obj, grad float64) {
		fmt.Fprintf(log, "iteration %d: objective %.12g, max |gradient| %.3g\n", it, obj, grad)
		p.report(10+80*it/params.MaxIter, fmt.Sprintf("iteration %d/%d", it, params.MaxIter))
	})
	if err != nil {
		return nil, err
	}
	if !fit.converged {
		fmt.Fprintf(log, "warning: not converged after %d iterations (max |gradient| %.3g > tol %g)\n", fit.iterations, fit.grad, params.Tol)
	}
	return &fitResult{
		predict: func(d *data) []float64 {
			if d.rows == 0 {
				return nil
			}
			return fit.predict(d)
		},
		model: func() ([]byte, error) {
			return json.MarshalIndent(logisticModel{Type: "logistic", Features: schema.Features, Weights: fit.w, Intercept: fit.b}, "", "  ")
		},
		iterations: fit.iterations,
	}, nil
}

// quoteList formats names as "a", "b" or "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// check validates schema.json.
func (s *schemaSpec) check() error {
	switch s.Task {
	case taskBinary, taskRegression:
		if len(s.Classes) > 0 {
			return badInput("%s: classes are for task \"multiclass\", not %q", schemaFile, s.Task)
		}
	case taskMulticlass:
		if len(s.Classes) < 2 {
			return badInput("%s: task \"multiclass\" needs at least 2 classes, got %d", schemaFile, len(s.Classes))
		}
	default:
		return badInput("%s: task %q is not supported (want \"binary\", \"multiclass\" or \"regression\")", schemaFile, s.Task)
	}
	if s.Target == "" {
		return badInput("%s: no target", schemaFile)
	}
	if len(s.Features) == 0 {
		return badInput("%s: no features", schemaFile)
	}
	seen := make(map[string]bool, len(s.Features))
	for _, f := range s.Features {
		if f == "" {
			return badInput("%s: empty feature name", schemaFile)
		}
		if seen[f] {
			return badInput("%s: feature %q is listed twice", schemaFile, f)
		}
		if f == s.Target {
			return badInput("%s: the target %q is also a feature", schemaFile, f)
		}
		seen[f] = true
	}
	return nil
}

// readJSON decodes a JSON file strictly (unknown fields are errors).
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return badInput("missing input: %w", err)
		}
		return fmt.Errorf("reading input: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("%s: %w", filepath.Base(path), err)
	}
	if dec.More() {
		return badInput("%s: data after the JSON value", filepath.Base(path))
	}
	return nil
}

// parseLogisticParams reads the logistic parameters, applying defaults.
// Unknown names and out-of-range values are errors.
func parseLogisticParams(raw map[string]any) (logisticParams, error) {
	p := logisticParams{L2: 1e-4, MaxIter: 100, Tol: 1e-8}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := raw[k]
		x, ok := v.(float64)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			return p, badInput("%s: params.%s must be a number, got %v", paramsFile, k, v)
		}
		switch k {
		case "l2":
			if x < 0 {
				return p, badInput("%s: params.l2 must be >= 0, got %v", paramsFile, x)
			}
			p.L2 = x
		case "max_iter":
			if x < 1 || x != math.Trunc(x) || x > 1e6 {
				return p, badInput("%s: params.max_iter must be a whole number from 1 to 1000000, got %v", paramsFile, x)
			}
			p.MaxIter = int(x)
		case "tol":
			if x < 0 {
				return p, badInput("%s: params.tol must be >= 0, got %v", paramsFile, x)
			}
			p.Tol = x
		default:
			return p, badInput("%s: unknown parameter %q for algorithm logistic (known: l2, max_iter, tol)", paramsFile, k)
		}
	}
	return p, nil
}

// readSplit reads the feature and target columns of a Parquet file,
// refusing infinities, missing targets, binary labels other than 0 and 1,
// and missing (null or NaN) features unless missingOK, in which case they
// are read as NaN.
func readSplit(ctx context.Context, path string, schema schemaSpec, missingOK bool) (*data, error) {
	name := filepath.Base(path)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, badInput("missing input %s", path)
	}
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return nil, badInput("%w", err)
	}
	defer r.Close()
	cols := append(slices.Clone(schema.Features), schema.Target)
	sc := r.Schema()
	for _, c := range cols {
		i := sc.Index(c)
		if i < 0 {
			return nil, badInput("%s: no column %q (columns: %s)", name, c, strings.Join(sc.Names(), ", "))
		}
		if t := sc.Fields[i].Type; t != dataset.Float64 {
			return nil, badInput("%s: column %q is %s; the trainer reads float64 columns", name, c, t)
		}
	}
	rec, err := r.ReadAll(ctx, cols)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, badInput("%w", err)
	}
	defer rec.Release()
	d := &data{rows: int(rec.NumRows()), x: make([][]float64, len(schema.Features))}
	for j := range cols {
		arr, ok := rec.Column(j).(*array.Float64)
		if !ok {
			return nil, fmt.Errorf("%s: column %q was read as %s", name, cols[j], rec.Column(j).DataType())
		}
		vals := slices.Clone(arr.Float64Values())
		isFeature := j < len(schema.Features)
		for i, v := range vals {
			if arr.IsNull(i) || math.IsNaN(v) {
				if missingOK && isFeature {
					vals[i] = math.NaN()
					continue
				}
				if isFeature {
					return nil, badInput("%s: column %q is missing (null or NaN) in row %d; impute it in preprocess", name, cols[j], i)
				}
				return nil, badInput("%s: target %q is missing (null or NaN) in row %d", name, cols[j], i)
			}
			if math.IsInf(v, 0) {
				return nil, badInput("%s: column %q is infinite in row %d", name, cols[j], i)
			}
		}
		if isFeature {
			d.x[j] = vals
			continue
		}
		for i, v := range vals {
			switch schema.Task {
			case taskBinary:
				if v != 0 && v != 1 {
					return nil, badInput("%s: target %q is %v in row %d; a binary target must be 0 or 1", name, cols[j], v, i)
				}
			case taskMulticlass:
				if v != math.Trunc(v) || v < 0 || v >= float64(len(schema.Classes)) {
					return nil, badInput("%s: target %q is %v in row %d; a multiclass target must be a class index from 0 to %d", name, cols[j], v, i, len(schema.Classes)-1)
				}
			}
		}
		d.y = vals
	}
	return d, nil
}

// metricsFor computes the metrics of a task from labels y and predictions
// p: logloss and auc for binary, logloss and accuracy for multiclass, rmse,
// mae and r2 for regression.
func metricsFor(schema schemaSpec, y, p []float64) splitMetrics {
	switch schema.Task {
	case taskRegression:
		return regressionMetrics(y, p)
	case taskMulticlass:
		var m splitMetrics
		if len(y) == 0 {
			return m
		}
		all := metrics.Multiclass(y, p)
		ll, acc := all["logloss"], all["accuracy"]
		m.LogLoss, m.Accuracy = &ll, &acc
		return m
	}
	return metricsOf(y, p)
}

// regressionMetrics computes RMSE, MAE and R² (left out when y is constant)
// of predictions p for values y; nothing when y is empty.
func regressionMetrics(y, p []float64) splitMetrics {
	var m splitMetrics
	if len(y) == 0 {
		return m
	}
	n := float64(len(y))
	my := sum(y) / n
	var se, ae, st float64
	for i, v := range y {
		d := p[i] - v
		se += d * d
		ae += math.Abs(d)
		st += (v - my) * (v - my)
	}
	rmse, mae := math.Sqrt(se/n), ae/n
	m.RMSE, m.MAE = &rmse, &mae
	if st > 0 {
		r2 := 1 - se/st
		m.R2 = &r2
	}
	return m
}

// metricsOf computes the log-loss and AUC of probabilities p for 0/1 labels
// y with internal/metrics, as the evaluate step does; AUC is left out when it
// is undefined (y has a single class), and both when y is empty.
func metricsOf(y, p []float64) splitMetrics {
	var m splitMetrics
	if len(y) == 0 {
		return m
	}
	ll := metrics.LogLoss(y, p)
	m.LogLoss = &ll
	if auc := metrics.AUC(y, p); !math.IsNaN(auc) {
		m.AUC = &auc
	}
	return m
}

// writeOutputs writes metrics.json then model.json, each to a temporary
// name in outDir renamed into place; model.json appearing marks success.
func writeOutputs(outDir string, mb []byte, m metricsOut) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating output dir: %w", err)
	}
	xb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding metrics: %w", err)
	}
	if err := writeAtomic(filepath.Join(outDir, metricsFile), append(xb, '\n')); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(outDir, modelFile), append(mb, '\n'))
}

// writeAtomic writes data to a temporary file next to path, syncs it and
// renames it to path.
func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("renaming %s: %w", path, err)
	}
	return nil
}

// progress writes KILN_PROGRESS lines, never going backwards.
type progress struct {
	w    io.Writer
	last int
}

// report writes `KILN_PROGRESS {"pct": pct, "msg": msg}`.
func (p *progress) report(pct int, msg string) {
	pct = max(p.last, min(pct, 100))
	p.last = pct
	m, _ := json.Marshal(msg)
	fmt.Fprintf(p.w, "KILN_PROGRESS {\"pct\": %d, \"msg\": %s}\n", pct, m)
}

// sum adds xs.
func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
