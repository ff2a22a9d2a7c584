package serving

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzPredict posts arbitrary bodies to the v1 and v2 routes of a server
// with one small model (logging requests): the server must not panic and
// must answer 200, 400, 404 or 413 with a JSON body; a 200 holds one
// probability and one valid, unique prediction ID per row.
func FuzzPredict(f *testing.F) {
	uri, _ := churnBundle(f, 1)
	s := New(Options{MaxInstances: 20, RequestLogDir: f.TempDir(), FlushInterval: 50 * time.Millisecond, FlushRows: 200, Logger: quietLogger})
	f.Cleanup(func() { s.Close() })
	deploy(f, s, "churn", stable(1, uri))
	h := s.Handler()

	for _, seed := range []string{
		`{"instances":[{"plan":"pro","tenure":3,"charges":20.5,"discount":0.1,"active":true}]}`,
		`{"instances":[{"charges":1},{"charges":2,"tenure":null,"plan":"x"},{"charges":-1e308,"tenure":1e308}]}`,
		`{"instances":[{"tenure":"three","charges":1}]}`,
		`{"instances":[{}]}`,
		`{"instances":[null]}`,
		`{"instances":[1,"a",[]]}`,
		`{"instances":[]}`,
		`{"instances":[{"charges":1},{"charges":2}],"ids":["a","b"]}`,
		`{"instances":[{"charges":1},{"charges":2}],"ids":["a","a"]}`,
		`{"instances":[{"charges":1}],"ids":[""]}`,
		`{"instances":[{"charges":1}],"ids":null}`,
		`{"instances":[{"charges":1}],"ids":[1]}`,
		`{"id":"r","inputs":[{"name":"charges","data":[1,2]}],"parameters":{"prediction_ids":["p","q"]}}`,
		`{"id":"r","inputs":[{"name":"charges","data":[1]}],"parameters":{"prediction_ids":null,"x":[1]}}`,
		`{"inputs":[{"name":"charges","data":[1]}],"parameters":{"prediction_ids":["p","q"]}}`,
		`{"inputs":[{"name":"charges","data":[1]}],"parameters":"x"}`,
		`{"instances":`,
		`{"inputs":[{"name":"charges","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"plan","data":["pro",null]}]}`,
		`{"inputs":[{"name":"charges","data":[1,2]},{"name":"tenure","data":[1]}]}`,
		`{"inputs":[{"name":"charges","data":[[1],[2]]}]}`,
		`{"inputs":[]}`,
		`{"id":"r","inputs":[{"name":"plan","shape":[2],"datatype":"BYTES","data":["pro",null]},{"name":"tenure","shape":[2,1],"datatype":"INT64","data":[[1],[2]]},{"name":"charges","shape":[2],"datatype":"FP32","data":[1.5,2]},{"name":"active","shape":[2],"datatype":"BOOL","data":[true,false]}],"outputs":[{"name":"prediction"}]}`,
		`{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[[1,2,3,4,5]]}]}`,
		`{"inputs":[{"name":"charges","shape":[2,2],"datatype":"UINT8","data":[[1,2],[3]]}]}`,
		`{"inputs":[{"name":"charges","shape":[1],"datatype":"FP16","data":[70000]}],"outputs":[{"name":"nope"}]}`,
		`{"instances":[["pro",3,20.5,0.1,true],[null,null,1,null,null]]}`,
		`{"id":"x","inputs":[{"name":"active","data":[true]},{"name":"charges","data":[0]}]} trailing`,
		`[]`,
		`null`,
		``,
		"\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/models/churn:predict", "/v2/models/churn/infer"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s: Content-Type %q", path, ct)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s: answer is not JSON: %q", path, rec.Body)
			}
			if rec.Code != http.StatusOK {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
					t.Fatalf("%s: %d without an error message: %s", path, rec.Code, rec.Body)
				}
				continue
			}
			var preds []float64
			var ids []string
			if path == "/v1/models/churn:predict" {
				var r PredictResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
					t.Fatal(err)
				}
				preds, ids = r.Predictions, r.PredictionIDs
			} else {
				var r v2Response
				if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || len(r.Outputs) != 1 {
					t.Fatalf("%s: answer %s (%v)", path, rec.Body, err)
				}
				for _, v := range r.Outputs[0].Data {
					p, _ := v.(float64)
					preds = append(preds, p)
				}
				ids = r.Parameters.PredictionIDs
			}
			if len(preds) == 0 {
				t.Fatalf("%s: 200 without predictions: %s", path, rec.Body)
			}
			if err := CheckPredictionIDs(ids, len(preds), "prediction_ids"); err != nil {
				t.Fatalf("%s: answered IDs: %v: %s", path, err, rec.Body)
			}
			for _, p := range preds {
				if !(p >= 0 && p <= 1) || math.IsNaN(p) {
					t.Fatalf("%s: prediction %v is not a probability", path, p)
				}
			}
		}
	})
}
