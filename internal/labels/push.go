package labels

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
)

// PushInput says what to push.
type PushInput struct {
	// Model is the registered model the labels are for.
	Model string
	// File is the labels file: CSV, JSON Lines or Parquet, by extension (see
	// FormatOf).
	File string
	// Source names the file in the registry; default File. Poll sets it to
	// the object URL of a fetched object.
	Source string
	// IDColumn and LabelColumn name the prediction ID and label columns
	// (default "id" and "label"); both must exist.
	IDColumn, LabelColumn string
	// TimeColumn names the label's event-time column. Empty means "time"
	// if the file has it; a name given here must exist.
	TimeColumn string
	// PushedBy is who pushes, for the record.
	PushedBy string
	// At is the push time (default now), the time of rows without one.
	At time.Time
	// Classes, for a multiclass model, are its classes in index order: a
	// label is then a class name (text, or a number or boolean spelled as
	// the class is) and is stored as the class's index, as the model
	// server logs its predictions; a label naming no class is rejected as
	// invalid. Nil for binary and regression models (numeric labels).
	Classes []string
}

// Rejection counts the rows rejected for one reason, with a few examples
// ("line 7 (id 0042): label "x" is not a finite number or a boolean").
type Rejection struct {
	Reason   string   `json:"reason"`
	Count    int64    `json:"count"`
	Examples []string `json:"examples"`
}

// PushReport says what Push did with a file's rows.
type PushReport struct {
	Model  string `json:"model"`
	File   string `json:"file"`
	Format string `json:"format"`
	// Rows is the number of data rows read; Accepted + Rejected = Rows.
	Rows     int64 `json:"rows"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// Rejections break Rejected down by reason, in a fixed order: missing
	// id, invalid id, missing label, invalid label, invalid time.
	Rejections []Rejection `json:"rejections,omitempty"`
	// PushTime counts the accepted rows without a time, which took the
	// push time.
	PushTime int64 `json:"push_time"`
	// SHA256 is the hex SHA-256 of the normalised file and SourceSHA256
	// that of the pushed file.
	SHA256       string `json:"sha256"`
	SourceSHA256 string `json:"source_sha256"`
	// AlreadyPushed is true when the model already had this batch (the same
	// normalised content, or the same file read with the same columns):
	// nothing new was stored, and the batch returned is the earlier one.
	AlreadyPushed bool `json:"already_pushed"`
}

// String summarises the report in one line.
func (r PushReport) String() string {
	s := fmt.Sprintf("%s: %d rows, %d accepted, %d rejected", r.File, r.Rows, r.Accepted, r.Rejected)
	var parts []string
	for _, x := range r.Rejections {
		parts = append(parts, fmt.Sprintf("%d %s", x.Count, x.Reason))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if r.AlreadyPushed {
		s += "; already pushed"
	}
	return s
}

// batchSchema is the schema of normalised label batch files.
var batchSchema = dataset.Schema{Fields: []dataset.Field{
	{Name: ColumnID, Type: dataset.String},
	{Name: ColumnLabel, Type: dataset.Float64},
	{Name: ColumnTime, Type: dataset.Int64},
}}

// resolveColumns applies the defaults of PushInput's column names.
func resolveColumns(id, label, tm string) (columns, registry.LabelColumns) {
	c := columns{id: id, label: label, time: tm, timeRequired: tm != ""}
	if c.id == "" {
		c.id = DefaultIDColumn
	}
	if c.label == "" {
		c.label = DefaultLabelColumn
	}
	if c.time == "" {
		c.time = DefaultTimeColumn
	}
	return c, registry.LabelColumns{ID: c.id, Label: c.label, Time: c.time}
}

// Push reads a labels file, normalises it to a Parquet file of (id, label,
// time) — IDs as text, labels as float64 (true is 1), times as Unix
// milliseconds (a row without a time takes the push time) — publishes it
// under the store at labels/<model>/<sha256>.parquet and records the batch
// in the registry.
//
// Rows with a null or empty ID, a null or invalid label or an invalid time
// are not stored: the report counts them by reason, with examples. A file
// with no usable row is an error naming the file, the first rejected row's
// line (CSV, JSON Lines) or row (Parquet) and its column; so is a file that
// cannot be read as a whole (a missing ID or label column, a malformed
// line).
//
// Pushing is idempotent: when the model already has a batch with the same
// normalised content, or one pushed from the same file bytes with the same
// column names (whose rows without a time took the first push's time),
// Push stores nothing and returns that batch with report.AlreadyPushed.
func Push(ctx context.Context, store *artifact.Store, reg *registry.Registry, in PushInput) (registry.LabelBatch, PushReport, error) {
	rep := PushReport{Model: in.Model, File: in.File}
	if store == nil || reg == nil {
		return registry.LabelBatch{}, rep, errors.New("push labels: no artifact store or registry")
	}
	if in.Model == "" || in.File == "" {
		return registry.LabelBatch{}, rep, errors.New("push labels: a model and a file are required")
	}
	format, err := FormatOf(in.File)
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	rep.Format = format
	cols, regCols := resolveColumns(in.IDColumn, in.LabelColumn, in.TimeColumn)
	at := in.At
	if at.IsZero() {
		at = time.Now()
	}
	// Millisecond precision, so that the registry's push time is the time
	// the batch gives rows without one.
	at = time.UnixMilli(at.UnixMilli()).UTC()
	source := in.Source
	if source == "" {
		source = in.File
	}
	// The model must exist before anything is stored for it.
	if _, err := reg.LabelBatches(ctx, in.Model, at.Add(time.Hour)); errors.Is(err, registry.ErrNotFound) {
		return registry.LabelBatch{}, rep, fmt.Errorf("push labels: model %s: %w", in.Model, registry.ErrNotFound)
	} else if err != nil {
		return registry.LabelBatch{}, rep, fmt.Errorf("push labels for %s: %w", in.Model, err)
	}
	if rep.SourceSHA256, err = dataset.HashFile(in.File); err != nil {
		return registry.LabelBatch{}, rep, err
	}

	tmp, err := store.TempDir("labels")
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "labels.parquet")
	w, err := dataset.CreateParquet(out, batchSchema, dataset.WriterOptions{Required: batchSchema.Names()})
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	defer w.Abort()
	nb := newNormaliser(w, in.File, cols, at.UnixMilli())
	if len(in.Classes) > 0 {
		nb.classes = make(map[string]float64, len(in.Classes))
		for k, c := range in.Classes {
			nb.classes[c] = float64(k)
		}
		nb.classList = in.Classes
	}
	if err := readLabels(ctx, in.File, format, cols, nb.row); err != nil {
		return registry.LabelBatch{}, rep, err
	}
	if err := nb.flush(); err != nil {
		return registry.LabelBatch{}, rep, err
	}
	nb.fill(&rep)
	if rep.Rows == 0 {
		return registry.LabelBatch{}, rep, fmt.Errorf("%s: no data rows", in.File)
	}
	if rep.Accepted == 0 {
		return registry.LabelBatch{}, rep, fmt.Errorf("%s: column %s: %s; no usable labels: all %d rows rejected (%s)",
			nb.first.at, nb.first.column, nb.first.msg, rep.Rows, rejectionCounts(rep.Rejections))
	}
	info, err := w.Commit()
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	rep.SHA256 = info.SHA256

	found := func(b registry.LabelBatch) (registry.LabelBatch, PushReport, error) {
		rep.AlreadyPushed = true
		return b, rep, nil
	}
	if b, err := reg.LabelBatch(ctx, in.Model, rep.SHA256); err == nil {
		return found(b)
	} else if !errors.Is(err, registry.ErrNotFound) {
		return registry.LabelBatch{}, rep, err
	}
	if b, ok, err := reg.LabelBatchBySource(ctx, in.Model, rep.SourceSHA256, regCols); err != nil {
		return registry.LabelBatch{}, rep, err
	} else if ok {
		return found(b)
	}
	uri, err := store.Publish(ctx, out, BatchPath(in.Model, rep.SHA256))
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	b, created, err := reg.AddLabelBatch(ctx, registry.LabelBatch{
		Model: in.Model, SHA256: rep.SHA256, URI: uri, Rows: rep.Accepted, Rejected: rep.Rejected,
		Source: source, SourceSHA256: rep.SourceSHA256, Columns: regCols, PushedBy: in.PushedBy, PushedAt: at,
	})
	if err != nil {
		return registry.LabelBatch{}, rep, err
	}
	rep.AlreadyPushed = !created
	return b, rep, nil
}

// BatchPath is where a model's label batch is stored, relative to the
// artifact store's root.
func BatchPath(model, sha256 string) string {
	return "labels/" + model + "/" + sha256 + ".parquet"
}

func rejectionCounts(rs []Rejection) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d %s", r.Count, r.Reason))
	}
	return strings.Join(parts, ", ")
}

// normaliser validates rows and writes the accepted ones in batches.
type normaliser struct {
	w      *dataset.Writer
	file   string
	cols   columns
	pushMs int64

	ids    []string
	labels []float64
	times  []int64
	// classes maps a multiclass model's class names to their index (nil
	// for numeric labels); classList is their order, for messages.
	classes   map[string]float64
	classList []string

	rows, accepted, pushTime int64
	rejected                 map[string]*Rejection
	// first is the first rejection, for the error of a file without any
	// usable row.
	first struct{ at, column, msg string }
}

func newNormaliser(w *dataset.Writer, file string, cols columns, pushMs int64) *normaliser {
	return &normaliser{w: w, file: file, cols: cols, pushMs: pushMs, rejected: map[string]*Rejection{}}
}

func (n *normaliser) reject(reason, column, msg string, loc location, id string) {
	r := n.rejected[reason]
	if r == nil {
		r = &Rejection{Reason: reason}
		n.rejected[reason] = r
	}
	r.Count++
	if n.first.at == "" {
		n.first.at, n.first.column, n.first.msg = loc.at(n.file), column, msg
	}
	if len(r.Examples) < MaxExamples {
		ex := loc.String()
		if id != "" {
			ex += fmt.Sprintf(" (id %s)", id)
		}
		r.Examples = append(r.Examples, ex+": "+msg)
	}
}

// parseLabel turns a cell into a label: with classes, the index of the class
// it names (see classLabel); otherwise a number (see parseLabel).
func (n *normaliser) parseLabel(c cell) (float64, string, string) {
	if n.classes == nil {
		return parseLabel(c)
	}
	return classLabel(c, n.classes, n.classList)
}

// classLabel turns a cell into a class index: its text (trimmed), or a
// number or boolean as text ("3", "2.5", "true"), must be one of classes.
func classLabel(c cell, classes map[string]float64, list []string) (float64, string, string) {
	var s string
	switch c.kind {
	case cellNull:
		return 0, ReasonMissingLabel, "no label"
	case cellText:
		s = strings.TrimSpace(c.text)
	case cellNumber:
		s = strconv.FormatFloat(c.num, 'g', -1, 64)
	case cellInt:
		s = strconv.FormatInt(c.i, 10)
	case cellBool:
		s = strconv.FormatBool(c.b)
	default:
		return 0, ReasonInvalidLabel, fmt.Sprintf("label %s is not a class name", c.show())
	}
	if s == "" {
		return 0, ReasonMissingLabel, "empty label"
	}
	k, ok := classes[s]
	if !ok {
		shown := list
		if len(shown) > 10 {
			shown = shown[:10]
		}
		return 0, ReasonInvalidLabel, fmt.Sprintf("label %q is not one of the model's classes (%s)", s, strings.Join(shown, ", "))
	}
	return k, "", ""
}

func (n *normaliser) row(idc, labelc, tmc cell, loc location) error {
	n.rows++
	id, reason, msg := parseID(idc)
	if reason != "" {
		n.reject(reason, n.cols.id, msg, loc, "")
		return nil
	}
	label, reason, msg := n.parseLabel(labelc)
	if reason != "" {
		n.reject(reason, n.cols.label, msg, loc, id)
		return nil
	}
	ms, present, msg := parseTime(tmc)
	if msg != "" {
		n.reject(ReasonInvalidTime, n.cols.time, msg, loc, id)
		return nil
	}
	if !present {
		ms = n.pushMs
		n.pushTime++
	}
	n.accepted++
	// Readers' text may alias reused buffers.
	n.ids = append(n.ids, strings.Clone(id))
	n.labels = append(n.labels, label)
	n.times = append(n.times, ms)
	if len(n.ids) == batchRows {
		return n.flush()
	}
	return nil
}

func (n *normaliser) flush() error {
	if len(n.ids) == 0 {
		return nil
	}
	cols := []arrow.Array{dataset.StringArray(n.ids, nil), dataset.Float64Array(n.labels), dataset.Int64Array(n.times, nil)}
	rec, err := dataset.NewRecord(batchSchema, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := n.w.Write(rec); err != nil {
		return err
	}
	n.ids, n.labels, n.times = n.ids[:0], n.labels[:0], n.times[:0]
	return nil
}

// fill copies the counts into rep.
func (n *normaliser) fill(rep *PushReport) {
	rep.Rows, rep.Accepted, rep.Rejected, rep.PushTime = n.rows, n.accepted, n.rows-n.accepted, n.pushTime
	for _, reason := range reasonOrder {
		if r := n.rejected[reason]; r != nil {
			rep.Rejections = append(rep.Rejections, *r)
		}
	}
}
