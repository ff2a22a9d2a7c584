package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// profileBins is the number of bins of the drift reference profile (deciles).
const profileBins = 10

// Preprocess splits the dataset deterministically into train, valid and test
// rows, fits the transforms on the train rows only, and writes: the
// transformed train and valid sets (the trainer's inputs), the raw test rows
// (for evaluate, which scores them through the bundle), the fitted transforms
// and the training profile. Outputs are content-addressed by the dataset hash
// and the step's configuration; the step is cached (see cache.go) by the same.
func (a *Activities) Preprocess(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg := in.Step.Preprocess
	ds := in.Inputs.Dataset
	if cfg == nil || ds == nil {
		return StepOutput{}, invalid("step %q needs a preprocess config and an upstream dataset", in.Step.Name)
	}
	key, err := stepKey(pipelines.StepPreprocess, preprocessImplVersion, cfg, map[string]string{"dataset_sha256": ds.SHA256}, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.preprocess(ctx, cfg, ds) })
}

// preprocess does the work of Preprocess.
func (a *Activities) preprocess(ctx context.Context, cfg *pipelines.PreprocessConfig, ds *DatasetRef) (StepOutput, error) {
	// The outputs' address: a function of the implementation, the data and
	// the configuration (publishing keeps the first copy of an address, so
	// the implementation version must be part of it).
	cfgJSON, _ := json.Marshal(cfg)
	keySum := sha256.Sum256(fmt.Appendf(nil, "preprocess/v%d\n%s\n%s", preprocessImplVersion, ds.SHA256, cfgJSON))
	address := hex.EncodeToString(keySum[:])

	path, err := a.Store.Local(ctx, ds.URI)
	if err != nil {
		return StepOutput{}, err
	}
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return StepOutput{}, err
	}
	defer r.Close()
	schema := r.Schema()
	if schema.Index(cfg.Target) < 0 {
		return StepOutput{}, invalid("target column %q is not in the dataset (columns: %v)", cfg.Target, schema.Names())
	}
	// Kiln's own columns (pipelines.SourceColumn, _kiln_...) are never
	// features: they stay in the raw holdout, for evaluate.
	for _, name := range schema.Names() {
		if strings.HasPrefix(name, "_kiln_") && !slices.Contains(cfg.Exclude, name) {
			c := *cfg
			c.Exclude = append(slices.Clip(cfg.Exclude), name)
			cfg = &c
		}
	}
	pl := startPulse(ctx, Progress{Msg: "reading dataset"})
	defer pl.stop()
	all, err := r.ReadAll(ctx, nil)
	if err != nil {
		return StepOutput{}, err
	}
	defer all.Release()
	if err := checkFinite(all, schema, cfg.Exclude); err != nil {
		return StepOutput{}, err
	}

	var labels []float64
	var classes []string
	if cfg.Task == "multiclass" {
		labels, classes, err = multiclassLabels(all, cfg.Target)
	} else {
		labels, err = targetLabels(all, cfg.Target, cfg.Task)
	}
	if err != nil {
		return StepOutput{}, err
	}
	var trainIdx, validIdx, testIdx []int
	dropped := 0
	for i, y := range labels {
		if math.IsNaN(y) {
			dropped++
			continue
		}
		switch splitOf(cfg.Split, i) {
		case "test":
			testIdx = append(testIdx, i)
		case "valid":
			validIdx = append(validIdx, i)
		default:
			trainIdx = append(trainIdx, i)
		}
	}
	if len(trainIdx) == 0 || len(testIdx) == 0 {
		return StepOutput{}, invalid("split of %d labelled rows left %d train and %d test rows; need both", len(labels)-dropped, len(trainIdx), len(testIdx))
	}
	train, err := dataset.Take(all, trainIdx)
	if err != nil {
		return StepOutput{}, err
	}
	defer train.Release()
	valid, err := dataset.Take(all, validIdx)
	if err != nil {
		return StepOutput{}, err
	}
	defer valid.Release()
	test, err := dataset.Take(all, testIdx)
	if err != nil {
		return StepOutput{}, err
	}
	defer test.Release()

	pl.set(Progress{Pct: 30, Msg: "fitting transforms"})
	fitted, err := transform.Fit(cfg.Recipe(), schema, train)
	if err != nil {
		return StepOutput{}, invalid("%v", err)
	}
	prof := dataset.NewProfiler(dataset.Schema{Fields: fitted.Inputs}, profileBins)
	inputsOnly, err := selectColumns(train, fitted.Inputs)
	if err != nil {
		return StepOutput{}, err
	}
	err = prof.Add(inputsOnly)
	inputsOnly.Release()
	if err != nil {
		return StepOutput{}, fmt.Errorf("profiling training rows: %w", err)
	}
	profile := prof.Profile()

	tmp, err := a.Store.TempDir("prep")
	if err != nil {
		return StepOutput{}, err
	}
	defer os.RemoveAll(tmp)
	pl.set(Progress{Pct: 60, Msg: "writing splits"})
	if err := writeFeatures(filepath.Join(tmp, "train.parquet"), fitted, train, cfg.Target, pick(labels, trainIdx)); err != nil {
		return StepOutput{}, err
	}
	if err := writeFeatures(filepath.Join(tmp, "valid.parquet"), fitted, valid, cfg.Target, pick(labels, validIdx)); err != nil {
		return StepOutput{}, err
	}
	if err := writeRecord(filepath.Join(tmp, "test.parquet"), schema, test); err != nil {
		return StepOutput{}, err
	}
	if err := writeJSON(filepath.Join(tmp, "transforms.json"), fitted); err != nil {
		return StepOutput{}, err
	}
	if err := writeJSON(filepath.Join(tmp, "profile.json"), profile); err != nil {
		return StepOutput{}, err
	}
	dir := filepath.Join(tmp, "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return StepOutput{}, err
	}
	for _, f := range []string{"train.parquet", "valid.parquet", "test.parquet", "transforms.json", "profile.json"} {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(dir, f)); err != nil {
			return StepOutput{}, err
		}
	}
	uri, err := a.Store.Publish(ctx, dir, "prepared/"+address)
	if err != nil {
		return StepOutput{}, err
	}
	task := cfg.Task
	if task == "" {
		task = "binary"
	}
	ref := &PreparedRef{
		TrainURI:      artifact.JoinURI(uri, "train.parquet"),
		ValidURI:      artifact.JoinURI(uri, "valid.parquet"),
		TestURI:       artifact.JoinURI(uri, "test.parquet"),
		TransformsURI: artifact.JoinURI(uri, "transforms.json"),
		ProfileURI:    artifact.JoinURI(uri, "profile.json"),
		Target:        cfg.Target, Task: task, Classes: classes, Features: fitted.Features,
		TrainRows: int64(len(trainIdx)), ValidRows: int64(len(validIdx)), TestRows: int64(len(testIdx)),
		DatasetSHA256: ds.SHA256,
	}
	summary := fmt.Sprintf("%d train / %d valid / %d test rows, %d features", len(trainIdx), len(validIdx), len(testIdx), len(fitted.Features))
	if len(classes) > 0 {
		summary += fmt.Sprintf(", %d classes", len(classes))
	}
	if dropped > 0 {
		summary += fmt.Sprintf(", %d rows without a label dropped", dropped)
	}
	return StepOutput{Artifacts: Artifacts{Prepared: ref}, Summary: summary}, nil
}

// targetLabels reads the target of a task: 0/1 for binary (see
// binaryLabels), any finite number for regression; NaN marks a missing label
// (the row is dropped).
func targetLabels(rec arrow.Record, target, task string) ([]float64, error) {
	if task != "regression" {
		return binaryLabels(rec, target)
	}
	y, err := dataset.Float64s(rec, target)
	if err != nil {
		return nil, invalid("target %q of a regression must be numeric: %v", target, err)
	}
	for i, v := range y {
		if math.IsInf(v, 0) {
			return nil, invalid("target %q has an infinite value in row %d", target, i+1)
		}
	}
	return y, nil
}

// pick returns ys[i] for each i of idx.
func pick(ys []float64, idx []int) []float64 {
	out := make([]float64, len(idx))
	for k, i := range idx {
		out[k] = ys[i]
	}
	return out
}

// maxClasses bounds the classes of a multiclass target: more distinct values
// are more likely a numeric target given the wrong task.
const maxClasses = 1000

// multiclassLabels reads a multiclass target: its classes, sorted as
// scikit-learn's LabelEncoder sorts them (numerically when every value is a
// number, else as strings), and each row's class index, NaN for a missing
// label (null, empty or NaN; the row is dropped). Numbers are spelled as
// dataset.Strings spells them ("3", "2.5").
func multiclassLabels(rec arrow.Record, target string) ([]float64, []string, error) {
	vals, valid, err := dataset.Strings(rec, target)
	if err != nil {
		return nil, nil, invalid("target %q: %v", target, err)
	}
	seen := map[string]bool{}
	var classes []string
	numeric := true
	for i, v := range vals {
		if !valid[i] || v == "" || v == "NaN" {
			continue
		}
		if !seen[v] {
			seen[v] = true
			classes = append(classes, v)
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				numeric = false
			}
		}
	}
	labelled := 0
	for i, v := range vals {
		if valid[i] && v != "" && v != "NaN" {
			labelled++
		}
	}
	switch {
	case len(classes) > maxClasses || len(classes) > labelled/2:
		return nil, nil, invalid("target %q has %d distinct values in %d labelled rows; a multiclass target needs at most %d classes and at least two rows per class on average (is it a regression target? then set task: regression)", target, len(classes), labelled, maxClasses)
	case len(classes) < 3:
		return nil, nil, invalid("target %q has %d distinct values %q; task multiclass needs at least 3 (for two classes use task: binary with a 0/1 target)", target, len(classes), classes)
	}
	if numeric {
		slices.SortFunc(classes, func(a, b string) int {
			x, _ := strconv.ParseFloat(a, 64)
			y, _ := strconv.ParseFloat(b, 64)
			return cmp.Compare(x, y)
		})
	} else {
		slices.Sort(classes)
	}
	y, err := classIndexes(vals, valid, classes)
	if err != nil {
		return nil, nil, invalid("target %q: %v", target, err)
	}
	return y, classes, nil
}

// TargetClasses returns the classes preprocess finds in a multiclass target
// column of rec, in the order of their indexes (see PreparedRef.Classes).
func TargetClasses(rec arrow.Record, target string) ([]string, error) {
	_, classes, err := multiclassLabels(rec, target)
	return classes, err
}

// classIndexes maps target values (as dataset.Strings reads them) to their
// index in classes, NaN for a missing label; a value that is no class is an
// error naming it and its row (1-based).
func classIndexes(vals []string, valid []bool, classes []string) ([]float64, error) {
	index := make(map[string]float64, len(classes))
	for k, c := range classes {
		index[c] = float64(k)
	}
	y := make([]float64, len(vals))
	for i, v := range vals {
		if !valid[i] || v == "" || v == "NaN" {
			y[i] = math.NaN()
			continue
		}
		k, ok := index[v]
		if !ok {
			return nil, fmt.Errorf("row %d has class %q, which the model does not know (classes: %q)", i+1, v, classes)
		}
		y[i] = k
	}
	return y, nil
}

// binaryLabels reads the target as 0/1 with NaN for missing labels.
func binaryLabels(rec arrow.Record, target string) ([]float64, error) {
	y, err := dataset.Float64s(rec, target)
	if err != nil {
		return nil, invalid("target %q: %v", target, err)
	}
	for i, v := range y {
		if !math.IsNaN(v) && v != 0 && v != 1 {
			return nil, invalid("target %q has value %v in row %d; a binary target must be 0/1 or true/false", target, v, i+1)
		}
	}
	return y, nil
}

// checkFinite rejects ±Inf in the Float64 columns of rec that are not
// excluded: standardising, training on and profiling such a value would give
// NaN parameters or a profile that cannot be encoded. Rows are 1-based.
func checkFinite(rec arrow.Record, schema dataset.Schema, exclude []string) error {
	for _, f := range schema.Fields {
		if f.Type != dataset.Float64 || slices.Contains(exclude, f.Name) {
			continue
		}
		vals, err := dataset.Float64s(rec, f.Name)
		if err != nil {
			return err
		}
		for i, v := range vals {
			if math.IsInf(v, 0) {
				return invalid("column %q has an infinite value in row %d", f.Name, i+1)
			}
		}
	}
	return nil
}

// splitOf assigns row i to "train", "valid" or "test" from a hash of the seed
// and the row number, so the same data and seed always split the same way.
func splitOf(s pipelines.Split, i int) string {
	u := unitHash(uint64(s.Seed), uint64(i))
	switch {
	case u < s.Test:
		return "test"
	case u < s.Test+s.Valid*(1-s.Test):
		return "valid"
	default:
		return "train"
	}
}

// unitHash maps (seed, i) to [0, 1) with SplitMix64.
func unitHash(seed, i uint64) float64 {
	z := seed*0x9E3779B97F4A7C15 + i + 0x632BE59BD9B4E019
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// writeFeatures applies the fitted transforms and writes features + target
// y (the labels of rec's rows: 0/1, values or class indexes) as float64.
func writeFeatures(path string, fitted *transform.Fitted, rec arrow.Record, target string, y []float64) error {
	x, err := fitted.Apply(rec)
	if err != nil {
		return invalid("%v", err)
	}
	fields := make([]dataset.Field, 0, len(x.Features)+1)
	cols := make([]arrow.Array, 0, len(x.Features)+1)
	for j, name := range x.Features {
		fields = append(fields, dataset.Field{Name: name, Type: dataset.Float64})
		cols = append(cols, dataset.Float64Array(x.Cols[j]))
	}
	fields = append(fields, dataset.Field{Name: target, Type: dataset.Float64})
	cols = append(cols, dataset.Float64Array(y))
	schema := dataset.Schema{Fields: fields}
	out, err := dataset.NewRecord(schema, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		return err
	}
	defer out.Release()
	return writeRecord(path, schema, out)
}

// writeRecord writes one record as a Parquet file, atomically.
func writeRecord(path string, schema dataset.Schema, rec arrow.Record) error {
	w, err := dataset.CreateParquet(path, schema, dataset.WriterOptions{})
	if err != nil {
		return err
	}
	defer w.Abort()
	if rec.NumRows() > 0 {
		if err := w.Write(rec); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	_, err = w.Commit()
	return err
}

// selectColumns returns rec's columns named by fields, in that order.
func selectColumns(rec arrow.Record, fields []dataset.Field) (arrow.Record, error) {
	cols := make([]arrow.Array, len(fields))
	for i, f := range fields {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("column %q missing", f.Name)
		}
		cols[i] = rec.Column(idx[0])
	}
	return dataset.NewRecord(dataset.Schema{Fields: fields}, cols)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}
