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

	"github.com/kiln-ml/kiln/internal/dataset"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const day = 24 * time.Hour

// joinFixture writes request logs and two label batches exercising every
// case of the join; see the comments on each label.
func joinFixture(t *testing.T) (logs, batches []string) {
	dir := t.TempDir()
	old := writeLog(t, filepath.Join(dir, "requests", "churn", "1-1-1.parquet"), []logRow{
		{tenure: 1, plan: "basic", pred: 0.5, version: 1, at: at(-time.Hour)},
		{tenure: 2, plan: "basic", pred: 0.5, version: 1, at: at(-time.Hour)},
		{tenure: 3, plan: "basic", pred: 0.5, version: 1, at: at(-time.Hour)},
	}, false)
	log1 := writeLog(t, filepath.Join(dir, "requests", "churn", "2-1-1.parquet"), []logRow{
		{id: "p1", tenure: 1, plan: "basic", pred: 0.9, version: 1, at: at(0)},
		{id: "p2", tenure: 2, plan: "pro", pred: 0.2, version: 1, at: at(time.Hour)},
		{id: "p3", tenure: 3, plan: "basic", pred: 0.7, version: 1, at: at(2 * time.Hour)},
		{id: "p4", tenure: 4, plan: "pro", pred: 0.4, version: 1, at: at(3 * time.Hour)},
		{id: "p5", tenure: 5, plan: "basic", pred: 0.5, version: 1, at: at(4 * time.Hour)},
		{id: "p6", tenure: math.NaN(), plan: "pro", pred: 0.6, version: 1, at: at(5 * time.Hour)},
		{id: "", tenure: 7, plan: "basic", pred: 0.1, version: 1, at: at(6 * time.Hour)},
	}, true)
	log2 := writeLog(t, filepath.Join(dir, "requests", "churn", "3-1-1.parquet"), []logRow{
		{id: "p7", tenure: 8, plan: "pro", pred: 0.61, version: 2, at: at(day)},
		{id: "p8", tenure: 9, plan: "basic", pred: 0.62, version: 2, at: at(2 * day)},
		{id: "p9", tenure: 10, plan: "pro", pred: 0.31, version: 2, at: at(3 * day)},
		{id: "p9", tenure: 11, plan: "pro", pred: 0.32, version: 2, at: at(4 * day)}, // a reused ID
	}, true)
	b1 := writeBatch(t, filepath.Join(dir, "b1.parquet"), []labelRow{
		{"p1", 1, at(2 * day)},              // late, joined
		{"p2", 0, at(day)},                  // replaced by b2's p2 (same time, later batch)
		{"p3", 1, at(20 * day)},             // too late
		{"p4", 0, at(2 * time.Hour)},        // before its prediction (3h)
		{"p5", 0, at(5 * day)},              // replaced by b2's later p5
		{"pX", 1, at(day)},                  // unknown ID
		{"p9", 1, at(3*day + 12*time.Hour)}, // joins p9 at 3d, not 4d
	})
	b2 := writeBatch(t, filepath.Join(dir, "b2.parquet"), []labelRow{
		{"p7", 1, at(day + time.Hour)},                   // joined
		{"p5", 1, at(6 * day)},                           // duplicate: later, wins
		{"p2", 1, at(day)},                               // duplicate: same time, later batch wins
		{"p1", 0, at(day)},                               // duplicate: earlier, loses
		{"p6", 1, at(5*time.Hour + 14*day)},              // exactly the window: joined
		{"p8", 1, at(2*day + 14*day + time.Millisecond)}, // just past the window
	})
	return []string{old, log1, log2}, []string{b1, b2}
}

func pairIDs(ps []Pair) string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.PredictionID)
	}
	return strings.Join(ids, " ")
}

func TestJoin(t *testing.T) {
	logs, batches := joinFixture(t)
	all := Counts{Total: 13, Joined: 6, Unknown: 1, Duplicate: 3, OutsideWindow: 2, BeforePrediction: 1}
	tests := []struct {
		name     string
		window   time.Duration
		from, to time.Time
		counts   Counts
		pairs    string
	}{
		{"default window", 0, time.Time{}, time.Time{}, all, "p1 p2 p5 p6 p7 p9"},
		{"range", 0, at(time.Hour), at(day), all, "p2 p5 p6"},
		{"range from", 0, at(day), time.Time{}, all, "p7 p9"},
		{"range to", 0, time.Time{}, at(time.Hour), all, "p1"},
		{"one-day window", day, time.Time{}, time.Time{},
			// p1 (2d), p5 (6d − 4h), p6 (14d) and p8 are now too late.
			Counts{Total: 13, Joined: 3, Unknown: 1, Duplicate: 3, OutsideWindow: 5, BeforePrediction: 1}, "p2 p7 p9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Join(context.Background(), JoinInput{RequestLogs: logs, LabelFiles: batches, Window: tt.window, From: tt.from, To: tt.to})
			if err != nil {
				t.Fatal(err)
			}
			if res.Counts != tt.counts {
				t.Errorf("counts %+v\nwant   %+v", res.Counts, tt.counts)
			}
			c := res.Counts
			if c.Joined+c.Unknown+c.Duplicate+c.OutsideWindow+c.BeforePrediction != c.Total {
				t.Errorf("counts do not add up: %+v", c)
			}
			if got := pairIDs(res.Pairs); got != tt.pairs {
				t.Errorf("pairs %q, want %q", got, tt.pairs)
			}
			if res.Predictions != 11 || res.NoID != 1 || res.RepeatedIDs != 1 || res.SkippedRows != 3 ||
				!reflect.DeepEqual(res.SkippedLogs, logs[:1]) {
				t.Errorf("predictions %d, no ID %d, repeated %d, skipped %v (%d rows)", res.Predictions, res.NoID, res.RepeatedIDs, res.SkippedLogs, res.SkippedRows)
			}
		})
	}

	res, err := Join(context.Background(), JoinInput{RequestLogs: logs, LabelFiles: batches})
	if err != nil {
		t.Fatal(err)
	}
	wantEx := Examples{Unknown: []string{"pX"}, Duplicate: []string{"p5", "p2", "p1"}, OutsideWindow: []string{"p3", "p8"}, BeforePrediction: []string{"p4"}}
	if !reflect.DeepEqual(res.Examples, wantEx) {
		t.Errorf("examples %+v\nwant     %+v", res.Examples, wantEx)
	}
	byID := map[string]Pair{}
	for _, p := range res.Pairs {
		byID[p.PredictionID] = p
	}
	wantPairs := []Pair{
		{"p1", 0.9, 1, at(0), "stable", 1, at(2 * day)},             // the later label of p1
		{"p2", 0.2, 1, at(time.Hour), "stable", 1, at(day)},         // b2's label of p2
		{"p5", 0.5, 1, at(4 * time.Hour), "stable", 1, at(6 * day)}, // the latest label of p5
		{"p6", 0.6, 1, at(5 * time.Hour), "stable", 1, at(5*time.Hour + 14*day)},
		{"p9", 0.31, 2, at(3 * day), "stable", 1, at(3*day + 12*time.Hour)}, // the prediction before the label
	}
	for _, w := range wantPairs {
		if got := byID[w.PredictionID]; !reflect.DeepEqual(got, w) {
			t.Errorf("pair %+v\nwant %+v", got, w)
		}
	}
	if m := res.LabelsByID(); len(m) != 6 || m["p1"] != 1 || m["p7"] != 1 {
		t.Errorf("LabelsByID = %v", m)
	}
}

func TestJoinInputs(t *testing.T) {
	dir := t.TempDir()
	logs, batches := joinFixture(t)
	wrong := writeParquet(t, filepath.Join(dir, "wrong.parquet"), []dataset.Field{{Name: "id", Type: dataset.Int64}, {Name: "label", Type: dataset.Float64}, {Name: "time", Type: dataset.Int64}},
		[]arrow.Array{dataset.Int64Array([]int64{1}, nil), dataset.Float64Array([]float64{1}), dataset.Int64Array([]int64{1}, nil)})
	badLog := writeParquet(t, filepath.Join(dir, "badlog.parquet"), []dataset.Field{{Name: LogPredictionID, Type: dataset.String}, {Name: LogPrediction, Type: dataset.Float64}},
		[]arrow.Array{dataset.StringArray([]string{"p1"}, nil), dataset.Float64Array([]float64{1})})
	tests := []struct {
		name string
		in   JoinInput
		want string
	}{
		{"not a batch", JoinInput{RequestLogs: logs, LabelFiles: []string{wrong}}, `column "id" is int64, want string`},
		{"log without time", JoinInput{RequestLogs: []string{badLog}, LabelFiles: batches}, `no column "_kiln_model_version"`},
		{"missing log", JoinInput{RequestLogs: []string{filepath.Join(dir, "nope.parquet")}, LabelFiles: batches}, "nope.parquet"},
		{"negative window", JoinInput{Window: -time.Hour}, "negative window"},
		{"empty range", JoinInput{From: at(day), To: at(day)}, "empty range"},
	}
	for _, tt := range tests {
		if _, err := Join(context.Background(), tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	// No labels, no logs: nothing joined, no error.
	if res, err := Join(context.Background(), JoinInput{RequestLogs: logs}); err != nil || res.Counts != (Counts{}) || len(res.Pairs) != 0 {
		t.Errorf("no labels: %+v, %v", res, err)
	}
}

func TestJoinRows(t *testing.T) {
	ctx := context.Background()
	logs, batches := joinFixture(t)
	dir := t.TempDir()
	// A version with other inputs: region instead of plan.
	log3 := writeParquet(t, filepath.Join(dir, "4-1-1.parquet"),
		append([]dataset.Field{{Name: "tenure", Type: dataset.Float64}, {Name: "region", Type: dataset.String}}, append(logTail, dataset.Field{Name: LogPredictionID, Type: dataset.String})...),
		[]arrow.Array{dataset.Float64Array([]float64{12, 13}), dataset.StringArray([]string{"eu", "us"}, nil), dataset.Float64Array([]float64{0.8, 0.9}),
			dataset.Int64Array([]int64{3, 3}, nil), dataset.StringArray([]string{"canary", "canary"}, nil), dataset.Float64Array([]float64{1, 1}),
			dataset.Int64Array([]int64{at(5 * day).UnixMilli(), at(5 * day).UnixMilli()}, nil), dataset.StringArray([]string{"q1", "q2"}, nil)})
	b3 := writeBatch(t, filepath.Join(dir, "b3.parquet"), []labelRow{{"q2", 0, at(6 * day)}})
	logs = append(logs, log3)
	batches = append(batches, b3)

	type row struct {
		tenure  float64
		plan    string
		region  string
		churned float64
	}
	read := func(path string) (dataset.Schema, []row) {
		r, err := dataset.OpenParquet(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rec, err := r.ReadAll(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		schema := r.Schema()
		col := func(name string) arrow.Array {
			if i := schema.Index(name); i >= 0 {
				return rec.Column(i)
			}
			return nil
		}
		var out []row
		for i := 0; i < int(rec.NumRows()); i++ {
			var x row
			if c, ok := col("tenure").(*array.Float64); ok {
				x.tenure = c.Value(i)
				if c.IsNull(i) {
					x.tenure = -1
				}
			}
			if c, ok := col("plan").(*array.String); ok && c.IsValid(i) {
				x.plan = c.Value(i)
			}
			if c, ok := col("region").(*array.String); ok && c.IsValid(i) {
				x.region = c.Value(i)
			}
			x.churned = col("churned").(*array.Float64).Value(i)
			out = append(out, x)
		}
		return schema, out
	}

	out := filepath.Join(dir, "out", "joined.parquet")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := JoinRows(ctx, JoinRowsInput{JoinInput: JoinInput{RequestLogs: logs, LabelFiles: batches}, Target: "churned", Output: out})
	if err != nil {
		t.Fatal(err)
	}
	schema, rows := read(out)
	if got := strings.Join(schema.Names(), ","); got != "tenure,plan,region,churned" {
		t.Errorf("columns %s", got)
	}
	want := []row{
		{1, "basic", "", 1}, {2, "pro", "", 1}, {5, "basic", "", 1}, {-1, "pro", "", 1}, // log 1: p1 p2 p5 p6 (null tenure)
		{8, "pro", "", 1}, {10, "pro", "", 1}, // log 2: p7, the first p9
		{13, "", "us", 0}, // log 3: q2
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n%v\nwant\n%v", rows, want)
	}
	if res.Dataset.Rows != 7 || res.Counts.Joined != 7 || len(res.Pairs) != 7 {
		t.Errorf("result: dataset %+v, counts %+v", res.Dataset, res.Counts)
	}
	if sum, _ := dataset.HashFile(out); sum != res.Dataset.SHA256 {
		t.Errorf("file hash %s, result says %s", sum, res.Dataset.SHA256)
	}
	// The same inputs make the same bytes.
	again := filepath.Join(dir, "again.parquet")
	res2, err := JoinRows(ctx, JoinRowsInput{JoinInput: JoinInput{RequestLogs: logs, LabelFiles: batches}, Target: "churned", Output: again})
	if err != nil || res2.Dataset.SHA256 != res.Dataset.SHA256 {
		t.Errorf("second run: %s (%v), first %s", res2.Dataset.SHA256, err, res.Dataset.SHA256)
	}

	// A range and chosen features.
	ranged := filepath.Join(dir, "ranged.parquet")
	_, err = JoinRows(ctx, JoinRowsInput{JoinInput: JoinInput{RequestLogs: logs, LabelFiles: batches, From: at(time.Hour), To: at(2 * day)},
		Target: "churned", Output: ranged, Features: []string{"plan", "tenure"}})
	if err != nil {
		t.Fatal(err)
	}
	schema, rows = read(ranged)
	if got := strings.Join(schema.Names(), ","); got != "plan,tenure,churned" {
		t.Errorf("ranged columns %s", got)
	}
	if want := []row{{2, "pro", "", 1}, {5, "basic", "", 1}, {-1, "pro", "", 1}, {8, "pro", "", 1}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("ranged rows\n%v\nwant\n%v", rows, want)
	}

	errs := []struct {
		name string
		in   JoinRowsInput
		want string
		is   error
	}{
		{"target is a feature", JoinRowsInput{Target: "tenure", Output: filepath.Join(dir, "x.parquet")}, "also an input column", nil},
		{"unknown feature", JoinRowsInput{Target: "y", Output: filepath.Join(dir, "x.parquet"), Features: []string{"age"}}, `feature "age"`, nil},
		{"no target", JoinRowsInput{Output: filepath.Join(dir, "x.parquet")}, "target", nil},
		{"nothing joined", JoinRowsInput{Target: "y", Output: filepath.Join(dir, "x.parquet"), JoinInput: JoinInput{From: at(100 * day)}}, "no joined rows", ErrNoRows},
	}
	for _, tt := range errs {
		in := tt.in
		if in.JoinInput.RequestLogs == nil {
			in.JoinInput.RequestLogs, in.JoinInput.LabelFiles = logs, batches
		}
		_, err := JoinRows(ctx, in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.parquet")); !os.IsNotExist(err) {
		t.Errorf("a failed JoinRows left its output: %v", err)
	}
}

// TestJoinEarlier counts the fixture's batches one at a time, the second
// with the first as Earlier: the counts add up to those of one join over
// both, and relabelled IDs of the first batch count as duplicates.
func TestJoinEarlier(t *testing.T) {
	logs, batches := joinFixture(t)
	ctx := context.Background()
	first, err := Join(ctx, JoinInput{RequestLogs: logs, LabelFiles: batches[:1]})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Join(ctx, JoinInput{RequestLogs: logs, LabelFiles: batches[1:], Earlier: batches[:1]})
	if err != nil {
		t.Fatal(err)
	}
	want1 := Counts{Total: 7, Joined: 4, Unknown: 1, OutsideWindow: 1, BeforePrediction: 1}
	want2 := Counts{Total: 6, Joined: 2, Duplicate: 3, OutsideWindow: 1}
	if first.Counts != want1 || second.Counts != want2 {
		t.Errorf("counts %+v then %+v\nwant   %+v then %+v", first.Counts, second.Counts, want1, want2)
	}
	if got, want := second.Examples.Duplicate, []string{"p5", "p2", "p1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("duplicate examples %v, want %v", got, want)
	}
	if got := pairIDs(second.Pairs); got != "p6 p7" {
		t.Errorf("pairs %q, want the IDs of the second batch not labelled before", got)
	}
	if _, err := Join(ctx, JoinInput{RequestLogs: logs, LabelFiles: batches[1:], Earlier: []string{filepath.Join(t.TempDir(), "missing.parquet")}}); err == nil {
		t.Error("a missing earlier batch: no error")
	}
}

func TestTimeRange(t *testing.T) {
	_, batches := joinFixture(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		files       []string
		first, last time.Time
		ok          bool
	}{
		{"both", batches, at(2 * time.Hour), at(20 * day), true},
		{"second", batches[1:], at(day), at(2*day + 14*day + time.Millisecond), true},
		{"empty batch", []string{writeBatch(t, filepath.Join(t.TempDir(), "empty.parquet"), nil)}, time.Time{}, time.Time{}, false},
		{"none", nil, time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, last, ok, err := TimeRange(ctx, tt.files)
			if err != nil {
				t.Fatal(err)
			}
			if !first.Equal(tt.first) || !last.Equal(tt.last) || ok != tt.ok {
				t.Errorf("TimeRange = %v, %v, %v; want %v, %v, %v", first, last, ok, tt.first, tt.last, tt.ok)
			}
		})
	}
}

// TestJoinKeepsVariants: each pair names the variant that answered, also
// when the request log is read in several batches (the reader reuses its
// buffers between batches, so a variant must be copied out).
func TestJoinKeepsVariants(t *testing.T) {
	dir := t.TempDir()
	n := batchRows + 5000
	ids, variants := make([]string, n), make([]string, n)
	preds, lat := make([]float64, n), make([]float64, n)
	versions, ts := make([]int64, n), make([]int64, n)
	base := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var labelled []labelRow
	for i := range n {
		ids[i], variants[i] = fmt.Sprintf("p%d", i), fmt.Sprintf("arm-%d", i%7)
		versions[i], ts[i] = int64(i%7+1), base.UnixMilli()
		if i%1000 == 0 {
			labelled = append(labelled, labelRow{ids[i], 1, base.Add(time.Minute)})
		}
	}
	log := writeParquet(t, filepath.Join(dir, "log.parquet"), append(append([]dataset.Field(nil), logTail...), dataset.Field{Name: LogPredictionID, Type: dataset.String}),
		[]arrow.Array{dataset.Float64Array(preds), dataset.Int64Array(versions, nil), dataset.StringArray(variants, nil),
			dataset.Float64Array(lat), dataset.Int64Array(ts, nil), dataset.StringArray(ids, nil)})
	batch := writeBatch(t, filepath.Join(dir, "b.parquet"), labelled)
	res, err := Join(context.Background(), JoinInput{RequestLogs: []string{log}, LabelFiles: []string{batch}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pairs) != len(labelled) {
		t.Fatalf("%d pairs, want %d", len(res.Pairs), len(labelled))
	}
	for _, p := range res.Pairs {
		var i int
		fmt.Sscanf(p.PredictionID, "p%d", &i)
		if want := fmt.Sprintf("arm-%d", i%7); p.Variant != want || p.Version != int64(i%7+1) {
			t.Errorf("%s: variant %q v%d, want %q v%d", p.PredictionID, p.Variant, p.Version, want, i%7+1)
		}
	}
}

// TestJoinRowsClasses: for a multiclass model the labels (class indexes)
// are written as the class names, a string target as in the training
// data; a label that is no class index is an error.
func TestJoinRowsClasses(t *testing.T) {
	ctx := context.Background()
	logs, batches := joinFixture(t)
	dir := t.TempDir()
	in := JoinRowsInput{JoinInput: JoinInput{RequestLogs: logs, LabelFiles: batches}, Target: "churned", Output: filepath.Join(dir, "num.parquet")}
	if _, err := JoinRows(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Output, in.Classes = filepath.Join(dir, "classes.parquet"), []string{"stays", "leaves"}
	if _, err := JoinRows(ctx, in); err != nil {
		t.Fatal(err)
	}
	nums := readAll(t, filepath.Join(dir, "num.parquet"))
	names := readAll(t, filepath.Join(dir, "classes.parquet"))
	y, err := dataset.Float64s(nums, "churned")
	if err != nil {
		t.Fatal(err)
	}
	got, valid, err := dataset.Strings(names, "churned")
	if err != nil || names.Schema().Field(names.Schema().FieldIndices("churned")[0]).Type.ID() != arrow.STRING {
		t.Fatalf("target column: %v, %v", err, names.Schema())
	}
	if len(got) != len(y) || len(y) == 0 {
		t.Fatalf("%d named labels, %d numeric", len(got), len(y))
	}
	for i := range y {
		if !valid[i] || got[i] != in.Classes[int(y[i])] {
			t.Errorf("row %d: target %q, want %q", i, got[i], in.Classes[int(y[i])])
		}
	}
	in.Output, in.Classes = filepath.Join(dir, "bad.parquet"), []string{"only"}
	if _, err := JoinRows(ctx, in); err == nil || !strings.Contains(err.Error(), "is not a class index") {
		t.Errorf("a label beyond the classes: %v, want an error", err)
	}
	if _, err := os.Stat(in.Output); !os.IsNotExist(err) {
		t.Errorf("a failed join left %s behind (%v)", in.Output, err)
	}
}
