package dataset

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

// conversionRecord has one column of each type, each with a null in row 1.
func conversionRecord(t *testing.T) arrow.Record {
	s := Schema{Fields: []Field{{Name: "f", Type: Float64}, {Name: "i", Type: Int64}, {Name: "b", Type: Bool}, {Name: "s", Type: String}}}
	return mustRecord(t, s,
		Float64ArrayNullNaN([]float64{1.5, math.NaN(), -0.25}),
		Int64Array([]int64{3, 99, -4}, []bool{true, false, true}),
		BoolArray([]bool{true, true, false}, []bool{true, false, true}),
		StringArray([]string{"x", "y", ""}, []bool{true, false, true}),
	)
}

func TestFloat64s(t *testing.T) {
	rec := conversionRecord(t)
	defer rec.Release()
	nan := math.NaN()
	tests := []struct {
		column  string
		want    []float64
		wantErr string
	}{
		{"f", []float64{1.5, nan, -0.25}, ""},
		{"i", []float64{3, nan, -4}, ""},
		{"b", []float64{1, nan, 0}, ""},
		{"s", nil, `column "s" is a string column`},
		{"missing", nil, `no column "missing"`},
	}
	for _, tc := range tests {
		t.Run(tc.column, func(t *testing.T) {
			got, err := Float64s(rec, tc.column)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] && !(math.IsNaN(got[i]) && math.IsNaN(tc.want[i])) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestStrings(t *testing.T) {
	rec := conversionRecord(t)
	defer rec.Release()
	valid := []bool{true, false, true}
	tests := []struct {
		column  string
		want    []string
		wantErr string
	}{
		{"s", []string{"x", "", ""}, ""},
		{"b", []string{"true", "", "false"}, ""},
		{"i", []string{"3", "", "-4"}, ""},
		{"f", []string{"1.5", "", "-0.25"}, ""},
		{"missing", nil, `no column "missing"`},
	}
	for _, tc := range tests {
		t.Run(tc.column, func(t *testing.T) {
			got, gotValid, err := Strings(rec, tc.column)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(gotValid, valid) {
				t.Errorf("got %q %v, want %q %v", got, gotValid, tc.want, valid)
			}
		})
	}
}

func TestArrayBuilders(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		arr   arrow.Array
		typ   arrow.Type
		nulls int
		want  []any
	}{
		{"Float64Array keeps NaN", Float64Array([]float64{1, nan}), arrow.FLOAT64, 0, []any{1.0, nan}},
		{"Float64ArrayNullNaN", Float64ArrayNullNaN([]float64{nan, 2, nan}), arrow.FLOAT64, 2, []any{nil, 2.0, nil}},
		{"Int64Array nil valid", Int64Array([]int64{1, 2}, nil), arrow.INT64, 0, []any{int64(1), int64(2)}},
		{"Int64Array", Int64Array([]int64{1, 2}, []bool{false, true}), arrow.INT64, 1, []any{nil, int64(2)}},
		{"StringArray", StringArray([]string{"a", "b", ""}, []bool{true, false, true}), arrow.STRING, 1, []any{"a", nil, ""}},
		{"BoolArray", BoolArray([]bool{true, false, true, true, false, false, true, false, true}, nil), arrow.BOOL, 0,
			[]any{true, false, true, true, false, false, true, false, true}},
		{"BoolArray nulls", BoolArray([]bool{true, true}, []bool{true, false}), arrow.BOOL, 1, []any{true, nil}},
		{"empty", Float64Array(nil), arrow.FLOAT64, 0, []any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.arr.DataType().ID() != tc.typ || tc.arr.NullN() != tc.nulls {
				t.Errorf("type %s nulls %d, want %s %d", tc.arr.DataType(), tc.arr.NullN(), tc.typ, tc.nulls)
			}
			if got := values(t, tc.arr); !equalValues(got, tc.want) {
				t.Errorf("values %v, want %v", got, tc.want)
			}
		})
	}
}

func TestArrayBuildersCopy(t *testing.T) {
	vals := []float64{1, 2}
	a := Float64Array(vals)
	vals[0] = 99
	if got := values(t, a)[0]; got != 1.0 {
		t.Errorf("array shares the caller's slice: %v", got)
	}
}

func TestNewRecordErrors(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "a", Type: Float64}, {Name: "b", Type: Int64}}}
	tests := []struct {
		name string
		s    Schema
		cols []arrow.Array
		want string
	}{
		{"too few columns", s, []arrow.Array{Float64Array([]float64{1})}, "1 columns for 2 schema fields"},
		{"wrong type", s, []arrow.Array{Float64Array([]float64{1}), Float64Array([]float64{1})}, `column "b" is float64, schema says int64`},
		{"ragged", s, []arrow.Array{Float64Array([]float64{1}), Int64Array([]int64{1, 2}, nil)}, `column "b" has 2 rows`},
		{"nil column", s, []arrow.Array{Float64Array([]float64{1}), nil}, `column "b" is nil`},
		{"duplicate field", Schema{Fields: []Field{{Name: "a", Type: Float64}, {Name: "a", Type: Float64}}},
			[]arrow.Array{Float64Array(nil), Float64Array(nil)}, `both named "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRecord(tc.s, tc.cols)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSchemaArrow(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "f", Type: Float64}, {Name: "i", Type: Int64}, {Name: "s", Type: String}, {Name: "b", Type: Bool}}}
	as := s.Arrow()
	wantIDs := []arrow.Type{arrow.FLOAT64, arrow.INT64, arrow.STRING, arrow.BOOL}
	for i, f := range as.Fields() {
		if f.Type.ID() != wantIDs[i] || !f.Nullable || f.Name != s.Fields[i].Name {
			t.Errorf("field %d = %v", i, f)
		}
	}
	back, err := SchemaFromArrow(as)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("round trip %+v, want %+v", back, s)
	}
	bad := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.FixedWidthTypes.Timestamp_us}}, nil)
	if _, err := SchemaFromArrow(bad); err == nil || !strings.Contains(err.Error(), `field "t"`) {
		t.Errorf("timestamp field: %v", err)
	}
}
