package report

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/metrics"
)

// TestMulticlassPerformance: a multiclass model's live metrics come from
// the predicted classes; rows whose label or prediction is not one of the
// model's classes are left out with a warning.
func TestMulticlassPerformance(t *testing.T) {
	labels := []float64{0, 1, 2, 2, 1, 0, 7, 1}
	preds := []float64{0, 2, 2, 2, 1, 1, 0, 0.5}
	var warnings []string
	got := multiclassPerformance(labels, preds, 3, &warnings)
	want := metrics.MulticlassPredicted(labels[:6], preds[:6], 3)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "2 labelled rows left out") {
		t.Errorf("warnings %q, want one about the 2 rows left out", warnings)
	}
	warnings = nil
	if got := multiclassPerformance([]float64{5}, []float64{0}, 3, &warnings); len(got) != 0 || len(warnings) != 1 {
		t.Errorf("no valid row: metrics %v, warnings %q", got, warnings)
	}
}
