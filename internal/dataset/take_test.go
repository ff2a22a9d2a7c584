package dataset

import (
	"github.com/apache/arrow/go/v17/arrow"
	"math"
	"testing"
)

func TestTake(t *testing.T) {
	schema := Schema{Fields: []Field{{Name: "x", Type: Float64}, {Name: "n", Type: Int64}, {Name: "s", Type: String}, {Name: "b", Type: Bool}}}
	rec, err := NewRecord(schema, []arrow.Array{
		Float64ArrayNullNaN([]float64{1, math.NaN(), 3}),
		Int64Array([]int64{10, 20, 30}, []bool{true, true, false}),
		StringArray([]string{"a", "", "c"}, []bool{true, false, true}),
		BoolArray([]bool{true, false, true}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	out, err := Take(rec, []int{2, 0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	x, _ := Float64s(out, "x")
	if len(x) != 4 || x[0] != 3 || x[1] != 1 || !math.IsNaN(x[2]) || x[3] != 3 {
		t.Errorf("x = %v", x)
	}
	s, valid, _ := Strings(out, "s")
	if s[0] != "c" || s[1] != "a" || valid[2] || !valid[3] {
		t.Errorf("s = %v %v", s, valid)
	}
	n, _ := Float64s(out, "n")
	if !math.IsNaN(n[0]) || n[1] != 10 || n[2] != 20 {
		t.Errorf("n = %v", n)
	}
	if _, err := Take(rec, []int{3}); err == nil {
		t.Error("Take out of range: no error")
	}
}
