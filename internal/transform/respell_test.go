package transform

import (
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// TestNumericSpellings: categories that read as numbers ("2.0") are
// matched by value by steps fitted now ("2", "2.00", a JSON number 2), and
// the rows so read are reported; exact spellings still win, and a step
// without the flag (an older bundle) reads values as written.
func TestNumericSpellings(t *testing.T) {
	cols := []col{
		{"code", dataset.String, []any{"2.0", "3.5", "2.0", "abc", "abc", "3.5"}},
		{"y", dataset.Int64, []any{int64(0), int64(1), int64(0), int64(1), int64(0), int64(1)}},
	}
	for _, kind := range []string{KindOnehot, KindOrdinal} {
		t.Run(kind, func(t *testing.T) {
			f, err := Fit(Recipe{Target: "y", Transforms: []Spec{{Kind: kind, Columns: []string{"code"}}}}, schemaOf(cols...), record(t, cols...))
			if err != nil {
				t.Fatal(err)
			}
			s := f.Steps[0]
			if !s.NumericSpellings {
				t.Fatalf("step %+v: numeric-looking categories not recorded", s)
			}
			rows := []map[string]any{{"code": "2"}, {"code": 2.0}, {"code": "2.00"}, {"code": "3.50"}, {"code": "abc"}, {"code": "7"}, {"code": "2.0"}}
			x, err := f.ApplyRows(rows)
			if err != nil {
				t.Fatal(err)
			}
			exact, err := f.ApplyRows([]map[string]any{{"code": "2.0"}, {"code": "2.0"}, {"code": "2.0"}, {"code": "3.5"}, {"code": "abc"}, {"code": "7"}, {"code": "2.0"}})
			if err != nil {
				t.Fatal(err)
			}
			for j := range x.Cols {
				if !slices.Equal(x.Cols[j], exact.Cols[j]) {
					t.Errorf("feature %s: %v, want %v", x.Features[j], x.Cols[j], exact.Cols[j])
				}
			}
			want := []Respelling{ // the JSON number 2 reads as "2"
				{Column: "code", Value: "2", Category: "2.0", Rows: 2},
				{Column: "code", Value: "2.00", Category: "2.0", Rows: 1},
				{Column: "code", Value: "3.50", Category: "3.5", Rows: 1},
			}
			if !slices.Equal(x.Respelled, want) {
				t.Errorf("respelled %+v, want %+v", x.Respelled, want)
			}
			// Batch scoring (Arrow) reads them the same way.
			batch, err := f.Apply(record(t, col{"code", dataset.String, []any{"2", "2", "2.00", "3.50", "abc", "7", "2.0"}}))
			if err != nil {
				t.Fatal(err)
			}
			for j := range batch.Cols {
				if !slices.Equal(batch.Cols[j], exact.Cols[j]) {
					t.Errorf("batch feature %s: %v, want %v", batch.Features[j], batch.Cols[j], exact.Cols[j])
				}
			}
			if !slices.Equal(batch.Respelled, want) {
				t.Errorf("batch respelled %+v, want %+v", batch.Respelled, want)
			}
			if len(exact.Respelled) != 0 {
				t.Errorf("exact spellings reported: %+v", exact.Respelled)
			}

			old := *f
			old.Steps = slices.Clone(f.Steps)
			old.Steps[0].NumericSpellings = false
			y, err := old.ApplyRows([]map[string]any{{"code": "2.00"}})
			if err != nil {
				t.Fatal(err)
			}
			z, _ := old.ApplyRows([]map[string]any{{"code": "never seen"}})
			for j := range y.Cols {
				if y.Cols[j][0] != z.Cols[j][0] || len(y.Respelled) > 0 {
					t.Errorf("without numeric_spellings \"2.00\" is not unknown: %v", y.Cols)
				}
			}
			if _, err := old.ApplyRows([]map[string]any{{"code": 2.0}}); err == nil {
				t.Error("without numeric_spellings a JSON number for a string column was accepted")
			}
		})
	}
}
