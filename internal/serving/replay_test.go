package serving

import (
	"context"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// TestRowsFromRecord checks the conversion of each column type, with NaN,
// ±Inf and nulls becoming nil and int64 becoming float64.
func TestRowsFromRecord(t *testing.T) {
	schema := dataset.Schema{Fields: []dataset.Field{
		{Name: "f", Type: dataset.Float64},
		{Name: "i", Type: dataset.Int64},
		{Name: "s", Type: dataset.String},
		{Name: "b", Type: dataset.Bool},
	}}
	mem := memory.NewGoAllocator()
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{1.5, math.NaN(), 0, math.Inf(1), math.Inf(-1)}, []bool{true, true, false, true, true})
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{-3, 0, 7, 1 << 53, 9}, []bool{true, false, true, true, true})
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"a", "", "", "c", "d"}, []bool{true, true, false, true, true})
	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues([]bool{true, false, false, true, false}, []bool{true, true, true, false, true})
	cols := []arrow.Array{fb.NewArray(), ib.NewArray(), sb.NewArray(), bb.NewArray()}
	rec, err := dataset.NewRecord(schema, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	for _, c := range cols {
		c.Release()
	}

	got, err := RowsFromRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"f": 1.5, "i": -3.0, "s": "a", "b": true},
		{"f": nil, "i": nil, "s": "", "b": false},
		{"f": nil, "i": 7.0, "s": nil, "b": false},
		{"f": nil, "i": float64(1 << 53), "s": "c", "b": nil},
		{"f": nil, "i": 9.0, "s": "d", "b": false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%v\nwant\n%v", got, want)
	}
	for i, r := range got {
		if v, ok := r["i"]; ok && v != nil {
			if _, isFloat := v.(float64); !isFloat {
				t.Errorf("row %d: i is %T, want float64", i, v)
			}
		}
	}
}

// TestRowsFromRecordUnsupported checks that a column of another type is an
// error naming the column, and that an empty record gives no rows.
func TestRowsFromRecordUnsupported(t *testing.T) {
	mem := memory.NewGoAllocator()
	b := array.NewInt32Builder(mem)
	b.AppendValues([]int32{1, 2}, nil)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: "n32", Type: arrow.PrimitiveTypes.Int32}}, nil), []arrow.Array{col}, 2)
	defer rec.Release()
	if _, err := RowsFromRecord(rec); err == nil || !strings.Contains(err.Error(), "n32") {
		t.Errorf("error %v, want one naming column n32", err)
	}

	_, train := readTrain(t)
	empty := train.NewSlice(0, 0)
	defer empty.Release()
	rows, err := RowsFromRecord(empty)
	if err != nil || len(rows) != 0 {
		t.Errorf("empty record: %v, %v", rows, err)
	}
}

// TestReplay replays the training rows against a server and checks the
// counts of requests, rows, errors and versions.
func TestReplay(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	_, train := readTrain(t)
	rows, err := RowsFromRecord(train)
	if err != nil {
		t.Fatal(err)
	}
	n := len(rows)                                    // 10
	bad := []map[string]any{rows[0], {"plan": "pro"}} // the second has no charges

	tests := []struct {
		name     string
		rows     []map[string]any
		opts     ReplayOptions
		dep      Deployment
		requests int64
		rowsSent int64
		errors   int64
		versions map[int64]int64 // nil: only check the total
	}{
		{"one pass", rows, ReplayOptions{}, stable(1, uri1), int64(n), int64(n), 0, map[int64]int64{1: int64(n)}},
		{"one pass in batches", rows, ReplayOptions{Batch: 3, Workers: 2}, stable(1, uri1), 4, 12, 0, map[int64]int64{1: 4}},
		{"limit cycles the rows", rows, ReplayOptions{Limit: 25, Workers: 1}, stable(1, uri1), 25, 25, 0, map[int64]int64{1: 25}},
		{"canary", rows, ReplayOptions{Limit: 40}, withCanary(1, uri1, 2, uri2, 100), 40, 40, 0, map[int64]int64{2: 40}},
		{"errors", bad, ReplayOptions{Limit: 6, Workers: 1}, stable(1, uri1), 6, 6, 3, map[int64]int64{1: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			deploy(t, s, "churn", tt.dep)
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			st, err := Replay(context.Background(), &Client{BaseURL: ts.URL}, "churn", tt.rows, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Requests != tt.requests || st.Rows != tt.rowsSent || st.Errors != tt.errors {
				t.Errorf("%d requests, %d rows, %d errors; want %d, %d, %d (last error %q)",
					st.Requests, st.Rows, st.Errors, tt.requests, tt.rowsSent, tt.errors, st.LastError)
			}
			if !reflect.DeepEqual(st.ByVersion, tt.versions) {
				t.Errorf("by version %v, want %v", st.ByVersion, tt.versions)
			}
			if (tt.errors > 0) != strings.Contains(st.LastError, `"charges" is missing`) {
				t.Errorf("last error %q", st.LastError)
			}
			var served int64
			stats, _ := s.Stats("churn")
			for _, v := range stats.Variants {
				served += v.Requests
			}
			if served != tt.requests {
				t.Errorf("the server counted %d requests, want %d", served, tt.requests)
			}
		})
	}
}

// TestReplayRateAndDuration checks that Rate paces the requests and that
// Duration stops an unlimited replay.
func TestReplayRateAndDuration(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	ctx := context.Background()

	// 10 requests at 100/s take at least 9 intervals of 10ms.
	st, err := Replay(ctx, c, "churn", instances, ReplayOptions{Rate: 100, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 10 || st.Errors != 0 {
		t.Errorf("%d requests, %d errors (%s), want 10, 0", st.Requests, st.Errors, st.LastError)
	}
	if st.Elapsed < 90*time.Millisecond {
		t.Errorf("10 requests at 100/s took %v", st.Elapsed)
	}

	// No limit: 300ms at 50/s is about 15 requests.
	st, err = Replay(ctx, c, "churn", instances, ReplayOptions{Rate: 50, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests < 5 || st.Requests > 16 || st.Errors != 0 {
		t.Errorf("300ms at 50/s: %d requests, %d errors (%s)", st.Requests, st.Errors, st.LastError)
	}
	if st.Elapsed > 5*time.Second {
		t.Errorf("a 300ms replay took %v", st.Elapsed)
	}

	// A rate too high to pace is as fast as possible.
	st, err = Replay(ctx, c, "churn", instances, ReplayOptions{Rate: 1e12, Limit: 5})
	if err != nil || st.Requests != 5 || st.Errors != 0 {
		t.Errorf("rate 1e12: %d requests, %d errors, %v", st.Requests, st.Errors, err)
	}

	if _, err := Replay(ctx, c, "churn", nil, ReplayOptions{}); err == nil {
		t.Error("replaying no rows: no error")
	}
}
