package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDenseMatchesRows: v1 predict requests answered from a dense matrix
// (dense.go) get the same answers, and leave the same request log, as the
// same requests through the row maps, including the bodies the dense parser
// leaves to the maps.
func TestDenseMatchesRows(t *testing.T) {
	uri1, uri2 := gbdtBundle(t, 1), gbdtBundle(t, 2)
	var dirs [2]string
	var servers [2]*Server
	for i := range servers {
		dirs[i] = t.TempDir()
		servers[i] = New(Options{RequestLogDir: dirs[i], FlushInterval: time.Hour, MaxInstances: 3, Logger: quietLogger})
		deploy(t, servers[i], "bench", withCanary(1, uri1, 2, uri2, 0))
	}
	dense, rowsOnly := servers[0], servers[1]
	if dense.model("bench").cur.Load().dense == nil {
		t.Fatal("a GBDT deployment over Float64 inputs has no dense layout")
	}
	rowsOnly.model("bench").cur.Load().dense = nil

	inst := func(skip int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for j := range gbdtFeatures {
			if j == skip {
				continue
			}
			if b.Len() > 1 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"f%d":%g`, j, math.Sin(float64(j+skip)))
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	bodies := []struct {
		name, body string
		code       int
	}{
		{"one instance", `{"instances":[` + inst(-1, "") + `]}`, 200},
		{"two instances, null and absent", `{"instances":[` + inst(3, "") + `,` + inst(-1, `,"f7":null`) + `]}`, 200},
		{"duplicate key: last wins", `{"instances":[` + inst(-1, `,"f0":2.5`) + `]}`, 200},
		{"reversed keys and spaces", `{ "instances" : [ {"f29": 1e3, "f0": -0, "f1": 0.5E-2 } ] }`, 200},
		{"empty instance", `{"instances":[{}]}`, 200},
		{"ids", `{"ids":["a","b"],"instances":[` + inst(-1, "") + `,` + inst(5, "") + `]}`, 200},
		{"ids null", `{"instances":[` + inst(-1, "") + `],"ids":null}`, 200},
		{"unknown key", `{"instances":[` + inst(-1, `,"other":1`) + `]}`, 200},
		{"string value", `{"instances":[` + inst(2, `,"f2":"3"`) + `]}`, 0},
		{"boolean value", `{"instances":[` + inst(2, `,"f2":true`) + `]}`, 0},
		{"array instance", `{"instances":[[` + strings.Repeat("1,", gbdtFeatures-1) + `1]]}`, 200},
		{"no instances", `{"instances":[]}`, 400},
		{"too many instances", `{"instances":[{},{},{},{}]}`, 413},
		{"ids of the wrong length", `{"instances":[{}],"ids":["a","b"]}`, 400},
		{"duplicate ids", `{"instances":[{},{}],"ids":["a","a"]}`, 400},
		{"bad JSON", `{"instances":[{"f0":1,}]}`, 400},
		{"trailing data", `{"instances":[{}]} x`, 400},
		{"number out of range", `{"instances":[{"f0":1e999}]}`, 400},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			var got [2]string
			var codes [2]int
			for i, s := range servers {
				rec := serve(t, s.Handler(), "POST", "/v1/models/bench:predict", tt.body, "")
				codes[i] = rec.Code
				got[i] = withoutGeneratedIDs(t, rec.Body.String(), strings.Contains(tt.body, `"ids":[`))
			}
			if codes[0] != codes[1] || got[0] != got[1] {
				t.Fatalf("dense: %d %s\nrows:  %d %s", codes[0], got[0], codes[1], got[1])
			}
			if tt.code != 0 && codes[0] != tt.code {
				t.Fatalf("status %d, want %d: %s", codes[0], tt.code, got[0])
			}
		})
	}
	var logs [2][]logRow
	for i, s := range servers {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		logs[i] = readAnyLogs(t, dirs[i], "bench")
		for _, r := range logs[i] {
			delete(r, LogLatencyMs)
			delete(r, LogTimeMs)
			if id, _ := r[LogPredictionID].(string); len(id) > 2 {
				delete(r, LogPredictionID) // generated
			}
		}
	}
	if len(logs[0]) == 0 || len(logs[0]) != len(logs[1]) {
		t.Fatalf("%d and %d rows logged", len(logs[0]), len(logs[1]))
	}
	for i := range logs[0] {
		if !reflect.DeepEqual(fmt.Sprint(logs[0][i]), fmt.Sprint(logs[1][i])) {
			t.Errorf("log row %d: dense %v, rows %v", i, logs[0][i], logs[1][i])
		}
	}
}

// withoutGeneratedIDs returns an answer with its generated prediction IDs
// left out (kept when the client sent them).
func withoutGeneratedIDs(t *testing.T, body string, clientIDs bool) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return body
	}
	if !clientIDs {
		delete(v, "prediction_ids")
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readAnyLogs reads the request log rows of model in dir, whatever its
// inputs.
func readAnyLogs(t *testing.T, dir, model string) []logRow {
	t.Helper()
	files, err := RequestLogFiles(dir, model, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []logRow
	for _, f := range files {
		rec, err := ReadRequestLog(context.Background(), f, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, recordRows(t, rec)...)
		rec.Release()
	}
	return rows
}
