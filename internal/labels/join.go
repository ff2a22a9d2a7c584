package labels

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// JoinInput says what to join.
type JoinInput struct {
	// RequestLogs are the request log files to consider, e.g.
	// serving.RequestLogFiles over the join window. Files without the
	// prediction ID column (written before the server logged IDs) are
	// skipped and listed in JoinResult.SkippedLogs.
	RequestLogs []string
	// LabelFiles are normalised label batch files (see Push), in batch
	// order, oldest first (as registry.LabelBatches lists them).
	LabelFiles []string
	// Earlier are label batch files counted before (by an earlier call):
	// they are not counted again, and a label of LabelFiles whose ID one of
	// them labelled counts as Duplicate, so that over counts taken batch by
	// batch each labelled ID is counted once outside Duplicate, as in one
	// Join over every batch (a relabelled ID is one labelled prediction).
	// Only their ID column is read.
	Earlier []string
	// Window is how long after a prediction its label may come (default
	// DefaultWindow): a label joins a prediction when label time −
	// prediction time is within [0, Window].
	Window time.Duration
	// From and To, when set, restrict the returned pairs to predictions made
	// in [From, To) (the counts cover every label either way).
	From, To time.Time
}

// Counts say what became of every label given to Join. Each label is
// counted once: Total = Joined + Unknown + Duplicate + OutsideWindow +
// BeforePrediction. (The fields are those of monitor.LabelCounts, so one
// converts to the other.)
type Counts struct {
	// Total labels read, over all label files.
	Total int64 `json:"total"`
	// Joined labels, one per labelled prediction.
	Joined int64 `json:"joined"`
	// Unknown labels carry an ID no request log has.
	Unknown int64 `json:"unknown"`
	// Duplicate counts the extra labels of IDs labelled more than once:
	// only each ID's latest label is joined (see Join).
	Duplicate int64 `json:"duplicate"`
	// OutsideWindow labels came more than the window after their
	// prediction.
	OutsideWindow int64 `json:"outside_window"`
	// BeforePrediction labels are dated before their prediction.
	BeforePrediction int64 `json:"before_prediction"`
}

// Examples are a few prediction IDs (at most MaxExamples, in label order)
// of each kind of label that did not join.
type Examples struct {
	Unknown          []string `json:"unknown,omitempty"`
	Duplicate        []string `json:"duplicate,omitempty"`
	OutsideWindow    []string `json:"outside_window,omitempty"`
	BeforePrediction []string `json:"before_prediction,omitempty"`
}

// Pair is a prediction joined to its label.
type Pair struct {
	PredictionID string    `json:"prediction_id"`
	Prediction   float64   `json:"prediction"`
	Version      int64     `json:"version"`
	PredictedAt  time.Time `json:"predicted_at"`
	// Variant answered the prediction ("stable", "canary", an
	// experiment's variant); empty in logs without the column.
	Variant    string    `json:"variant,omitempty"`
	Label      float64   `json:"label"`
	LabelledAt time.Time `json:"labelled_at"`
}

// JoinResult is what Join found.
type JoinResult struct {
	// Pairs are the joined predictions made in [From, To), by prediction
	// time then ID.
	Pairs    []Pair   `json:"pairs"`
	Counts   Counts   `json:"counts"`
	Examples Examples `json:"examples"`
	// Predictions is the number of request log rows read; NoID those of
	// them without a prediction ID.
	Predictions int64 `json:"predictions"`
	NoID        int64 `json:"no_id"`
	// RepeatedIDs counts labelled IDs that several predictions carry (a
	// client reusing IDs, a retried request): each label joins the latest
	// of them made at or before it.
	RepeatedIDs int64 `json:"repeated_ids"`
	// SkippedLogs are the request log files without a prediction ID
	// column, and SkippedRows their rows, which no label can join.
	SkippedLogs []string `json:"skipped_logs,omitempty"`
	SkippedRows int64    `json:"skipped_rows"`
}

// LabelsByID returns the labels of the returned pairs by prediction ID, as
// report.Labels.ByID takes them.
func (r JoinResult) LabelsByID() map[string]float64 {
	m := make(map[string]float64, len(r.Pairs))
	for _, p := range r.Pairs {
		m[p.PredictionID] = p.Label
	}
	return m
}

// labelEntry is one labelled ID and the prediction it matches so far.
type labelEntry struct {
	id      string
	label   float64
	labelMs int64

	seen    int32 // prediction rows with this ID
	matched bool  // a prediction at or before the label was seen
	predMs  int64
	pred    float64
	version int64
	variant string
	file    int32 // request log index and row of the matched prediction
	row     int64
	// keep marks a joined label whose prediction is in [From, To).
	keep bool
}

// joiner holds the label map while predictions stream past it.
type joiner struct {
	in      JoinInput
	entries []labelEntry
	index   map[string]int32
	// earlier holds the IDs of JoinInput.Earlier.
	earlier map[string]struct{}
	res     JoinResult
}

// Join joins label batches to predictions by prediction ID.
//
// Labels are read first, into a map by ID; then the request logs stream
// past it, reading only the ID, prediction, version and time columns in
// batches, so memory grows with the number of labels (plus the pairs
// returned), not with the number of predictions.
//
// An ID labelled more than once keeps its latest label by label time; of
// labels with the same time the one from the later file of LabelFiles
// wins, and within a file the later row. The others count as Duplicate.
// Each remaining label joins the latest prediction with its ID made at or
// before the label (normally there is one prediction per ID); it counts as
// Joined when label time − prediction time ≤ Window, else OutsideWindow.
// A label whose ID only has predictions after it counts as
// BeforePrediction, one whose ID has none as Unknown.
func Join(ctx context.Context, in JoinInput) (JoinResult, error) {
	j, err := join(ctx, in)
	if err != nil {
		return JoinResult{}, err
	}
	return j.res, nil
}

func join(ctx context.Context, in JoinInput) (*joiner, error) {
	if in.Window == 0 {
		in.Window = DefaultWindow
	}
	if in.Window < 0 {
		return nil, fmt.Errorf("join labels: negative window %s", in.Window)
	}
	if !in.From.IsZero() && !in.To.IsZero() && !in.From.Before(in.To) {
		return nil, fmt.Errorf("join labels: empty range [%s, %s)", in.From.Format(time.RFC3339), in.To.Format(time.RFC3339))
	}
	j := &joiner{in: in, index: map[string]int32{}}
	if len(in.Earlier) > 0 {
		j.earlier = map[string]struct{}{}
		for _, f := range in.Earlier {
			if err := j.readEarlier(ctx, f); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range in.LabelFiles {
		if err := j.readLabels(ctx, f); err != nil {
			return nil, err
		}
	}
	for i, f := range in.RequestLogs {
		if err := j.scanLog(ctx, i, f); err != nil {
			return nil, err
		}
	}
	j.classify()
	return j, nil
}

// readLabels adds a label batch file to the map.
func (j *joiner) readLabels(ctx context.Context, path string) error {
	return scanBatch(ctx, path, batchSchema.Names(), func(rec arrow.Record) error {
		ids := rec.Column(0).(*array.String)
		labels := rec.Column(1).(*array.Float64)
		times := rec.Column(2).(*array.Int64)
		for i := 0; i < ids.Len(); i++ {
			if ids.IsNull(i) || labels.IsNull(i) || times.IsNull(i) {
				return fmt.Errorf("label batch %s: a null: not a normalised batch (see Push)", path)
			}
			j.res.Counts.Total++
			id := ids.Value(i)
			if _, ok := j.earlier[id]; ok {
				j.res.Counts.Duplicate++
				if len(j.res.Examples.Duplicate) < MaxExamples && !slices.Contains(j.res.Examples.Duplicate, id) {
					j.res.Examples.Duplicate = append(j.res.Examples.Duplicate, strings.Clone(id))
				}
				continue
			}
			e := labelEntry{label: labels.Value(i), labelMs: times.Value(i)}
			k, ok := j.index[id]
			if !ok {
				e.id = strings.Clone(id)
				j.index[e.id] = int32(len(j.entries))
				j.entries = append(j.entries, e)
				continue
			}
			j.res.Counts.Duplicate++
			old := &j.entries[k]
			if len(j.res.Examples.Duplicate) < MaxExamples && !slices.Contains(j.res.Examples.Duplicate, old.id) {
				j.res.Examples.Duplicate = append(j.res.Examples.Duplicate, old.id)
			}
			// Later files and rows come later: equal times go to the newcomer.
			if e.labelMs >= old.labelMs {
				old.label, old.labelMs = e.label, e.labelMs
			}
		}
		return nil
	})
}

// readEarlier adds the IDs of a label batch file counted before.
func (j *joiner) readEarlier(ctx context.Context, path string) error {
	return scanBatch(ctx, path, []string{ColumnID}, func(rec arrow.Record) error {
		ids := rec.Column(0).(*array.String)
		for i := 0; i < ids.Len(); i++ {
			if _, ok := j.earlier[ids.Value(i)]; !ok {
				j.earlier[strings.Clone(ids.Value(i))] = struct{}{}
			}
		}
		return nil
	})
}

// TimeRange returns the earliest and latest label times of label batch
// files (see Push), e.g. to know which request logs their predictions can
// be in: those made from the earliest label time − the window on. ok is
// false when the files hold no label.
func TimeRange(ctx context.Context, files []string) (first, last time.Time, ok bool, err error) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, f := range files {
		err := scanBatch(ctx, f, []string{ColumnTime}, func(rec arrow.Record) error {
			times := rec.Column(0).(*array.Int64)
			for i := 0; i < times.Len(); i++ {
				if times.IsNull(i) {
					return fmt.Errorf("label batch %s: a null label time: not a normalised batch (see Push)", f)
				}
				lo, hi = min(lo, times.Value(i)), max(hi, times.Value(i))
			}
			return nil
		})
		if err != nil {
			return time.Time{}, time.Time{}, false, err
		}
	}
	if lo > hi {
		return time.Time{}, time.Time{}, false, nil
	}
	return time.UnixMilli(lo).UTC(), time.UnixMilli(hi).UTC(), true, nil
}

// scanBatch streams columns of a normalised label batch file.
func scanBatch(ctx context.Context, path string, columns []string, fn func(arrow.Record) error) error {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return fmt.Errorf("label batch %s: %w", path, err)
	}
	defer r.Close()
	if err := checkTypes(r.Schema(), batchSchema.Fields); err != nil {
		return fmt.Errorf("label batch %s: %w", path, err)
	}
	for g := 0; g < r.NumRowGroups(); g++ {
		if err := r.ScanRowGroup(ctx, g, columns, batchRows, fn); err != nil {
			return err
		}
	}
	return nil
}

// checkTypes checks that schema has the wanted fields with their types.
func checkTypes(schema dataset.Schema, want []dataset.Field) error {
	for _, f := range want {
		i := schema.Index(f.Name)
		if i < 0 {
			return fmt.Errorf("no column %q", f.Name)
		}
		if t := schema.Fields[i].Type; t != f.Type {
			return fmt.Errorf("column %q is %s, want %s", f.Name, t, f.Type)
		}
	}
	return nil
}

// logFields are the request log columns Join reads, in this order.
var logFields = []dataset.Field{
	{Name: LogPredictionID, Type: dataset.String},
	{Name: LogPrediction, Type: dataset.Float64},
	{Name: LogVersion, Type: dataset.Int64},
	{Name: LogTimeMs, Type: dataset.Int64},
}

// scanLog streams one request log file past the label map.
func (j *joiner) scanLog(ctx context.Context, fileIdx int, path string) error {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return fmt.Errorf("request log %s: %w", path, err)
	}
	defer r.Close()
	schema := r.Schema()
	if schema.Index(LogPredictionID) < 0 && !slices.Contains(r.Unsupported(), LogPredictionID) {
		j.res.SkippedLogs = append(j.res.SkippedLogs, path)
		j.res.SkippedRows += r.NumRows()
		return nil
	}
	if err := checkTypes(schema, logFields); err != nil {
		return fmt.Errorf("request log %s: %w", path, err)
	}
	names := make([]string, len(logFields))
	for i, f := range logFields {
		names[i] = f.Name
	}
	withVariant := checkTypes(schema, []dataset.Field{{Name: LogVariant, Type: dataset.String}}) == nil
	if withVariant {
		names = append(names, LogVariant)
	}
	var row int64
	for g := 0; g < r.NumRowGroups(); g++ {
		err := r.ScanRowGroup(ctx, g, names, batchRows, func(rec arrow.Record) error {
			ids := rec.Column(0).(*array.String)
			preds := rec.Column(1).(*array.Float64)
			versions := rec.Column(2).(*array.Int64)
			times := rec.Column(3).(*array.Int64)
			var variants *array.String
			if withVariant {
				variants = rec.Column(4).(*array.String)
			}
			n := ids.Len()
			j.res.Predictions += int64(n)
			for i := 0; i < n; i, row = i+1, row+1 {
				if ids.IsNull(i) {
					j.res.NoID++
					continue
				}
				k, ok := j.index[ids.Value(i)]
				if !ok {
					continue
				}
				if times.IsNull(i) {
					return fmt.Errorf("request log %s: row %d has an ID but no time", path, row+1)
				}
				e := &j.entries[k]
				e.seen++
				t := times.Value(i)
				// The latest prediction at or before the label; the first
				// seen among equal times.
				if t <= e.labelMs && (!e.matched || t > e.predMs) {
					e.matched, e.predMs, e.version = true, t, versions.Value(i)
					e.pred = preds.Value(i)
					if preds.IsNull(i) {
						e.pred = math.NaN()
					}
					e.file, e.row = int32(fileIdx), row
					if variants != nil && !variants.IsNull(i) {
						e.variant = strings.Clone(variants.Value(i)) // Value aliases a buffer the next batch reuses
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// classify counts every label and collects the pairs in range.
func (j *joiner) classify() {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !j.in.From.IsZero() {
		lo = j.in.From.UnixMilli()
	}
	if !j.in.To.IsZero() {
		hi = j.in.To.UnixMilli()
	}
	window := j.in.Window.Milliseconds()
	c, ex := &j.res.Counts, &j.res.Examples
	note := func(list *[]string, id string) {
		if len(*list) < MaxExamples {
			*list = append(*list, id)
		}
	}
	for i := range j.entries {
		e := &j.entries[i]
		if e.seen > 1 {
			j.res.RepeatedIDs++
		}
		switch {
		case e.seen == 0:
			c.Unknown++
			note(&ex.Unknown, e.id)
		case !e.matched:
			c.BeforePrediction++
			note(&ex.BeforePrediction, e.id)
		case e.labelMs-e.predMs > window:
			c.OutsideWindow++
			note(&ex.OutsideWindow, e.id)
		default:
			c.Joined++
			if e.predMs >= lo && e.predMs < hi {
				e.keep = true
				j.res.Pairs = append(j.res.Pairs, Pair{
					PredictionID: e.id, Prediction: e.pred, Version: e.version, Variant: e.variant, PredictedAt: time.UnixMilli(e.predMs).UTC(),
					Label: e.label, LabelledAt: time.UnixMilli(e.labelMs).UTC(),
				})
			}
		}
	}
	slices.SortFunc(j.res.Pairs, func(a, b Pair) int {
		if c := a.PredictedAt.Compare(b.PredictedAt); c != 0 {
			return c
		}
		return strings.Compare(a.PredictionID, b.PredictionID)
	})
}
