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
	TrainerVersion string       `json:"trainer_version"`
}

// splitMetrics holds one split's metrics; undefined ones are left out.
type splitMetrics struct {
	LogLoss *float64 `json:"logloss,omitempty"`
	AUC     *float64 `json:"auc,omitempty"`
}

// data is a loaded split: column-major features and 0/1 labels.
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
	if spec.Algorithm != "logistic" {
		return badInput("%s: unknown algorithm %q (this trainer knows \"logistic\")", paramsFile, spec.Algorithm)
	}
	params, err := parseLogisticParams(spec.Params)
	if err != nil {
		return err
	}
	train, err := readSplit(ctx, filepath.Join(inDir, trainFile), schema)
	if err != nil {
		return err
	}
	if train.rows == 0 {
		return badInput("%s: no rows", trainFile)
	}
	if pos := sum(train.y); pos == 0 || pos == float64(train.rows) {
		return badInput("%s: target %q has only class %v; training needs both classes", trainFile, schema.Target, train.y[0])
	}
	valid, err := readSplit(ctx, filepath.Join(inDir, validFile), schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "trainer %s: logistic regression, %d train rows, %d valid rows, %d features, l2=%g max_iter=%d tol=%g\n",
		version, train.rows, valid.rows, len(schema.Features), params.L2, params.MaxIter, params.Tol)
	p.report(10, fmt.Sprintf("training on %d rows × %d features", train.rows, len(schema.Features)))

	fit, err := fitLogistic(ctx, train, params, func(it int, obj, grad float64) {
		fmt.Fprintf(stderr, "iteration %d: objective %.12g, max |gradient| %.3g\n", it, obj, grad)
		p.report(10+80*it/params.MaxIter, fmt.Sprintf("iteration %d/%d", it, params.MaxIter))
	})
	if err != nil {
		return err
	}
	if !fit.converged {
		fmt.Fprintf(stderr, "warning: not converged after %d iterations (max |gradient| %.3g > tol %g)\n", fit.iterations, fit.grad, params.Tol)
	}

	p.report(90, "computing metrics")
	m := metricsOut{
		Train:          splitMetricsOf(train, fit),
		Valid:          splitMetricsOf(valid, fit),
		Iterations:     fit.iterations,
		TrainerVersion: version,
	}
	model := logisticModel{Type: "logistic", Features: schema.Features, Weights: fit.w, Intercept: fit.b}
	if err := writeOutputs(outDir, model, m); err != nil {
		return err
	}
	p.report(100, "done")
	return nil
}

// check validates schema.json.
func (s *schemaSpec) check() error {
	if s.Task != "binary" {
		return badInput("%s: task %q is not supported (want \"binary\")", schemaFile, s.Task)
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
// refusing nulls, NaN, infinities and labels other than 0 and 1.
func readSplit(ctx context.Context, path string, schema schemaSpec) (*data, error) {
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
		for i, v := range vals {
			if arr.IsNull(i) || math.IsNaN(v) {
				return nil, badInput("%s: column %q is missing (null or NaN) in row %d; impute it in preprocess", name, cols[j], i)
			}
			if math.IsInf(v, 0) {
				return nil, badInput("%s: column %q is infinite in row %d", name, cols[j], i)
			}
		}
		if j < len(schema.Features) {
			d.x[j] = vals
			continue
		}
		for i, v := range vals {
			if v != 0 && v != 1 {
				return nil, badInput("%s: target %q is %v in row %d; a binary target must be 0 or 1", name, cols[j], v, i)
			}
		}
		d.y = vals
	}
	return d, nil
}

// splitMetricsOf computes log-loss and AUC of the fitted model on d.
func splitMetricsOf(d *data, fit *logisticFit) splitMetrics {
	if d.rows == 0 {
		return splitMetrics{}
	}
	return metricsOf(d.y, fit.predict(d))
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
func writeOutputs(outDir string, model logisticModel, m metricsOut) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating output dir: %w", err)
	}
	mb, err := json.MarshalIndent(model, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding model: %w", err)
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
