package labels

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
)

var pushAt = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

const mixedCSV = `id,label,time,note
007,1,2026-12-01T10:00:00Z,rfc 3339
008,0,1796119200,unix seconds
009,true,1796119200000,unix ms
,1,,no id
010,,,no label
011,abc,,bad label
012,1,yesterday,bad time
013,false,,push time
NA,1,,null token id
014, 0.25 ,2026-12-01 11:00:00+01:00,space-separated time
`

// The same rows as mixedCSV in JSON Lines, with a blank line, a numeric ID
// and a boolean ID.
const mixedJSONL = `{"id":"007","label":1,"time":"2026-12-01T10:00:00Z"}
{"id":8,"label":0,"time":1796119200}
{"id":"009","label":true,"time":1796119200000}

{"label":1,"note":"no id"}
{"id":"010","label":null}
{"id":"011","label":"abc"}
{"id":"012","label":1,"time":"yesterday"}
{"id":"013","label":false,"nested":{"a":[1,2]}}
{"id":true,"label":1}
{"id":" 014 ","label":"0.25","time":"2026-12-01 11:00:00+01:00"}
`

func TestPushFormats(t *testing.T) {
	t10 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	want := []labelRow{{"007", 1, t10}, {"008", 0, t10}, {"009", 1, t10}, {"013", 0, pushAt}, {"014", 0.25, t10}}
	jsonWant := append([]labelRow(nil), want...)
	jsonWant[1].id = "8"

	parquetFile := func(dir string) string {
		ids := []string{"007", "008", "", "010", "011", "013", "x"}
		idValid := []bool{true, true, true, true, true, true, false}
		labels := []float64{1, 0, 1, 0, math.NaN(), 0, 1}
		times := []int64{t10.UnixMilli(), t10.Unix(), 0, 0, 0, 0, 0}
		timeValid := []bool{true, true, false, false, false, false, false}
		// Row 4's label is null, row 5's NaN.
		return writeParquet(t, filepath.Join(dir, "labels.parquet"),
			[]dataset.Field{{Name: "id", Type: dataset.String}, {Name: "label", Type: dataset.Float64}, {Name: "time", Type: dataset.Int64}},
			[]arrow.Array{dataset.StringArray(ids, idValid), floatsWithNull(labels, 3), dataset.Int64Array(times, timeValid)})
	}

	tests := []struct {
		name     string
		file     func(dir string) string
		format   string
		rows     []labelRow
		total    int64
		rejected map[string]int64
		examples map[string]string // reason → first example
	}{
		{"csv", func(dir string) string { return writeText(t, filepath.Join(dir, "labels.csv"), mixedCSV) }, FormatCSV, want, 10,
			map[string]int64{ReasonMissingID: 2, ReasonMissingLabel: 1, ReasonInvalidLabel: 1, ReasonInvalidTime: 1},
			map[string]string{
				ReasonMissingID:    "line 5: no id",
				ReasonMissingLabel: "line 6 (id 010): no label",
				ReasonInvalidLabel: `line 7 (id 011): label "abc" is not a finite number or a boolean`,
				ReasonInvalidTime:  `line 8 (id 012): time "yesterday" is not RFC 3339`,
			}},
		{"csv.gz", func(dir string) string { return writeGzip(t, filepath.Join(dir, "labels.csv.gz"), mixedCSV) }, FormatCSV, want, 10,
			map[string]int64{ReasonMissingID: 2, ReasonMissingLabel: 1, ReasonInvalidLabel: 1, ReasonInvalidTime: 1}, nil},
		{"jsonl", func(dir string) string { return writeText(t, filepath.Join(dir, "labels.jsonl"), mixedJSONL) }, FormatJSONL, jsonWant, 10,
			map[string]int64{ReasonMissingID: 1, ReasonInvalidID: 1, ReasonMissingLabel: 1, ReasonInvalidLabel: 1, ReasonInvalidTime: 1},
			map[string]string{
				ReasonMissingID:    "line 5: no id", // line 4 is blank
				ReasonInvalidID:    "line 10: id true is neither text nor a number",
				ReasonMissingLabel: "line 6 (id 010): no label",
			}},
		{"parquet", parquetFile, FormatParquet,
			[]labelRow{{"007", 1, t10}, {"008", 0, t10}, {"013", 0, pushAt}}, 7,
			map[string]int64{ReasonMissingID: 2, ReasonMissingLabel: 1, ReasonInvalidLabel: 1},
			map[string]string{
				ReasonMissingID:    "row 3: empty id",
				ReasonMissingLabel: "row 4 (id 010): no label",
				ReasonInvalidLabel: "row 5 (id 011): label NaN is not a finite number or a boolean",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			file := tt.file(t.TempDir())
			b, rep, err := Push(context.Background(), e.store, e.reg, PushInput{Model: "churn", File: file, PushedBy: "ada", At: pushAt})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Format != tt.format || rep.Rows != tt.total || rep.Accepted != int64(len(tt.rows)) || rep.Rejected != tt.total-int64(len(tt.rows)) {
				t.Errorf("report %+v: want %d rows, %d accepted", rep, tt.total, len(tt.rows))
			}
			got := map[string]int64{}
			for _, r := range rep.Rejections {
				got[r.Reason] = r.Count
				if len(r.Examples) == 0 || int64(len(r.Examples)) > min(r.Count, MaxExamples) {
					t.Errorf("%s: %d examples for %d rows", r.Reason, len(r.Examples), r.Count)
				}
				if w, ok := tt.examples[r.Reason]; ok && !strings.HasPrefix(r.Examples[0], w) {
					t.Errorf("%s: first example %q, want %q…", r.Reason, r.Examples[0], w)
				}
			}
			if !reflect.DeepEqual(got, tt.rejected) {
				t.Errorf("rejections %v, want %v", got, tt.rejected)
			}
			if rep.AlreadyPushed || b.ID == 0 || b.Rows != rep.Accepted || b.Rejected != rep.Rejected || b.PushedBy != "ada" ||
				!b.PushedAt.Equal(pushAt) || b.Source != file || b.SHA256 != rep.SHA256 {
				t.Errorf("batch %+v, report %+v", b, rep)
			}
			path, err := artifact.Path(b.URI, "")
			if err != nil {
				t.Fatal(err)
			}
			if wantPath := e.store.LocalPath(BatchPath("churn", b.SHA256)); path != wantPath {
				t.Errorf("batch stored at %s, want %s", path, wantPath)
			}
			if sum, err := dataset.HashFile(path); err != nil || sum != b.SHA256 {
				t.Errorf("stored file hashes to %s (%v), batch says %s", sum, err, b.SHA256)
			}
			if rows := readBatchRows(t, path); !reflect.DeepEqual(rows, tt.rows) {
				t.Errorf("normalised rows\n%v\nwant\n%v", rows, tt.rows)
			}
			if rep.PushTime != 1 {
				t.Errorf("push-time rows = %d, want 1", rep.PushTime)
			}
			if left, _ := filepath.Glob(filepath.Join(e.store.Root(), "tmp", "*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// floatsWithNull is a Float64 column with a null at row i; NaN elsewhere
// stays a value (dataset's constructors make every NaN null, or none).
func floatsWithNull(vals []float64, i int) arrow.Array {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	for k, v := range vals {
		if k == i {
			b.AppendNull()
		} else {
			b.Append(v)
		}
	}
	return b.NewArray()
}

func TestPushIDsStayText(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for _, tt := range []struct{ name, content string }{
		{"ids.csv", "id,label\n007,1\n0x1F,0\n1e3,1\n 42 ,0\n"},
		{"ids.jsonl", `{"id":"007","label":1}` + "\n" + `{"id":"0x1F","label":0}` + "\n" + `{"id":1e3,"label":1}` + "\n" + `{"id":" 42 ","label":0}` + "\n"},
	} {
		b, _, err := Push(context.Background(), e.store, e.reg, PushInput{Model: "churn", File: writeText(t, filepath.Join(dir, tt.name), tt.content), At: pushAt})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := artifact.Path(b.URI, "")
		var ids []string
		for _, r := range readBatchRows(t, p) {
			ids = append(ids, r.id)
		}
		if want := []string{"007", "0x1F", "1e3", "42"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("%s: ids %q, want %q", tt.name, ids, want)
		}
	}
}

func TestPushIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := t.TempDir()
	timed := writeText(t, filepath.Join(dir, "timed.csv"), "id,label,time\na,1,2026-12-01T00:00:00Z\nb,0,2026-12-01T00:00:00Z\n")
	untimed := writeText(t, filepath.Join(dir, "untimed.csv"), "id,label\na,1\nb,0\n")
	// The same rows as timed.csv, as JSON Lines: the same normalised content.
	sameContent := writeText(t, filepath.Join(dir, "timed.jsonl"), `{"id":"a","label":1,"time":"2026-12-01T00:00:00Z"}`+"\n"+`{"id":"b","label":0,"time":1796083200}`+"\n")

	steps := []struct {
		name    string
		in      PushInput
		already bool
		batch   int64
	}{
		{"first", PushInput{File: timed}, false, 1},
		{"again", PushInput{File: timed, At: pushAt.Add(time.Hour)}, true, 1},
		{"same content, other format", PushInput{File: sameContent}, true, 1},
		{"no times", PushInput{File: untimed}, false, 2},
		// Rows without a time would take this push's time: only the source
		// hash tells it is the same push.
		{"no times, later", PushInput{File: untimed, At: pushAt.Add(24 * time.Hour)}, true, 2},
		{"no times, other label column", PushInput{File: untimed, LabelColumn: "label", IDColumn: "label", At: pushAt.Add(time.Hour)}, false, 3},
	}
	for _, s := range steps {
		s.in.Model = "churn"
		if s.in.At.IsZero() {
			s.in.At = pushAt
		}
		b, rep, err := Push(ctx, e.store, e.reg, s.in)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if rep.AlreadyPushed != s.already || b.ID != s.batch {
			t.Errorf("%s: batch %d, already pushed %v; want %d, %v", s.name, b.ID, rep.AlreadyPushed, s.batch, s.already)
		}
	}
	all, err := e.reg.LabelBatches(ctx, "churn", time.Time{})
	if err != nil || len(all) != 3 {
		t.Fatalf("batches %+v, %v", all, err)
	}
	files, _ := filepath.Glob(e.store.LocalPath("labels/churn/*.parquet"))
	if len(files) != 3 {
		t.Errorf("stored files %v, want 3", files)
	}
}

func TestPushErrors(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	tests := []struct {
		name, file, content string
		in                  PushInput
		want                []string
		is                  error
	}{
		{"all rows bad", "bad.csv", "id,label\n1,x\n2,\n,1\n", PushInput{},
			[]string{"bad.csv:2: column label:", `label "x" is not a finite number`, "all 3 rows rejected", "1 missing id", "1 missing label", "1 invalid label"}, nil},
		{"all rows bad jsonl", "bad.jsonl", `{"id":"a","label":"x"}` + "\n", PushInput{},
			[]string{"bad.jsonl:1: column label:", "all 1 rows rejected"}, nil},
		{"no id column", "noid.csv", "key,label\n1,1\n", PushInput{}, []string{"noid.csv:1: no ID column \"id\"", `"key", "label"`}, nil},
		{"other id column", "key.csv", "key,label\n1,1\n", PushInput{IDColumn: "customer"}, []string{`no ID column "customer"`}, nil},
		{"no label column jsonl", "nolabel.jsonl", `{"id":"a","y":1}` + "\n", PushInput{}, []string{`no object has the label column "label"`, `"id", "y"`}, nil},
		{"named time column missing", "t.csv", "id,label\n1,1\n", PushInput{TimeColumn: "ts"}, []string{`no time column "ts"`}, nil},
		{"duplicate column", "dup.csv", "id,label,id\n1,1,2\n", PushInput{}, []string{`ID column "id" appears twice`}, nil},
		{"ragged csv", "ragged.csv", "id,label\n1,1\n2\n", PushInput{}, []string{"ragged.csv:3: expected 2 fields, found 1"}, nil},
		{"malformed jsonl", "broken.jsonl", `{"id":"a","label":1}` + "\n" + `{"id":` + "\n", PushInput{}, []string{"broken.jsonl:2: malformed JSON"}, nil},
		{"not an object", "array.jsonl", `[1,2]` + "\n", PushInput{}, []string{"array.jsonl:1: not a JSON object"}, nil},
		{"header only", "empty.csv", "id,label\n", PushInput{}, []string{"empty.csv: no data rows"}, nil},
		{"unknown format", "labels.txt", "id,label\n1,1\n", PushInput{}, []string{"unknown format"}, nil},
		{"unknown model", "ok.csv", "id,label\n1,1\n", PushInput{Model: "fraud"}, []string{"fraud"}, registry.ErrNotFound},
		{"missing file", "", "", PushInput{File: filepath.Join(dir, "nope.csv")}, []string{"nope.csv"}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Model == "" {
				in.Model = "churn"
			}
			if in.File == "" {
				in.File = writeText(t, filepath.Join(dir, tt.file), tt.content)
			}
			_, _, err := Push(context.Background(), e.store, e.reg, in)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	if all, _ := e.reg.LabelBatches(context.Background(), "churn", time.Time{}); len(all) != 0 {
		t.Errorf("failed pushes recorded batches: %+v", all)
	}
	if files, _ := filepath.Glob(e.store.LocalPath("labels/*/*")); len(files) != 0 {
		t.Errorf("failed pushes stored files: %v", files)
	}
}

func TestParseTime(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in      cell
		ms      int64
		present bool
		bad     bool
	}{
		{cell{}, 0, false, false},
		{cell{kind: cellText, text: "  "}, 0, false, false},
		{cell{kind: cellText, text: "2026-12-01T10:00:00Z"}, t0.UnixMilli(), true, false},
		{cell{kind: cellText, text: "2026-12-01T11:00:00.5+01:00"}, t0.UnixMilli() + 500, true, false},
		{cell{kind: cellText, text: "2026-12-01 10:00:00Z"}, t0.UnixMilli(), true, false},
		{cell{kind: cellText, text: "2026-12-01T10:00:00"}, 0, true, true}, // no zone
		{cell{kind: cellText, text: fmt.Sprint(t0.Unix())}, t0.UnixMilli(), true, false},
		{cell{kind: cellText, text: fmt.Sprint(t0.UnixMilli())}, t0.UnixMilli(), true, false},
		{cell{kind: cellNumber, num: float64(t0.Unix()) + 0.25}, t0.UnixMilli() + 250, true, false},
		{cell{kind: cellInt, i: t0.Unix()}, t0.UnixMilli(), true, false},
		{cell{kind: cellInt, i: t0.UnixMilli()}, t0.UnixMilli(), true, false},
		{cell{kind: cellInt, i: t0.UnixMicro()}, 0, true, true},
		{cell{kind: cellNumber, num: math.Inf(1)}, 0, true, true},
		{cell{kind: cellBool, b: true}, 0, true, true},
	}
	for _, tt := range tests {
		ms, present, msg := parseTime(tt.in)
		if present != tt.present || (msg != "") != tt.bad || (!tt.bad && ms != tt.ms) {
			t.Errorf("parseTime(%s) = %d, %v, %q; want %d, %v, bad %v", tt.in.show(), ms, present, msg, tt.ms, tt.present, tt.bad)
		}
	}
}

// TestPushParquetTimestamps reads a TIMESTAMP time column, as pandas and
// pyarrow write datetimes (here in micro- and nanoseconds, with a null).
func TestPushParquetTimestamps(t *testing.T) {
	type microsRow struct {
		ID    string     `parquet:"id"`
		Label bool       `parquet:"label"`
		Time  *time.Time `parquet:"time,optional,timestamp(microsecond)"`
	}
	type nanosRow struct {
		ID    int64     `parquet:"id"`
		Label float64   `parquet:"label"`
		When  time.Time `parquet:"when,timestamp(nanosecond:local)"`
	}
	t10 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	late := t10.Add(1500 * time.Microsecond)
	dir := t.TempDir()
	micros := filepath.Join(dir, "micros.parquet")
	if err := parquet.WriteFile(micros, []microsRow{{"a", true, &t10}, {"b", false, nil}, {"c", true, &late}}); err != nil {
		t.Fatal(err)
	}
	nanos := filepath.Join(dir, "nanos.parquet")
	if err := parquet.WriteFile(nanos, []nanosRow{{7, 0.5, t10}, {8, 1, late}}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	for _, tt := range []struct {
		file, timeCol string
		want          []labelRow
	}{
		{micros, "", []labelRow{{"a", 1, t10}, {"b", 0, pushAt}, {"c", 1, t10.Add(time.Millisecond)}}},
		{nanos, "when", []labelRow{{"7", 0.5, t10}, {"8", 1, t10.Add(time.Millisecond)}}},
	} {
		b, rep, err := Push(context.Background(), e.store, e.reg, PushInput{Model: "churn", File: tt.file, TimeColumn: tt.timeCol, At: pushAt})
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		p, _ := artifact.Path(b.URI, "")
		if rows := readBatchRows(t, p); !reflect.DeepEqual(rows, tt.want) || rep.Rejected != 0 {
			t.Errorf("%s: rows %v (%d rejected), want %v", filepath.Base(tt.file), rows, rep.Rejected, tt.want)
		}
	}
}

// TestPushClassLabels: for a multiclass model labels are class names, text
// or numbers spelled as the class is, stored as the class's index; a label
// naming no class is rejected as invalid, with the classes in the example.
func TestPushClassLabels(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	classes := []string{"class_0", "class_1", "2"}
	for _, tt := range []struct{ name, content string }{
		{"classes.csv", "id,label\na,class_1\nb, class_0 \nc,2\nd,class_9\ne,\n"},
		{"classes.jsonl", `{"id":"a","label":"class_1"}` + "\n" + `{"id":"b","label":"class_0"}` + "\n" + `{"id":"c","label":2}` + "\n" +
			`{"id":"d","label":"class_9"}` + "\n" + `{"id":"e","label":null}` + "\n"},
	} {
		b, rep, err := Push(context.Background(), e.store, e.reg, PushInput{Model: "churn", File: writeText(t, filepath.Join(dir, tt.name), tt.content), At: pushAt, Classes: classes})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := artifact.Path(b.URI, "")
		got := map[string]float64{}
		for _, r := range readBatchRows(t, p) {
			got[r.id] = r.label
		}
		if want := map[string]float64{"a": 1, "b": 0, "c": 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: labels %v, want %v", tt.name, got, want)
		}
		var invalid *Rejection
		for i := range rep.Rejections {
			if rep.Rejections[i].Reason == ReasonInvalidLabel {
				invalid = &rep.Rejections[i]
			}
		}
		if invalid == nil || invalid.Count != 1 || len(invalid.Examples) != 1 ||
			!strings.Contains(invalid.Examples[0], `label "class_9" is not one of the model's classes (class_0, class_1, 2)`) {
			t.Errorf("%s: rejections %+v, want class_9 rejected naming the classes", tt.name, rep.Rejections)
		}
	}
}
