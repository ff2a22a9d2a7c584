// Package model reads, writes and runs Kiln model bundles.
//
// A bundle is a directory holding manifest.json (Manifest: the raw input
// schema, the fitted preprocessing, the estimator's type and file, the
// training profile, metrics and lineage) and the estimator file it names
// (model.json). Estimators: "logistic" (Kiln JSON, binary probability),
// "linear" (Kiln JSON, regression value) and "xgboost" (a tree ensemble in
// XGBoost's JSON model format, binary:logistic or reg:squarederror). Batch
// scoring and serving load the same bundle and run the same transforms and
// estimator code on it.
package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset/schema"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// FormatVersion is the bundle format this package reads and writes.
const FormatVersion = 1

// ManifestFile is the name of the manifest inside a bundle directory.
const ManifestFile = "manifest.json"

// Manifest values.
const (
	// TaskBinary is binary classification; its output is
	// OutputProbability.
	TaskBinary = "binary"
	// TaskRegression is regression; its output is OutputValue.
	TaskRegression = "regression"
	// TaskMulticlass is classification into one of Manifest.Classes; its
	// output is OutputProbabilities.
	TaskMulticlass = "multiclass"
	// OutputProbability means predictions are P(target = 1).
	OutputProbability = "probability"
	// OutputValue means predictions are the predicted target value.
	OutputValue = "value"
	// OutputProbabilities means a prediction is one probability per class
	// (in Manifest.Classes order, summing to 1); the single value per row
	// that Predict returns is the index of the most probable class.
	OutputProbabilities = "probabilities"
	// DefaultEstimatorFile is the conventional estimator file name.
	DefaultEstimatorFile = "model.json"
)

// Matrix is the dense feature matrix estimators read (see transform.Matrix).
type Matrix = transform.Matrix

// Manifest describes a bundle; it is stored as manifest.json.
type Manifest struct {
	// FormatVersion is FormatVersion (1).
	FormatVersion int `json:"format_version"`
	// Name is the registered model name; empty until registered.
	Name string `json:"name"`
	// Task is TaskBinary, TaskRegression or TaskMulticlass.
	Task string `json:"task"`
	// Target is the label column the model predicts.
	Target string `json:"target"`
	// Classes names the classes of a TaskMulticlass model (at least two,
	// distinct): the estimator's class k is the target value Classes[k].
	// Empty for the other tasks.
	Classes []string `json:"classes,omitempty"`
	// Inputs is the raw input schema (names, types, order); it equals
	// Transforms.Inputs.
	Inputs []schema.Field `json:"inputs"`
	// Transforms is the preprocessing fitted in training.
	Transforms *transform.Fitted `json:"transforms"`
	// Estimator names the estimator's type and file.
	Estimator Estimator `json:"estimator"`
	// Output is OutputProbability for TaskBinary, OutputValue for
	// TaskRegression, OutputProbabilities for TaskMulticlass.
	Output string `json:"output"`
	// Profile is the training profile of the raw inputs, the reference for
	// drift monitoring.
	Profile *schema.Profile `json:"profile,omitempty"`
	// Metrics are filled by evaluate (e.g. "auc", "logloss").
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Lineage records where the model came from.
	Lineage Lineage `json:"lineage"`
}

// Estimator names the estimator of a bundle.
type Estimator struct {
	// Type is the estimator format: EstimatorLogistic (task binary),
	// EstimatorLinear (task regression), EstimatorMultinomial (task
	// multiclass) or EstimatorXGBoost (task binary for objective
	// binary:logistic, regression for reg:squarederror, multiclass for
	// multi:softprob and multi:softmax).
	Type string `json:"type"`
	// File is the estimator file's name inside the bundle, e.g. "model.json".
	File string `json:"file"`
}

// Lineage records how a bundle was produced.
type Lineage struct {
	// Pipeline is the name of the pipeline that trained the model.
	Pipeline string `json:"pipeline,omitempty"`
	// RunID identifies the pipeline run (its workflow ID).
	RunID string `json:"run_id,omitempty"`
	// SpecHash is the hex SHA-256 of the pipeline spec.
	SpecHash string `json:"spec_hash,omitempty"`
	// DatasetHash is the hex SHA-256 of the training dataset.
	DatasetHash string `json:"dataset_hash,omitempty"`
	// Image is the trainer image (reference or ID).
	Image string `json:"image,omitempty"`
	// Runtime is the container runtime that ran the trainer.
	Runtime string `json:"runtime,omitempty"`
	// TrainerVersion is the version the trainer reported.
	TrainerVersion string `json:"trainer_version,omitempty"`
	// Params are the training parameters.
	Params map[string]any `json:"params,omitempty"`
	// CreatedBy names who or what started the run.
	CreatedBy string `json:"created_by,omitempty"`
	// CreatedAt is when the bundle was made.
	CreatedAt time.Time `json:"created_at"`
}

// Model is a loaded, validated bundle ready to predict.
type Model struct {
	// Manifest is the bundle's manifest.
	Manifest Manifest
	// Dir is the bundle directory; empty for a model built with New.
	Dir string

	predictor Predictor
}

// New validates a manifest and its estimator files (file name → content)
// and returns the model they describe.
func New(m Manifest, files map[string][]byte) (*Model, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("model: manifest: %w", err)
	}
	data, ok := files[m.Estimator.File]
	if !ok {
		return nil, fmt.Errorf("model: estimator file %s is missing", m.Estimator.File)
	}
	return build(m, m.Estimator.File, data)
}

// build parses the estimator file (named path in errors) of a validated
// manifest and checks it reads the features the transforms produce.
func build(m Manifest, path string, data []byte) (*Model, error) {
	p, task, err := parseEstimator(m.Estimator.Type, data, m.Transforms.Features)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if task != m.Task {
		return nil, fmt.Errorf("model: %s: a %s estimator is for task %q but the manifest's task is %q", path, m.Estimator.Type, task, m.Task)
	}
	if err := checkFeatures(m.Transforms.Features, p.FeatureNames()); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if task == TaskMulticlass {
		mp, ok := p.(MultiPredictor)
		if !ok {
			return nil, fmt.Errorf("model: %s: a %s estimator cannot give class probabilities", path, m.Estimator.Type)
		}
		if k := mp.NumClass(); k != len(m.Classes) {
			return nil, fmt.Errorf("model: %s: the estimator has %d classes but the manifest names %d", path, k, len(m.Classes))
		}
	}
	return &Model{Manifest: m, predictor: p}, nil
}

// parseEstimator decodes an estimator file of the given type and returns
// it with the task it performs. features are the transforms' outputs,
// which XGBoost files without feature names read in order.
func parseEstimator(typ string, data []byte, features []string) (Predictor, string, error) {
	switch typ {
	case EstimatorLogistic:
		p, err := ParseLogistic(data)
		if err != nil {
			return nil, "", err
		}
		return p, TaskBinary, nil
	case EstimatorLinear:
		p, err := ParseLinear(data)
		if err != nil {
			return nil, "", err
		}
		return p, TaskRegression, nil
	case EstimatorMultinomial:
		p, err := ParseMultinomial(data)
		if err != nil {
			return nil, "", err
		}
		return p, TaskMulticlass, nil
	case EstimatorXGBoost:
		p, err := ParseXGBoost(data, features)
		if err != nil {
			return nil, "", err
		}
		switch p.Objective() {
		case xgbjson.ObjectiveBinaryLogistic:
			return p, TaskBinary, nil
		case xgbjson.ObjectiveMultiSoftprob, xgbjson.ObjectiveMultiSoftmax:
			return p, TaskMulticlass, nil
		}
		return p, TaskRegression, nil
	}
	return nil, "", fmt.Errorf("unknown estimator type %q (want %q, %q, %q or %q)", typ, EstimatorLogistic, EstimatorLinear, EstimatorMultinomial, EstimatorXGBoost)
}

// checkFeatures checks that the estimator reads exactly the features the
// transforms produce.
func checkFeatures(produced, read []string) error {
	if len(produced) != len(read) {
		return fmt.Errorf("the estimator has %d features but the transforms produce %d", len(read), len(produced))
	}
	for j := range read {
		if read[j] != produced[j] {
			return fmt.Errorf("estimator feature %d is %q but the transforms produce %q", j, read[j], produced[j])
		}
	}
	return nil
}

// validate checks the manifest on its own (not the estimator file).
func (m *Manifest) validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("format_version %d is not supported (this Kiln reads %d)", m.FormatVersion, FormatVersion)
	}
	switch {
	case m.Task == TaskBinary && m.Output != OutputProbability:
		return fmt.Errorf("output %q is not supported for task %q (want %q)", m.Output, m.Task, OutputProbability)
	case m.Task == TaskRegression && m.Output != OutputValue:
		return fmt.Errorf("output %q is not supported for task %q (want %q)", m.Output, m.Task, OutputValue)
	case m.Task == TaskMulticlass && m.Output != OutputProbabilities:
		return fmt.Errorf("output %q is not supported for task %q (want %q)", m.Output, m.Task, OutputProbabilities)
	case m.Task != TaskBinary && m.Task != TaskRegression && m.Task != TaskMulticlass:
		return fmt.Errorf("task %q is not supported (want %q, %q or %q)", m.Task, TaskBinary, TaskRegression, TaskMulticlass)
	}
	if err := checkClasses(m.Task, m.Classes); err != nil {
		return err
	}
	if m.Transforms == nil {
		return fmt.Errorf("no transforms")
	}
	if err := m.Transforms.Validate(); err != nil {
		return err
	}
	if !slices.Equal(m.Inputs, m.Transforms.Inputs) {
		return fmt.Errorf("inputs differ from transforms.inputs")
	}
	for _, in := range m.Inputs {
		if in.Name == m.Target {
			return fmt.Errorf("the target %q is also an input", m.Target)
		}
	}
	if m.Estimator.Type == "" {
		return fmt.Errorf("no estimator type")
	}
	if err := checkFileName(m.Estimator.File); err != nil {
		return fmt.Errorf("estimator file: %w", err)
	}
	return nil
}

// checkClasses checks a manifest's classes: at least two distinct,
// non-empty names for TaskMulticlass, none for the other tasks.
func checkClasses(task string, classes []string) error {
	if task != TaskMulticlass {
		if len(classes) > 0 {
			return fmt.Errorf("classes are listed but task %q has none (only %q does)", task, TaskMulticlass)
		}
		return nil
	}
	if len(classes) < 2 {
		return fmt.Errorf("task %q needs classes: the target values the estimator's classes 0, 1, ... stand for (got %d)", task, len(classes))
	}
	seen := make(map[string]bool, len(classes))
	for k, c := range classes {
		if c == "" {
			return fmt.Errorf("classes[%d] is empty", k)
		}
		if seen[c] {
			return fmt.Errorf("class %q is listed twice", c)
		}
		seen[c] = true
	}
	return nil
}

// checkFileName accepts plain file names other than the manifest's.
func checkFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty file name")
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`) || filepath.Base(name) != name:
		return fmt.Errorf("%q is not a plain file name", name)
	case name == ManifestFile:
		return fmt.Errorf("%q is reserved for the manifest", name)
	}
	return nil
}

// FeatureNames returns the features the estimator reads, in order.
func (m *Model) FeatureNames() []string { return m.predictor.FeatureNames() }

// Predictor returns the model's estimator.
func (m *Model) Predictor() Predictor { return m.predictor }

// Predict scores a batch: it applies the fitted transforms to rec (which must
// hold every input column; other columns are ignored) and returns one
// prediction per row: a probability or a value, as Manifest.Output says.
func (m *Model) Predict(rec arrow.Record) ([]float64, error) {
	x, err := m.Manifest.Transforms.Apply(rec)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return m.predictAll(x)
}

// PredictRows scores decoded JSON rows (see transform.Fitted.ApplyRows) and
// returns one prediction per row, bit-identical to Predict on the same
// values.
func (m *Model) PredictRows(rows []map[string]any) ([]float64, error) {
	preds, _, err := m.PredictRowsReport(rows)
	return preds, err
}

// PredictRowsReport is PredictRows that also returns the values of string
// columns read as a numeric-looking category by value ("2" as "2.0"; see
// transform.Step.NumericSpellings), which a server reports.
func (m *Model) PredictRowsReport(rows []map[string]any) ([]float64, []transform.Respelling, error) {
	x, scratch, err := m.rowsMatrix(rows)
	if err != nil {
		return nil, nil, err
	}
	preds, err := m.predictAll(x)
	respelled := x.Respelled
	scratch.release()
	return preds, respelled, err
}

// rowsMatrix is the feature matrix of decoded JSON rows: identityRows when
// it applies, else the transforms' ApplyRows (whose Respelled it keeps).
// An identity matrix is built in scratch storage (non-nil scratch), which
// the caller releases once it is done with x.
func (m *Model) rowsMatrix(rows []map[string]any) (*Matrix, *scratchMatrix, error) {
	scratch, _ := matrices.Get().(*scratchMatrix)
	if scratch == nil {
		scratch = new(scratchMatrix)
	}
	if x, ok := identityRowsInto(m.Manifest.Transforms, rows, scratch); ok {
		return x, scratch, nil
	}
	scratch.release()
	x, err := m.Manifest.Transforms.ApplyRows(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	return x, nil, nil
}

// scratchMatrix is the storage of an identity matrix (identityRowsInto),
// recycled through matrices: a one-row request's 30 columns were a
// kilobyte of garbage per prediction in kiln serve.
type scratchMatrix struct {
	x    Matrix
	vals []float64
	cols [][]float64
}

// matrices recycles scratchMatrix values.
var matrices sync.Pool

// maxScratchValues bounds the matrices that are recycled (values).
const maxScratchValues = 1 << 16

// release returns s to matrices; nil does nothing.
func (s *scratchMatrix) release() {
	if s == nil || cap(s.vals) > maxScratchValues {
		return
	}
	s.x = Matrix{}
	matrices.Put(s)
}

// identityRows is ApplyRows for the identity transforms (no steps, every
// input Float64 or Int64 and a feature of its own, as Kiln's GBDT pipelines
// fit them) over rows whose values are all float64 (JSON numbers) or null or
// absent (NaN): it returns the same matrix without the general machinery's
// per-call planning and per-column allocations, which cost more than a
// one-row prediction. ok is false for other transforms and other values,
// which ApplyRows then converts or rejects.
func identityRows(t *transform.Fitted, rows []map[string]any) (x *Matrix, ok bool) {
	return identityRowsInto(t, rows, new(scratchMatrix))
}

// identityRowsInto is identityRows building the matrix in s's storage.
func identityRowsInto(t *transform.Fitted, rows []map[string]any, s *scratchMatrix) (x *Matrix, ok bool) {
	if len(t.Steps) != 0 || len(t.Features) != len(t.Inputs) {
		return nil, false
	}
	for j, in := range t.Inputs {
		if in.Type != schema.Float64 && in.Type != schema.Int64 || t.Features[j] != in.Name {
			return nil, false
		}
	}
	n, k := len(rows), len(t.Inputs)
	if cap(s.vals) < n*k {
		s.vals = make([]float64, n*k)
	}
	if cap(s.cols) < k {
		s.cols = make([][]float64, k)
	}
	vals, cols := s.vals[:n*k], s.cols[:k] // every value is set below
	for j, in := range t.Inputs {
		c := vals[j*n : (j+1)*n : (j+1)*n]
		for i, row := range rows {
			switch v := row[in.Name].(type) {
			case float64:
				c[i] = v
			case nil:
				c[i] = math.NaN()
			default:
				return nil, false
			}
		}
		cols[j] = c
	}
	s.x = Matrix{Rows: n, Features: t.Features, Cols: cols}
	return &s.x, true
}

// predictAll runs the estimator over every row of x.
func (m *Model) predictAll(x *Matrix) ([]float64, error) {
	out := make([]float64, x.Rows)
	if err := m.PredictMatrix(x, out); err != nil {
		return nil, err
	}
	return out, nil
}

// PredictMatrix writes the prediction of row i of x into out[i]. x must hold
// the model's features in order and len(out) must be x.Rows.
func (m *Model) PredictMatrix(x *Matrix, out []float64) error {
	return m.predictor.PredictMatrix(x, out)
}

// ChecksFinite reports whether PredictMatrix itself rejects every NaN or
// ±Inf feature value (the logistic estimator does, at no extra pass), so a
// caller need not check the features first.
func (m *Model) ChecksFinite() bool {
	_, ok := m.predictor.(*Logistic)
	return ok
}

// Load reads and validates the bundle in dir.
func Load(dir string) (*Model, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: reading bundle: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	epath := filepath.Join(dir, m.Estimator.File)
	edata, err := os.ReadFile(epath)
	if err != nil {
		return nil, fmt.Errorf("model: reading estimator: %w", err)
	}
	mod, err := build(m, epath, edata)
	if err != nil {
		return nil, err
	}
	mod.Dir = dir
	return mod, nil
}

// beforeRename runs after a bundle is complete in its temporary directory;
// tests replace it to simulate a late failure.
var beforeRename = func(tmp string) error { return nil }

// syncParent makes the rename of a bundle into its parent directory
// durable; tests replace it to simulate a failure.
var syncParent = syncDir

// WriteBundle writes a bundle to dir atomically: the manifest and files
// (name → content; they must include m.Estimator.File) are validated as New
// does, written to a temporary sibling directory, synced, and renamed to
// dir. It fails if dir exists; on error nothing is left behind. Once the
// rename has succeeded the bundle exists and WriteBundle succeeds: a failure
// to sync the parent directory afterwards is ignored (as internal/dataset
// does), since some file systems cannot sync directories and reporting it
// would make a retry fail with "already exists".
func WriteBundle(dir string, m Manifest, files map[string][]byte) (err error) {
	if _, err := New(m, files); err != nil {
		return err
	}
	for name := range files {
		if err := checkFileName(name); err != nil {
			return fmt.Errorf("model: bundle file: %w", err)
		}
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("model: encoding manifest: %w", err)
	}
	manifest = append(manifest, '\n')

	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("model: bundle %s already exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("model: checking bundle dir: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("model: creating bundle parent: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("model: creating temporary bundle dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := writeSynced(filepath.Join(tmp, name), files[name]); err != nil {
			return err
		}
	}
	if err := writeSynced(filepath.Join(tmp, ManifestFile), manifest); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := beforeRename(tmp); err != nil {
		return err
	}
	// rename(2) would replace an empty directory created since the check
	// above; check again as close to the rename as possible.
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("model: bundle %s already exists", dir)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("model: moving bundle into place: %w", err)
	}
	_ = syncParent(parent) // Documented: ignored once the bundle is in place.
	return nil
}

// writeSynced writes data to a new file and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("model: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("model: syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("model: closing %s: %w", path, err)
	}
	return nil
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("model: syncing %s: %w", dir, err)
	}
	return nil
}

// HashFiles is the content address of a bundle (bundles/<hash> in the
// artifact store): the SHA-256 of its files' names, lengths and contents in
// name order.
func HashFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}
