package serving

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
	"github.com/kiln-ml/kiln/internal/transform"
)

// multiclassBundle writes a three-class multinomial bundle over inputs a
// and b and returns its URI and the loaded model.
func multiclassBundle(t *testing.T) (string, *model.Model) {
	t.Helper()
	fields := []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Float64}}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: "wine", Task: model.TaskMulticlass, Output: model.OutputProbabilities,
		Classes: []string{"red", "rosé", "white"}, Inputs: fields,
		Transforms: &transform.Fitted{Inputs: fields, Features: []string{"a", "b"}},
		Estimator:  model.Estimator{Type: model.EstimatorMultinomial, File: model.DefaultEstimatorFile},
	}
	est := []byte(`{"type":"multinomial","features":["a","b"],"weights":[[1,0],[0,1],[-1,-1]],"intercepts":[0,0.5,0]}`)
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := model.WriteBundle(dir, man, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(dir), m
}

// TestMulticlassAnswers checks what a multi-class model answers on every
// protocol: v1 gives the class index, its name, the probabilities and the
// classes; v2 (REST and gRPC, typed and raw) the prediction, label and
// probabilities outputs, only those asked for when some are; and the
// metadata lists the three outputs.
func TestMulticlassAnswers(t *testing.T) {
	uri, m := multiclassBundle(t)
	srv := New(Options{RequestLogDir: t.TempDir(), FlushInterval: time.Hour, MaxInstances: 100, Logger: quietLogger})
	deploy(t, srv, "wine", stable(3, uri))
	rest, grpcClient := serveBoth(t, srv)
	rows := []map[string]any{{"a": 2.0, "b": 0.0}, {"a": 0.0, "b": 3.0}, {"a": -2.0, "b": -1.5}}
	want, err := m.ScoreRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := []string{"red", "rosé", "white"}

	code, _, body := httpCall(t, "POST", rest+"/v1/models/wine:predict", `{"instances":[{"a":2,"b":0},{"a":0,"b":3},{"a":-2,"b":-1.5}]}`)
	var v1 PredictResponse
	if err := json.Unmarshal(body, &v1); err != nil || code != 200 {
		t.Fatalf("v1: %d %v\n%s", code, err, body)
	}
	if !slices.Equal(v1.Predictions, []float64{0, 1, 2}) || !slices.Equal(v1.Labels, wantLabels) || !slices.Equal(v1.Classes, m.Manifest.Classes) {
		t.Errorf("v1: predictions %v labels %q classes %q", v1.Predictions, v1.Labels, v1.Classes)
	}
	for i, p := range v1.Probabilities {
		if !slices.Equal(p, want.Proba[3*i:3*i+3]) {
			t.Errorf("v1 instance %d: probabilities %v, want %v", i, p, want.Proba[3*i:3*i+3])
		}
	}

	infer := `{"inputs":[{"name":"a","shape":[3],"datatype":"FP64","data":[2,0,-2]},{"name":"b","shape":[3],"datatype":"FP64","data":[0,3,-1.5]}]%s}`
	for _, tc := range []struct {
		name, outputs string
		want          []string
	}{
		{"all", "", []string{"prediction", "label", "probabilities"}},
		{"asked", `,"outputs":[{"name":"label"},{"name":"probabilities"}]`, []string{"label", "probabilities"}},
	} {
		code, _, body := httpCall(t, "POST", rest+"/v2/models/wine/infer", strings.Replace(infer, "%s", tc.outputs, 1))
		var v2 v2InferResponse
		if err := json.Unmarshal(body, &v2); err != nil || code != 200 {
			t.Fatalf("v2 %s: %d %v\n%s", tc.name, code, err, body)
		}
		var names []string
		for _, o := range v2.Outputs {
			names = append(names, o.Name)
			switch o.Name {
			case OutputLabel:
				if !reflect.DeepEqual(o.Data, []any{"red", "rosé", "white"}) || o.Datatype != "BYTES" {
					t.Errorf("v2 %s: label %s %v", tc.name, o.Datatype, o.Data)
				}
			case OutputProbabilities:
				if !slices.Equal(o.Shape, []int{3, 3}) || len(o.Data) != 9 || o.Data[4].(float64) != want.Proba[4] {
					t.Errorf("v2 %s: probabilities shape %v data %v", tc.name, o.Shape, o.Data)
				}
			}
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("v2 %s: outputs %q, want %q", tc.name, names, tc.want)
		}
	}
	code, _, body = httpCall(t, "POST", rest+"/v2/models/wine/infer", strings.Replace(infer, "%s", `,"outputs":[{"name":"proba"}]`, 1))
	if code != 400 || !strings.Contains(string(body), `unknown output \"proba\"`) || !strings.Contains(string(body), "probabilities") {
		t.Errorf("v2 with an unknown output: %d %s", code, body)
	}
	code, _, body = httpCall(t, "GET", rest+"/v2/models/wine", "")
	var md v2ModelMetadata
	if err := json.Unmarshal(body, &md); err != nil || code != 200 || len(md.Outputs) != 3 || !slices.Equal(md.Outputs[2].Shape, []int64{-1, 3}) {
		t.Errorf("v2 metadata: %d %v %+v", code, err, md.Outputs)
	}

	// gRPC, typed contents then raw.
	req := &inferencepb.ModelInferRequest{ModelName: "wine", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{
		{Name: "a", Datatype: "FP64", Shape: []int64{3}, Contents: &inferencepb.InferTensorContents{Fp64Contents: []float64{2, 0, -2}}},
		{Name: "b", Datatype: "FP64", Shape: []int64{3}, Contents: &inferencepb.InferTensorContents{Fp64Contents: []float64{0, 3, -1.5}}},
	}}
	ans, err := grpcClient.ModelInfer(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Outputs) != 3 || ans.Outputs[1].Name != OutputLabel || ans.Outputs[2].Name != OutputProbabilities {
		t.Fatalf("gRPC outputs %v", ans.Outputs)
	}
	var labels []string
	for _, b := range ans.Outputs[1].Contents.BytesContents {
		labels = append(labels, string(b))
	}
	if !slices.Equal(labels, wantLabels) || !slices.Equal(ans.Outputs[2].Contents.Fp64Contents, want.Proba) || !slices.Equal(ans.Outputs[2].Shape, []int64{3, 3}) {
		t.Errorf("gRPC: labels %q probabilities %v shape %v", labels, ans.Outputs[2].Contents.Fp64Contents, ans.Outputs[2].Shape)
	}
	raw := &inferencepb.ModelInferRequest{ModelName: "wine",
		Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{
			{Name: "a", Datatype: "FP64", Shape: []int64{3}}, {Name: "b", Datatype: "FP64", Shape: []int64{3}},
		},
		RawInputContents: [][]byte{rawFloat64s([]float64{2, 0, -2}), rawFloat64s([]float64{0, 3, -1.5})},
		Outputs:          []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: OutputLabel}, {Name: OutputProbabilities}},
	}
	ans, err = grpcClient.ModelInfer(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Outputs) != 2 || len(ans.RawOutputContents) != 2 {
		t.Fatalf("raw gRPC: %d outputs, %d raw contents; want the 2 asked for", len(ans.Outputs), len(ans.RawOutputContents))
	}
	labels = nil
	for b := ans.RawOutputContents[0]; len(b) > 0; {
		n := binary.LittleEndian.Uint32(b)
		labels = append(labels, string(b[4:4+n]))
		b = b[4+n:]
	}
	var probs []float64
	for b := ans.RawOutputContents[1]; len(b) >= 8; b = b[8:] {
		probs = append(probs, math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	if !slices.Equal(labels, wantLabels) || !slices.Equal(probs, want.Proba) {
		t.Errorf("raw gRPC: labels %q probabilities %v", labels, probs)
	}
}

// softmaxBundle writes a multinomial bundle over input a with k classes
// whose most probable class is the integer nearest a + shift (z_k = k·a -
// k²/2 + shift·k), and returns its URI.
func softmaxBundle(t *testing.T, k int, shift float64) string {
	t.Helper()
	fields := []dataset.Field{{Name: "a", Type: dataset.Float64}}
	est := model.Multinomial{Type: model.EstimatorMultinomial, Features: []string{"a"}}
	var classes []string
	for c := range k {
		classes = append(classes, fmt.Sprintf("c%d", c))
		est.Weights = append(est.Weights, []float64{float64(c)})
		est.Intercepts = append(est.Intercepts, -float64(c*c)/2+shift*float64(c))
	}
	data, err := json.Marshal(est)
	if err != nil {
		t.Fatal(err)
	}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: "many", Task: model.TaskMulticlass, Output: model.OutputProbabilities,
		Classes: classes, Inputs: fields, Transforms: &transform.Fitted{Inputs: fields, Features: []string{"a"}},
		Estimator: model.Estimator{Type: model.EstimatorMultinomial, File: model.DefaultEstimatorFile},
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := model.WriteBundle(dir, man, map[string][]byte{model.DefaultEstimatorFile: data}); err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(dir)
}

// TestShadowMulticlass: a multi-class shadow agrees with the live answer
// only on the same class, however large the class index (a class index is
// not a value within 5% of another).
func TestShadowMulticlass(t *testing.T) {
	s := newTestServer(t, Options{})
	d := stable(1, softmaxBundle(t, 30, 0))
	d.Shadow = &Target{Version: 2, BundleURI: softmaxBundle(t, 30, 1)}
	deploy(t, s, "many", d)
	h := s.Handler()
	as := []float64{3, 20, 21, 25, 29}
	for _, a := range as {
		got := decode[PredictResponse](t, serve(t, h, "POST", "/v1/models/many:predict", fmt.Sprintf(`{"instances":[{"a":%g}]}`, a), ""))
		if want := fmt.Sprintf("c%g", a); len(got.Labels) != 1 || got.Labels[0] != want {
			t.Fatalf("a=%g: labels %q, want %s", a, got.Labels, want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.Stats("many")
		if len(st.Shadows) == 1 && st.Shadows[0].Rows == int64(len(as)) {
			// The shadow says a+1 (29 stays 29: there is no class 30).
			if st.Shadows[0].Agreements != 1 {
				t.Errorf("shadow agreements %d, want 1 (only a=29)", st.Shadows[0].Agreements)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shadow stats %+v after 10 s", st.Shadows)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
