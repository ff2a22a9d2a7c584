package dataset

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// values returns the contents of a column as Go values, nil for nulls.
func values(t *testing.T, a arrow.Array) []any {
	t.Helper()
	out := make([]any, a.Len())
	for i := range out {
		if a.IsNull(i) {
			continue
		}
		switch c := a.(type) {
		case *array.Float64:
			out[i] = c.Value(i)
		case *array.Int64:
			out[i] = c.Value(i)
		case *array.String:
			out[i] = c.Value(i)
		case *array.Boolean:
			out[i] = c.Value(i)
		default:
			t.Fatalf("unexpected array type %s", a.DataType())
		}
	}
	return out
}

// equalValues compares column contents, treating NaN as equal to NaN.
func equalValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, xok := a[i].(float64)
		y, yok := b[i].(float64)
		if xok && yok && math.IsNaN(x) && math.IsNaN(y) {
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// columnByName returns the named column of rec.
func columnByName(t *testing.T, rec arrow.Record, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("record has %d columns named %q", len(idx), name)
	}
	return rec.Column(idx[0])
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// mustRecord builds a record or fails the test.
func mustRecord(t testing.TB, s Schema, cols ...arrow.Array) arrow.Record {
	t.Helper()
	rec, err := NewRecord(s, cols)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// writeFile writes content to name inside a new temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
