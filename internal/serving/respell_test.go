package serving

import (
	"net/http"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// TestRespelledCategoryReported: a value of a string column read as the
// training category with the same number ("2" for "2.0") is predicted as
// that category, and reported in a Kiln-Warning header (v1 and v2) and the
// kiln_category_respelled_total counter.
func TestRespelledCategoryReported(t *testing.T) {
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "code", Type: dataset.String}, {Name: "x", Type: dataset.Float64}, {Name: "y", Type: dataset.Int64}}}
	rec, err := dataset.NewRecord(schema, []arrow.Array{
		dataset.StringArray([]string{"2.0", "3.5", "2.0", "abc"}, nil),
		dataset.Float64Array([]float64{1, 2, 3, 4}),
		dataset.Int64Array([]int64{0, 1, 0, 1}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	cfg := pipelines.PreprocessConfig{Target: "y", Transforms: []pipelines.Transform{{Kind: "onehot", Columns: []string{"code"}}}}
	uri, _ := writeBundle(t, cfg, schema, rec, func(j int) float64 { return float64(j) - 1 }, 0.1)
	s := newTestServer(t, Options{})
	deploy(t, s, "m", stable(1, uri))
	h := s.Handler()

	same := serve(t, h, "POST", "/v1/models/m:predict", `{"instances":[{"code":"2.0","x":1}]}`, "")
	re := serve(t, h, "POST", "/v1/models/m:predict", `{"instances":[{"code":"2","x":1},{"code":2,"x":1}]}`, "")
	if re.Code != http.StatusOK || same.Code != http.StatusOK {
		t.Fatalf("predict: %d %s / %d %s", re.Code, re.Body, same.Code, same.Body)
	}
	if same.Header().Get(WarningHeader) != "" {
		t.Errorf("a value spelled as in training is reported: %q", same.Header().Get(WarningHeader))
	}
	warn := re.Header().Values(WarningHeader)
	if len(warn) != 1 || !strings.Contains(warn[0], `"2" read as category "2.0" (2 rows)`) {
		t.Errorf("warning headers %q", warn)
	}
	pred := func(body string) string {
		_, after, _ := strings.Cut(body, `"predictions":[`)
		p, _, _ := strings.Cut(after, ",")
		p, _, _ = strings.Cut(p, "]")
		return p
	}
	if pred(re.Body.String()) != pred(same.Body.String()) {
		t.Errorf("\"2\" predicted %s, \"2.0\" %s", pred(re.Body.String()), pred(same.Body.String()))
	}
	v2 := serve(t, h, "POST", "/v2/models/m/infer", `{"inputs":[{"name":"code","shape":[1],"datatype":"BYTES","data":["2.00"]},{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}`, "")
	if v2.Code != http.StatusOK || !strings.Contains(v2.Header().Get(WarningHeader), `"2.00" read as category "2.0"`) {
		t.Errorf("v2: %d %s, warning %q", v2.Code, v2.Body, v2.Header().Get(WarningHeader))
	}
	metrics := serve(t, h, "GET", "/metrics", "", "").Body.String()
	if !strings.Contains(metrics, `kiln_category_respelled_total{column="code",model="m"} 3`) {
		t.Errorf("metrics lack the respelled counter (3 rows):\n%s", grepLines(metrics, "respelled"))
	}
}
