//go:build kilnlite

package edge

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/model"
)

// checkMulticlassParquet: a lite predictor refuses Parquet output.
func checkMulticlassParquet(t *testing.T, m *model.Model, dir, in, wantCSV string) {
	o := Options{Input: in, Format: FormatCSV, Output: filepath.Join(dir, "x.parquet"), OutputFormat: FormatParquet}
	if err := Score(t.Context(), m, "m", 4, o, nil, nil); !errors.Is(err, errNoParquet) {
		t.Errorf("lite Parquet output: %v, want the lite refusal", err)
	}
}
