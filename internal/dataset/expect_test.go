package dataset

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCheckExpectations runs every kind of expectation over a small file
// split into several row groups and checks the whole report: every failure
// is counted, with the first offending rows (1-based, across row groups)
// and values.
func TestCheckExpectations(t *testing.T) {
	src := writeFile(t, "d.csv", `id,age,plan,score
1,30,basic,0.5
2,,pro,NaN
3,130,gold,0.1
3,-1,basic,
5,40,,0.2
6,50,pro,0.3
6,200,silver,0.4
`)
	dst := filepath.Join(t.TempDir(), "d.parquet")
	if _, err := CSVToParquet(context.Background(), src, dst, CSVOptions{BatchRows: 3}); err != nil {
		t.Fatal(err)
	}
	exp := Expectations{
		MinRows: 10,
		Columns: []string{"id", "missing"},
		NotNull: []string{"age", "score", "id"},
		Ranges:  map[string]Range{"age": {Min: ptr(0), Max: ptr(120)}, "plan": {Min: ptr(0)}},
		Allowed: map[string][]string{"plan": {"basic", "pro"}},
		Unique:  []string{"id"},
	}
	rep, err := CheckExpectations(context.Background(), dst, "d.csv", exp)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed || rep.Rows != 7 {
		t.Errorf("passed %v, rows %d; want failed, 7", rep.Passed, rep.Rows)
	}
	want := []Check{
		{Check: "min_rows", Expect: ">= 10 rows", Failures: 1, Message: "has 7 rows, expected at least 10"},
		{Check: "columns", Column: "id", Expect: "present", Passed: true},
		{Check: "columns", Column: "missing", Expect: "present", Failures: 1, Message: "no such column (columns: id, age, plan, score)"},
		{Check: "not_null", Column: "age", Expect: "no nulls", Failures: 1, Rows: []int64{2}, Values: []string{"null"}},
		{Check: "not_null", Column: "score", Expect: "no nulls", Failures: 2, Rows: []int64{2, 4}, Values: []string{"null", "null"}},
		{Check: "not_null", Column: "id", Expect: "no nulls", Passed: true},
		{Check: "range", Column: "age", Expect: "in [0, 120]", Failures: 3, Rows: []int64{3, 4, 7}, Values: []string{"130", "-1", "200"}},
		{Check: "range", Column: "plan", Expect: "in [0, +inf]", Failures: 1, Message: "column is string, not numeric"},
		{Check: "allowed", Column: "plan", Expect: "one of basic, pro", Failures: 2, Rows: []int64{3, 7}, Values: []string{`"gold"`, `"silver"`}},
		{Check: "unique", Column: "id", Expect: "no repeated values", Failures: 2, Rows: []int64{4, 7}, Values: []string{`"3"`, `"6"`}},
	}
	if !reflect.DeepEqual(rep.Checks, want) {
		t.Errorf("checks:\n%+v\nwant\n%+v", rep.Checks, want)
	}
	text := rep.String()
	for _, s := range []string{"8 of 10 expectations failed on 7 rows", "range age (in [0, 120]): 3 rows fail; first row 3 = 130, row 4 = -1, row 7 = 200", "min_rows (>= 10 rows): has 7 rows, expected at least 10"} {
		if !strings.Contains(text, s) {
			t.Errorf("report text lacks %q:\n%s", s, text)
		}
	}

	ok, err := CheckExpectations(context.Background(), dst, "d.csv", Expectations{MinRows: 7, NotNull: []string{"id"}, Ranges: map[string]Range{"id": {Max: ptr(6)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !ok.Passed || len(ok.Failed()) != 0 {
		t.Errorf("passing expectations failed: %v", ok)
	}
}
