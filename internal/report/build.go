package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
)

// Column names of Kiln's scored outputs.
const (
	PredictionColumn   = "prediction"
	ModelColumn        = "model"
	ModelVersionColumn = "model_version"
)

// Columns names the columns of the rows Build reads beside the model's
// inputs. Zero fields take the scored-output defaults (ScoredColumns).
type Columns struct {
	// Prediction is the prediction column (double). Required in the rows.
	Prediction string
	// Model and Version name the model version of each row; absent columns
	// attribute the rows to the reference model.
	Model, Version string
	// ID is the prediction ID column, for labels joined by ID.
	ID string
	// Time is the prediction time column (int64 Unix milliseconds), for
	// Options.From and To.
	Time string
}

// ScoredColumns are the columns of a Kiln scored output.
var ScoredColumns = Columns{Prediction: PredictionColumn, Model: ModelColumn, Version: ModelVersionColumn}

func (c Columns) withDefaults() Columns {
	if c.Prediction == "" {
		c.Prediction = PredictionColumn
	}
	if c.Model == "" && c.Version == "" {
		c.Model, c.Version = ModelColumn, ModelVersionColumn
	}
	return c
}

// MaxReferenceRows caps the training rows read as the feature reference: a
// bigger training set is sampled with an even stride (deterministic), so the
// reference's memory is bounded whatever the training data's size.
const MaxReferenceRows = 1_000_000

// batchRows is how many rows each scan batch holds.
const batchRows = 65536

// Input is what Build reads.
type Input struct {
	// Files are the scored Parquet files (the parts of a scored output).
	Files []string
	// Display names the input in the summary (a URI or path).
	Display string
	// Model is the reference model (normally the version that scored the
	// rows); ModelName and ModelVersion name it.
	Model        *model.Model
	ModelName    string
	ModelVersion int64
	// TrainingData is the Parquet file of the raw training rows (the
	// ingested dataset); empty means only the bundle's profile is known.
	TrainingData string
	// TrainingSource describes it for the summary.
	TrainingSource string
	// Holdout is the Parquet file of the raw holdout rows, scored by Model
	// for the reference prediction distribution; empty skips the
	// prediction comparison.
	Holdout string
	// HoldoutSource describes it for the summary.
	HoldoutSource string
	// ReferenceMetrics are the model's holdout metrics (from evaluation).
	ReferenceMetrics map[string]float64
	// Columns names the rows' own columns (default: a scored output's).
	Columns Columns
}

// Labels says where the true outcomes of the scored rows come from.
type Labels struct {
	// ByID are labels already joined elsewhere, by prediction ID (the
	// rows' Columns.ID); Source describes them for the summary.
	ByID   map[string]float64
	Source string
	// Column is a label column of the scored output.
	Column string
	// File is a labels file (CSV, JSON Lines or Parquet) joined to the
	// scored rows by ID: IDColumn in the scored output, FileID and FileLabel
	// in the file.
	File      string
	IDColumn  string
	FileID    string
	FileLabel string
}

// Options configure Build.
type Options struct {
	// Header fields copied into the summary.
	Title, Pipeline, Schedule, LogicalDate, Trigger, WorkflowID, RunID string
	Interval                                                           *Interval
	// Labels, when set, enables performance metrics.
	Labels *Labels
	// Threshold turns probabilities into labels (default 0.5).
	Threshold float64
	// Columns restricts the features compared; empty means every model input.
	Columns []string
	// Drift configures the tests (drift.DefaultOptions() when zero).
	Drift *drift.Options
	// Trend are earlier reports' points, oldest first; TrendMax bounds the
	// trend's length, this report included (0: 15).
	Trend    []TrendPoint
	TrendMax int
	// From and To, when set, keep only the rows whose Columns.Time is in
	// [From, To) (the rows of a monitor window).
	From, To time.Time
	// Progress, when set, is told the rows read so far and the total.
	Progress func(done, total int64)
	// Now stamps Generated (default time.Now).
	Now func() time.Time
}

// Build computes a report's summary: it streams the scored rows once,
// comparing each input feature and the predictions with the training
// reference, and keeps only aggregates, so memory does not grow with the
// scored rows (except the labelled rows' predictions, kept for AUC).
func Build(ctx context.Context, in Input, opts Options) (*Summary, error) {
	if in.Model == nil {
		return nil, errors.New("report: no reference model")
	}
	if len(in.Files) == 0 {
		return nil, errors.New("report: no scored files to read")
	}
	dopts := drift.DefaultOptions()
	if opts.Drift != nil {
		dopts = *opts.Drift
	}
	if opts.Threshold == 0 {
		opts.Threshold = 0.5
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	man := in.Model.Manifest
	in.Columns = in.Columns.withDefaults()
	cols := in.Columns
	s := &Summary{
		Schema: SchemaVersion, Title: opts.Title, Pipeline: opts.Pipeline, Schedule: opts.Schedule,
		LogicalDate: opts.LogicalDate, Interval: opts.Interval, Trigger: opts.Trigger,
		WorkflowID: opts.WorkflowID, RunID: opts.RunID, Generated: now().UTC(), Input: in.Display,
	}
	if s.Title == "" {
		s.Title = fmt.Sprintf("%s — %s", opts.Pipeline, opts.LogicalDate)
	}

	features, err := pickFeatures(man.Inputs, opts.Columns)
	if err != nil {
		return nil, err
	}
	// Open every file and check the columns once.
	readers := make([]*dataset.Reader, 0, len(in.Files))
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	var total int64
	present := map[string]dataset.Type{}
	for i, f := range in.Files {
		r, err := dataset.OpenParquet(f)
		if err != nil {
			return nil, fmt.Errorf("reading scored output %s: %w", f, err)
		}
		readers = append(readers, r)
		total += r.NumRows()
		sch := r.Schema()
		if sch.Index(cols.Prediction) < 0 {
			return nil, fmt.Errorf("scored output %s has no %q column: is it a Kiln scored output?", f, cols.Prediction)
		}
		cols := map[string]dataset.Type{}
		for _, fld := range sch.Fields {
			cols[fld.Name] = fld.Type
		}
		if i == 0 {
			present = cols
			continue
		}
		for name, t := range present {
			if cols[name] != t {
				delete(present, name) // a column missing or typed differently somewhere is not read
			}
		}
	}

	ref, err := loadReference(ctx, in, features, dopts, s)
	if err != nil {
		return nil, err
	}
	st := newStream(features, present, ref, cols)
	if err := st.setLabels(ctx, opts.Labels, present); err != nil {
		return nil, err
	}
	if !opts.From.IsZero() || !opts.To.IsZero() {
		if cols.Time == "" {
			return nil, errors.New("report: a time range needs a time column (Columns.Time)")
		}
		if t, ok := present[cols.Time]; !ok || t != dataset.Int64 {
			return nil, fmt.Errorf("report: the rows have no int64 time column %q", cols.Time)
		}
		st.addCol(cols.Time)
		st.from, st.to = opts.From, opts.To
	}
	var done int64
	for _, r := range readers {
		for g := 0; g < r.NumRowGroups(); g++ {
			err := r.ScanRowGroup(ctx, g, st.columns(), batchRows, func(rec arrow.Record) error {
				n := rec.NumRows()
				rec, err := st.inRange(rec)
				if err != nil {
					return fmt.Errorf("%s: %w", r.Path(), err)
				}
				if rec != nil {
					defer rec.Release()
					if err := st.add(rec); err != nil {
						return fmt.Errorf("%s: %w", r.Path(), err)
					}
					st.rows += rec.NumRows()
				}
				done += n
				if opts.Progress != nil {
					opts.Progress(done, total)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	s.Rows = st.rows
	st.finish(s, in, man, dopts, opts.Threshold)
	s.Trend = trend(opts.Trend, s, opts.TrendMax)
	finite(s)
	return s, nil
}

// pickFeatures returns the model inputs to compare, in input order.
func pickFeatures(inputs []dataset.Field, only []string) ([]dataset.Field, error) {
	if len(only) == 0 {
		return inputs, nil
	}
	var out []dataset.Field
	for _, f := range inputs {
		if slices.Contains(only, f.Name) {
			out = append(out, f)
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(inputs, func(f dataset.Field) bool { return f.Name == name }) {
			return nil, fmt.Errorf("report column %q is not an input of the model (inputs: %v)", name, fieldNames(inputs))
		}
	}
	return out, nil
}

func fieldNames(fs []dataset.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// reference is what the current rows are compared with.
type reference struct {
	numeric     map[string]*drift.NumericReference
	categorical map[string]*drift.CategoricalReference
	// nullRate is the training data's null share per feature.
	nullRate map[string]float64
	// min and max are the training range of numeric features.
	min, max map[string]float64
	// prediction is the holdout's prediction distribution (nil without a holdout).
	prediction *drift.NumericReference
	predMean   float64
	predRows   int64
}

// loadReference reads the training rows (or falls back to the bundle's
// profile) and scores the holdout.
func loadReference(ctx context.Context, in Input, features []dataset.Field, dopts drift.Options, s *Summary) (*reference, error) {
	man := in.Model.Manifest
	ref := &reference{
		numeric: map[string]*drift.NumericReference{}, categorical: map[string]*drift.CategoricalReference{},
		nullRate: map[string]float64{}, min: map[string]float64{}, max: map[string]float64{},
	}
	s.Reference.Model = fmt.Sprintf("%s:%d", in.ModelName, in.ModelVersion)
	profile := map[string]dataset.ColumnProfile{}
	if man.Profile != nil {
		for _, c := range man.Profile.Columns {
			profile[c.Name] = c
		}
	}
	for _, f := range features {
		if p, ok := profile[f.Name]; ok {
			if n := p.Count + p.Nulls; n > 0 {
				ref.nullRate[f.Name] = float64(p.Nulls) / float64(n)
			}
			if f.Type.Numeric() && p.Count > 0 {
				ref.min[f.Name], ref.max[f.Name] = p.Min, p.Max
			}
		}
	}
	loaded := false
	if in.TrainingData != "" {
		rows, err := readTrainingReference(ctx, in.TrainingData, features, dopts, ref)
		switch {
		case err == nil:
			loaded = true
			s.Reference.FeatureRows = rows
			s.Reference.FeatureSource = in.TrainingSource
			if s.Reference.FeatureSource == "" {
				s.Reference.FeatureSource = fmt.Sprintf("training data %s (%d rows)", in.TrainingData, rows)
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			s.Warnings = append(s.Warnings, fmt.Sprintf("the training data could not be read (%v); features are compared with the bundle's binned profile instead", err))
		}
	}
	if !loaded {
		if man.Profile == nil {
			s.Warnings = append(s.Warnings, "the model has neither readable training data nor a training profile: input drift is not measured")
		} else {
			profileReference(features, profile, dopts, ref)
			s.Reference.FeatureSource = "bundle profile (binned; the training rows were not available)"
			if in.TrainingData == "" {
				s.Warnings = append(s.Warnings, "the model's training data is not available: features are compared with the bundle's binned training profile (an approximation of the training distribution)")
			}
		}
	} else {
		// A feature absent from the training file falls back to the profile.
		var missing []dataset.Field
		for _, f := range features {
			if ref.numeric[f.Name] == nil && ref.categorical[f.Name] == nil {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			profileReference(missing, profile, dopts, ref)
			for _, f := range missing {
				if ref.numeric[f.Name] != nil || ref.categorical[f.Name] != nil {
					s.Warnings = append(s.Warnings, fmt.Sprintf("feature %s is not in the training data; it is compared with the bundle's binned profile", f.Name))
				} else {
					s.Warnings = append(s.Warnings, fmt.Sprintf("feature %s is neither in the training data nor in the training profile: its drift is not measured", f.Name))
				}
			}
		}
	}
	if in.Holdout != "" {
		preds, err := scoreHoldout(ctx, in.Model, in.Holdout)
		switch {
		case err == nil && len(preds) > 0:
			ref.prediction = drift.NewNumericReference(preds, dopts)
			ref.predRows = int64(len(preds))
			ref.predMean = mean(preds)
			s.Reference.PredictionRows = ref.predRows
			s.Reference.PredictionSource = in.HoldoutSource
			if s.Reference.PredictionSource == "" {
				s.Reference.PredictionSource = fmt.Sprintf("holdout %s scored by %s", in.Holdout, s.Reference.Model)
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			s.Warnings = append(s.Warnings, fmt.Sprintf("the holdout could not be scored (%v): the prediction distribution is not compared", err))
		default:
			s.Warnings = append(s.Warnings, "the model's holdout has no rows: the prediction distribution is not compared")
		}
	} else {
		s.Warnings = append(s.Warnings, "the model's holdout is not available: the prediction distribution is not compared")
	}
	return ref, nil
}

// readTrainingReference reads the features of the training rows (at most
// MaxReferenceRows, evenly strided) into drift references.
func readTrainingReference(ctx context.Context, path string, features []dataset.Field, dopts drift.Options, ref *reference) (int64, error) {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	sch := r.Schema()
	var cols []string
	for _, f := range features {
		if i := sch.Index(f.Name); i >= 0 {
			cols = append(cols, f.Name)
		}
	}
	n := r.NumRows()
	stride := int64(1)
	if n > MaxReferenceRows {
		stride = (n + MaxReferenceRows - 1) / MaxReferenceRows
	}
	nums := map[string][]float64{}
	strs := map[string][]string{}
	nulls := map[string]int64{}
	var row, kept int64
	for g := 0; g < r.NumRowGroups(); g++ {
		err := r.ScanRowGroup(ctx, g, cols, batchRows, func(rec arrow.Record) error {
			m := int(rec.NumRows())
			pick := make([]int, 0, m)
			for i := 0; i < m; i++ {
				if (row+int64(i))%stride == 0 {
					pick = append(pick, i)
				}
			}
			row += int64(m)
			kept += int64(len(pick))
			for ci, name := range cols {
				col := rec.Column(ci)
				switch col := col.(type) {
				case *array.String:
					for _, i := range pick {
						if col.IsNull(i) {
							nulls[name]++
							continue
						}
						strs[name] = append(strs[name], col.Value(i))
					}
				case *array.Boolean:
					for _, i := range pick {
						if col.IsNull(i) {
							nulls[name]++
							continue
						}
						strs[name] = append(strs[name], strconv.FormatBool(col.Value(i)))
					}
				default:
					vals, valid := numericValues(col)
					for _, i := range pick {
						if (valid != nil && !valid[i]) || math.IsNaN(vals[i]) || math.IsInf(vals[i], 0) {
							nulls[name]++
							continue
						}
						nums[name] = append(nums[name], vals[i])
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	for _, f := range features {
		if !slices.Contains(cols, f.Name) {
			continue
		}
		if kept > 0 {
			ref.nullRate[f.Name] = float64(nulls[f.Name]) / float64(kept)
		}
		if f.Type.Numeric() {
			v := nums[f.Name]
			ref.numeric[f.Name] = drift.NewNumericReference(v, dopts)
			if len(v) > 0 {
				lo, hi := v[0], v[0]
				for _, x := range v {
					lo, hi = min(lo, x), max(hi, x)
				}
				// The profile saw every training row; a strided sample
				// only widens the range, never narrows it.
				if _, ok := ref.min[f.Name]; !ok {
					ref.min[f.Name], ref.max[f.Name] = lo, hi
				} else {
					ref.min[f.Name], ref.max[f.Name] = min(ref.min[f.Name], lo), max(ref.max[f.Name], hi)
				}
			}
		} else {
			ref.categorical[f.Name] = drift.NewCategoricalReference(strs[f.Name], nil, dopts)
		}
	}
	return kept, nil
}

// profileReference builds references from the bundle's training profile:
// numeric features from points spread over the profile's quantiles (an
// approximation of the training distribution), categorical ones from the
// category shares.
func profileReference(features []dataset.Field, profile map[string]dataset.ColumnProfile, dopts drift.Options, ref *reference) {
	for _, f := range features {
		p, ok := profile[f.Name]
		if !ok || p.Count == 0 {
			continue
		}
		if f.Type.Numeric() {
			if len(p.Quantiles) != len(dataset.QuantileLevels) {
				continue
			}
			const points = 1000
			vals := make([]float64, points)
			for i := range vals {
				vals[i] = quantileAt(p.Quantiles, (float64(i)+0.5)/points)
			}
			ref.numeric[f.Name] = drift.NewNumericReference(vals, dopts)
			continue
		}
		counts := map[string]int64{}
		for i, c := range p.Categories {
			if i < len(p.CategoryFractions) {
				counts[c] = int64(math.Round(p.CategoryFractions[i] * float64(p.Count)))
			}
		}
		ref.categorical[f.Name] = drift.NewCategoricalReferenceCounts(counts)
	}
}

// quantileAt interpolates the profile's quantiles (at dataset.QuantileLevels)
// at level q.
func quantileAt(qs []float64, q float64) float64 {
	lv := dataset.QuantileLevels
	j := sort.SearchFloat64s(lv, q)
	switch {
	case j <= 0:
		return qs[0]
	case j >= len(lv):
		return qs[len(qs)-1]
	}
	t := (q - lv[j-1]) / (lv[j] - lv[j-1])
	return qs[j-1] + t*(qs[j]-qs[j-1])
}

// scoreHoldout predicts the holdout rows with the model.
func scoreHoldout(ctx context.Context, m *model.Model, path string) ([]float64, error) {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var cols []string
	for _, f := range m.Manifest.Inputs {
		cols = append(cols, f.Name)
	}
	var out []float64
	for g := 0; g < r.NumRowGroups(); g++ {
		err := r.ScanRowGroup(ctx, g, cols, batchRows, func(rec arrow.Record) error {
			p, err := m.Predict(rec)
			if err != nil {
				return err
			}
			out = append(out, p...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// numericValues returns an Int64 or Float64 column's values as float64
// (a view without copying for Float64) and its validity (nil: all valid).
func numericValues(col arrow.Array) ([]float64, []bool) {
	var vals []float64
	switch c := col.(type) {
	case *array.Float64:
		vals = c.Float64Values()
	case *array.Int64:
		vals = make([]float64, c.Len())
		for i, v := range c.Int64Values() {
			vals[i] = float64(v)
		}
	default:
		vals = make([]float64, col.Len())
		for i := range vals {
			vals[i] = math.NaN()
		}
		return vals, nil
	}
	if col.NullN() == 0 {
		return vals, nil
	}
	valid := make([]bool, col.Len())
	for i := range valid {
		valid[i] = col.IsValid(i)
	}
	return vals, valid
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// trend appends this report's point to the earlier ones and keeps the last max.
func trend(earlier []TrendPoint, s *Summary, maxPoints int) []TrendPoint {
	if maxPoints <= 0 {
		maxPoints = 15
	}
	out := make([]TrendPoint, 0, len(earlier)+1)
	for _, p := range earlier {
		if p.LogicalDate != s.LogicalDate {
			p.Current = false
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LogicalDate < out[j].LogicalDate })
	out = append(out, Point(s))
	if len(out) > maxPoints {
		out = out[len(out)-maxPoints:]
	}
	return out
}

// Point is a summary's point in later reports' trends.
func Point(s *Summary) TrendPoint {
	p := TrendPoint{
		LogicalDate: s.LogicalDate, Rows: s.Rows, DriftShare: s.Drift.Share, DatasetDrift: s.Drift.Drifted,
		PredictionMean: s.Prediction.Mean, PredictionStatistic: s.Prediction.Statistic, Current: true,
	}
	if s.Performance != nil {
		p.Metrics = map[string]float64{}
		for k, v := range s.Performance.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				p.Metrics[k] = v
			}
		}
	}
	return p
}

// stream accumulates the scored rows.
type stream struct {
	features []dataset.Field
	present  map[string]dataset.Type
	ref      *reference
	cols     []string
	index    map[string]int

	num     map[string]*drift.NumericAccumulator
	cat     map[string]*drift.CategoricalAccumulator
	quality map[string]*ColumnQuality

	pred    *drift.NumericAccumulator
	predSum float64
	predN   int64
	models  map[modelKey]int64

	labels      *Labels
	labelSource string
	labelByID   map[string]float64
	labelVals   []float64
	labelPreds  []float64

	colNames Columns
	// from and to bound the rows' times (zero: no bound); rows counts the
	// rows kept.
	from, to time.Time
	rows     int64
}

type modelKey struct {
	name    string
	version int64
}

func newStream(features []dataset.Field, present map[string]dataset.Type, ref *reference, cols Columns) *stream {
	st := &stream{
		features: features, present: present, ref: ref, index: map[string]int{},
		num: map[string]*drift.NumericAccumulator{}, cat: map[string]*drift.CategoricalAccumulator{},
		quality: map[string]*ColumnQuality{}, models: map[modelKey]int64{}, colNames: cols,
	}
	add := func(name string) {
		if _, ok := st.index[name]; !ok {
			st.index[name] = len(st.cols)
			st.cols = append(st.cols, name)
		}
	}
	add(cols.Prediction)
	if _, ok := present[cols.Model]; ok && cols.Model != "" {
		add(cols.Model)
	}
	if _, ok := present[cols.Version]; ok && cols.Version != "" {
		add(cols.Version)
	}
	for _, f := range features {
		q := &ColumnQuality{Column: f.Name, Type: string(f.Type), ReferenceNullRate: ref.nullRate[f.Name]}
		st.quality[f.Name] = q
		if _, ok := present[f.Name]; !ok {
			q.Missing = true
			continue
		}
		add(f.Name)
		if f.Type.Numeric() {
			if lo, ok := ref.min[f.Name]; ok {
				hi := ref.max[f.Name]
				q.Min, q.Max = &lo, &hi
			}
			if r := ref.numeric[f.Name]; r != nil {
				st.num[f.Name] = r.NewAccumulator()
			}
		} else if r := ref.categorical[f.Name]; r != nil {
			st.cat[f.Name] = r.NewAccumulator()
		}
	}
	if ref.prediction != nil {
		st.pred = ref.prediction.NewAccumulator()
	}
	return st
}

// setLabels configures where labels come from.
func (st *stream) setLabels(ctx context.Context, l *Labels, present map[string]dataset.Type) error {
	if l == nil {
		return nil
	}
	switch {
	case l.ByID != nil:
		id := st.colNames.ID
		if _, ok := present[id]; !ok || id == "" {
			return fmt.Errorf("labels by ID need the rows' ID column %q", id)
		}
		st.labelByID = l.ByID
		st.labelSource = l.Source
		if st.labelSource == "" {
			st.labelSource = fmt.Sprintf("%d labels joined on %s", len(l.ByID), id)
		}
		lc := *l
		lc.IDColumn = id
		st.labels = &lc
		st.addCol(id)
		return nil
	case l.Column != "":
		t, ok := present[l.Column]
		if !ok {
			return fmt.Errorf("label column %q is not in the scored output (pass it through in the score step)", l.Column)
		}
		if !t.Numeric() && t != dataset.Bool {
			return fmt.Errorf("label column %q is %s, need a number or a boolean", l.Column, t)
		}
		st.labelSource = "column " + l.Column
	case l.File != "":
		if _, ok := present[l.IDColumn]; !ok {
			return fmt.Errorf("ID column %q is not in the scored output (pass it through in the score step)", l.IDColumn)
		}
		byID, err := readLabelsFile(ctx, l)
		if err != nil {
			return err
		}
		st.labelByID = byID
		st.labelSource = fmt.Sprintf("file %s joined on %s", l.File, l.IDColumn)
	default:
		return nil
	}
	st.labels = l
	if l.Column != "" {
		st.addCol(l.Column)
	} else {
		st.addCol(l.IDColumn)
	}
	return nil
}

func (st *stream) addCol(name string) {
	if _, ok := st.index[name]; !ok {
		st.index[name] = len(st.cols)
		st.cols = append(st.cols, name)
	}
}

func (st *stream) columns() []string { return st.cols }

// add accumulates one batch.
func (st *stream) add(rec arrow.Record) error {
	col := func(name string) arrow.Array { return rec.Column(st.index[name]) }
	n := int(rec.NumRows())
	pc, ok := col(st.colNames.Prediction).(*array.Float64)
	if !ok {
		return fmt.Errorf("column %q is %s, not double", st.colNames.Prediction, col(st.colNames.Prediction).DataType())
	}
	preds := pc.Float64Values()
	var pvalid []bool
	if pc.NullN() > 0 {
		pvalid = make([]bool, n)
		for i := range pvalid {
			pvalid[i] = pc.IsValid(i)
		}
	}
	for i, p := range preds {
		if (pvalid == nil || pvalid[i]) && !math.IsNaN(p) {
			st.predSum += p
			st.predN++
		}
	}
	if st.pred != nil {
		st.pred.Add(preds, pvalid)
	}
	st.countModels(rec, n)
	for _, f := range st.features {
		q := st.quality[f.Name]
		if q.Missing {
			continue
		}
		c := col(f.Name)
		q.Rows += int64(n)
		switch c := c.(type) {
		case *array.String, *array.Boolean:
			vals, valid := stringValues(c)
			for _, ok := range valid {
				if !ok {
					q.Nulls++
				}
			}
			if acc := st.cat[f.Name]; acc != nil {
				acc.Add(vals, valid)
			}
		default:
			vals, valid := numericValues(c)
			lo, hi := math.Inf(-1), math.Inf(1)
			if q.Min != nil {
				lo, hi = *q.Min, *q.Max
			}
			for i, v := range vals {
				if (valid != nil && !valid[i]) || math.IsNaN(v) {
					q.Nulls++
					continue
				}
				if v < lo || v > hi {
					q.OutOfRange++
				}
			}
			if acc := st.num[f.Name]; acc != nil {
				acc.Add(vals, valid)
			}
		}
	}
	if st.labels != nil {
		st.addLabels(rec, col, preds, pvalid)
	}
	return nil
}

func (st *stream) countModels(rec arrow.Record, n int) {
	name := ""
	var mc *array.String
	if i, ok := st.index[st.colNames.Model]; ok && st.colNames.Model != "" {
		mc, _ = rec.Column(i).(*array.String)
	}
	var vc *array.Int64
	if i, ok := st.index[st.colNames.Version]; ok && st.colNames.Version != "" {
		vc, _ = rec.Column(i).(*array.Int64)
	}
	if mc == nil && vc == nil {
		st.models[modelKey{}] += int64(n)
		return
	}
	// Scored parts hold one model version each; count runs of equal values.
	start := 0
	key := func(i int) modelKey {
		k := modelKey{}
		if mc != nil && mc.IsValid(i) {
			k.name = mc.Value(i)
		}
		if vc != nil && vc.IsValid(i) {
			k.version = vc.Value(i)
		}
		return k
	}
	for i := 1; i <= n; i++ {
		if i == n || key(i) != key(start) {
			st.models[key(start)] += int64(i - start)
			start = i
		}
	}
	_ = name
}

func (st *stream) addLabels(rec arrow.Record, col func(string) arrow.Array, preds []float64, pvalid []bool) {
	if st.labels.Column != "" {
		vals, valid := labelValues(col(st.labels.Column))
		for i, y := range vals {
			if (valid != nil && !valid[i]) || math.IsNaN(y) || (pvalid != nil && !pvalid[i]) || math.IsNaN(preds[i]) {
				continue
			}
			st.labelVals = append(st.labelVals, y)
			st.labelPreds = append(st.labelPreds, preds[i])
		}
		return
	}
	ids, valid := stringValues(col(st.labels.IDColumn))
	for i, id := range ids {
		if !valid[i] || (pvalid != nil && !pvalid[i]) || math.IsNaN(preds[i]) {
			continue
		}
		if y, ok := st.labelByID[id]; ok {
			st.labelVals = append(st.labelVals, y)
			st.labelPreds = append(st.labelPreds, preds[i])
		}
	}
}

// inRange returns the rows of rec whose time is in [from, to): rec itself
// (retained) when all are, nil when none is, else a copy of those rows.
func (st *stream) inRange(rec arrow.Record) (arrow.Record, error) {
	if st.from.IsZero() && st.to.IsZero() {
		rec.Retain()
		return rec, nil
	}
	tc, ok := rec.Column(st.index[st.colNames.Time]).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("time column %q is not int64", st.colNames.Time)
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !st.from.IsZero() {
		lo = st.from.UnixMilli()
	}
	if !st.to.IsZero() {
		hi = st.to.UnixMilli()
	}
	keep := make([]int, 0, tc.Len())
	for i, t := range tc.Int64Values() {
		if tc.IsValid(i) && t >= lo && t < hi {
			keep = append(keep, i)
		}
	}
	switch len(keep) {
	case 0:
		return nil, nil
	case tc.Len():
		rec.Retain()
		return rec, nil
	}
	return dataset.Take(rec, keep)
}

// labelValues reads a label column as numbers (booleans as 1 and 0).
func labelValues(c arrow.Array) ([]float64, []bool) {
	if b, ok := c.(*array.Boolean); ok {
		vals := make([]float64, b.Len())
		valid := make([]bool, b.Len())
		for i := range vals {
			valid[i] = b.IsValid(i)
			if valid[i] && b.Value(i) {
				vals[i] = 1
			}
		}
		return vals, valid
	}
	return numericValues(c)
}

// stringValues reads a String or Boolean column as strings with validity.
func stringValues(c arrow.Array) ([]string, []bool) {
	n := c.Len()
	vals := make([]string, n)
	valid := make([]bool, n)
	switch c := c.(type) {
	case *array.String:
		for i := range vals {
			if valid[i] = c.IsValid(i); valid[i] {
				vals[i] = c.Value(i)
			}
		}
	case *array.Boolean:
		for i := range vals {
			if valid[i] = c.IsValid(i); valid[i] {
				vals[i] = strconv.FormatBool(c.Value(i))
			}
		}
	case *array.Int64:
		for i := range vals {
			if valid[i] = c.IsValid(i); valid[i] {
				vals[i] = strconv.FormatInt(c.Value(i), 10)
			}
		}
	case *array.Float64:
		for i := range vals {
			if valid[i] = c.IsValid(i); valid[i] {
				vals[i] = strconv.FormatFloat(c.Value(i), 'g', -1, 64)
			}
		}
	}
	return vals, valid
}

// finish turns the accumulators into the summary.
func (st *stream) finish(s *Summary, in Input, man model.Manifest, dopts drift.Options, threshold float64) {
	// Models, by rows descending.
	for k, n := range st.models {
		name, version := k.name, k.version
		switch {
		case name == "" && version == 0:
			name, version = in.ModelName, in.ModelVersion
			s.Warnings = append(s.Warnings, "the scored rows carry no model and model_version columns; they are attributed to the reference model")
		case name == "":
			name = in.ModelName // the rows name the version only (request logs)
		}
		s.Models = append(s.Models, ModelRows{Name: name, Version: version, Rows: n})
	}
	sort.Slice(s.Models, func(i, j int) bool {
		a, b := s.Models[i], s.Models[j]
		if a.Rows != b.Rows {
			return a.Rows > b.Rows
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	if len(s.Models) > 1 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the rows were scored by %d model versions; the reference is %s", len(s.Models), s.Reference.Model))
	}

	// Quality and drift per feature, in input order.
	var results []drift.ColumnResult
	for _, f := range st.features {
		q := st.quality[f.Name]
		if q.Rows > 0 {
			q.NullRate = float64(q.Nulls) / float64(q.Rows)
		}
		if nonNull := q.Rows - q.Nulls; nonNull > 0 && q.OutOfRange > 0 {
			q.OutOfRangeRate = float64(q.OutOfRange) / float64(nonNull)
		}
		var res *drift.ColumnResult
		switch {
		case st.num[f.Name] != nil:
			r := st.num[f.Name].Result(dopts)
			res = &r
		case st.cat[f.Name] != nil:
			r := st.cat[f.Name].Result(dopts)
			res = &r
			q.Unseen, q.UnseenExamples = r.Unseen, r.UnseenExamples
			if len(q.UnseenExamples) > 10 {
				q.UnseenExamples = q.UnseenExamples[:10]
			}
			if nonNull := q.Rows - q.Nulls; nonNull > 0 && q.Unseen > 0 {
				q.UnseenRate = float64(q.Unseen) / float64(nonNull)
			}
		}
		s.Quality = append(s.Quality, *q)
		if res == nil {
			continue
		}
		if res.Note != "" {
			// No verdict is possible (e.g. every current value is null):
			// the column is left out of the drift table and the share.
			s.Warnings = append(s.Warnings, fmt.Sprintf("feature %s: drift not measured (%s)", f.Name, res.Note))
			continue
		}
		results = append(results, *res)
		s.Drift.Columns = append(s.Drift.Columns, ColumnDrift{
			Column: f.Name, Kind: res.Kind, Test: testOf(*res), PSI: res.PSI,
			ReferenceRows: res.ReferenceRows, Rows: res.Rows, Histogram: histogramOf(res.Histogram),
		})
	}
	s.Drift.ShareThreshold = dopts.DatasetShare
	if s.Drift.ShareThreshold <= 0 {
		s.Drift.ShareThreshold = drift.DefaultOptions().DatasetShare
	}
	s.Drift.DriftedColumns, s.Drift.Share, s.Drift.Drifted = drift.DatasetVerdict(results, dopts)

	// Predictions.
	s.Prediction = PredictionDrift{Column: in.Columns.Prediction, Output: man.Output, ReferenceMean: st.ref.predMean, ReferenceRows: st.ref.predRows}
	if st.predN > 0 {
		s.Prediction.Mean = st.predSum / float64(st.predN)
	}
	s.Prediction.Rows = st.predN
	if st.pred != nil {
		r := st.pred.Result(dopts)
		s.Prediction.Test, s.Prediction.PSI = testOf(r), r.PSI
		s.Prediction.Histogram = histogramOf(r.Histogram)
	}

	// Performance.
	if st.labels != nil {
		p := &Performance{LabelSource: st.labelSource, LabeledRows: int64(len(st.labelVals)), Task: man.Task, ReferenceMetrics: in.ReferenceMetrics}
		if s.Rows > 0 {
			p.Coverage = float64(p.LabeledRows) / float64(s.Rows)
		}
		p.Metrics = map[string]float64{}
		if len(st.labelVals) > 0 {
			switch man.Task {
			case model.TaskMulticlass:
				p.Metrics = multiclassPerformance(st.labelVals, st.labelPreds, len(man.Classes), &s.Warnings)
			case model.TaskRegression:
				p.Metrics = metrics.Regression(st.labelVals, st.labelPreds)
			default:
				p.Threshold = threshold
				p.Metrics = metrics.Binary(st.labelVals, st.labelPreds, threshold)
			}
			delete(p.Metrics, "rows")
			for k, v := range p.Metrics {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					delete(p.Metrics, k)
					s.Warnings = append(s.Warnings, fmt.Sprintf("metric %s is undefined on the %d labelled rows (e.g. only one class)", k, p.LabeledRows))
				}
			}
		} else {
			s.Warnings = append(s.Warnings, "labels were configured but no scored row had one: no performance metrics")
		}
		s.Performance = p
	}
	sort.Strings(s.Warnings)
}

// testOf maps a drift result onto the summary's test.
func testOf(r drift.ColumnResult) Test {
	t := Test{Method: string(r.Method), Statistic: r.Statistic, Threshold: r.Threshold, Drifted: r.Drifted}
	if r.PValue != nil {
		p := *r.PValue
		t.PValue = &p
	}
	return t
}

func histogramOf(h drift.Histogram) Histogram {
	return Histogram{Edges: h.Edges, Labels: h.Labels, Reference: h.Reference, Current: h.Current}
}

// readLabelsFile reads a labels file (CSV, JSON Lines or Parquet, by
// extension) into a map from ID to label. IDs are compared as text (the
// scored output's ID column formatted the same way); a duplicated ID keeps
// its last label.
func readLabelsFile(ctx context.Context, l *Labels) (map[string]float64, error) {
	path := l.File
	pq := path
	lower := strings.ToLower(path)
	if !strings.HasSuffix(lower, ".parquet") && !strings.HasSuffix(lower, ".pq") {
		dir, err := os.MkdirTemp("", "kiln-labels-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		pq = filepath.Join(dir, "labels.parquet")
		// IDs are read as text whatever they look like, so that "007"
		// stays "007".
		types := map[string]dataset.Type{l.FileID: dataset.String}
		switch {
		case strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz"):
			_, err = dataset.CSVToParquet(ctx, path, pq, dataset.CSVOptions{Types: types})
		case strings.HasSuffix(lower, ".jsonl") || strings.HasSuffix(lower, ".ndjson") || strings.HasSuffix(lower, ".jsonl.gz"):
			_, err = dataset.JSONLToParquet(ctx, path, pq, dataset.JSONLOptions{Types: types})
		default:
			return nil, fmt.Errorf("labels %s: unknown format: use .csv, .jsonl or .parquet", path)
		}
		if err != nil {
			return nil, fmt.Errorf("reading labels %s: %w", path, err)
		}
	}
	r, err := dataset.OpenParquet(pq)
	if err != nil {
		return nil, fmt.Errorf("reading labels %s: %w", path, err)
	}
	defer r.Close()
	rec, err := r.ReadAll(ctx, []string{l.FileID, l.FileLabel})
	if err != nil {
		return nil, fmt.Errorf("reading labels %s: %w", path, err)
	}
	defer rec.Release()
	ids, idValid := stringValues(rec.Column(0))
	vals, valid := labelValues(rec.Column(1))
	out := make(map[string]float64, len(ids))
	for i, id := range ids {
		if !idValid[i] || (valid != nil && !valid[i]) || math.IsNaN(vals[i]) {
			continue
		}
		out[id] = vals[i]
	}
	return out, nil
}

// finite replaces the summary's NaN and infinite figures, which JSON cannot
// hold (a statistic over no rows, a metric of one class): a float becomes 0
// and an optional one (a p-value) is left out, and a warning names each.
func finite(s *Summary) {
	var bad []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Float64:
			if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				bad = append(bad, path)
				v.SetFloat(0)
			}
		case reflect.Pointer:
			if v.IsNil() {
				return
			}
			if e := v.Elem(); e.Kind() == reflect.Float64 {
				if f := e.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
					bad = append(bad, path)
					v.Set(reflect.Zero(v.Type()))
				}
				return
			}
			walk(v.Elem(), path)
		case reflect.Struct:
			t := v.Type()
			for i := 0; i < v.NumField(); i++ {
				name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
				if name == "" {
					walk(v.Field(i), path) // embedded
					continue
				}
				walk(v.Field(i), path+"/"+name)
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), fmt.Sprintf("%s/%d", path, i))
			}
		case reflect.Map:
			if v.Type().Elem().Kind() != reflect.Float64 {
				return
			}
			for _, k := range v.MapKeys() {
				if f := v.MapIndex(k).Float(); math.IsNaN(f) || math.IsInf(f, 0) {
					bad = append(bad, path+"/"+k.String())
					v.SetMapIndex(k, reflect.Value{})
				}
			}
		}
	}
	walk(reflect.ValueOf(s).Elem(), "")
	sort.Strings(bad)
	for _, p := range bad {
		s.Warnings = append(s.Warnings, fmt.Sprintf("figure %s is undefined (no data, or a degenerate distribution) and is shown as 0 or left out", p))
	}
}

// multiclassPerformance computes a multiclass model's metrics over joined
// labels from the predicted classes the request log holds (class indexes;
// labels are pushed as class indexes too): accuracy and the macro and
// weighted F1, precision and recall; the log holds no probabilities, so no
// log loss or AUC. Rows whose label or prediction is not a class index of
// the model (labels pushed for another version's classes) are left out,
// with a warning.
func multiclassPerformance(labels, preds []float64, k int, warnings *[]string) map[string]float64 {
	valid := func(v float64) bool { return v == math.Trunc(v) && v >= 0 && v < float64(k) }
	var ls, ps []float64
	for i, l := range labels {
		if valid(l) && valid(preds[i]) {
			ls, ps = append(ls, l), append(ps, preds[i])
		}
	}
	if skipped := len(labels) - len(ls); skipped > 0 {
		*warnings = append(*warnings, fmt.Sprintf("%d labelled rows left out of the metrics: their label or prediction is not one of the model's %d classes", skipped, k))
	}
	if len(ls) == 0 {
		return map[string]float64{}
	}
	return metrics.MulticlassPredicted(ls, ps, k)
}
