//go:build !kilnlite

package edge

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/model"
)

// checkMulticlassParquet scores the CSV in into Parquet and reads the
// scored file back as CSV: the same rows as wantCSV.
func checkMulticlassParquet(t *testing.T, m *model.Model, dir, in, wantCSV string) {
	t.Run("parquet", func(t *testing.T) {
		pq := filepath.Join(dir, "scored.parquet")
		if err := Score(t.Context(), m, "m", 4, Options{Input: in, Format: FormatCSV, Output: pq, OutputFormat: FormatParquet, Passthrough: []string{"id"}}, nil, nil); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		// The scored Parquet file read back as CSV: the same columns.
		if err := writeRowsFrom(t.Context(), pq, FormatCSV, &out, &rowScorer{m: m, name: "m", version: 4, pass: []string{"id"}}); err != nil {
			t.Fatal(err)
		}
		if out.String() != wantCSV {
			t.Errorf("output\n%s\nwant\n%s", out.String(), wantCSV)
		}
	})
}
