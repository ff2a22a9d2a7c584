package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestULIDEncoding checks the encoding against the ULID specification's
// example and round trips of the time part.
func TestULIDEncoding(t *testing.T) {
	// The spec's example; its first 10 characters, 0 1 A R Z 3 N D E K,
	// are the digits 0 1 10 24 31 3 21 13 14 19 in base 32: 1469922850259.
	if got, ok := PredictionIDTime("01ARZ3NDEKTSV4RRFFQ69G5FAV"); !ok || got.UnixMilli() != 1469922850259 {
		t.Errorf("time of the spec's example: %v %v, want 1469922850259", got.UnixMilli(), ok)
	}
	tests := []struct {
		hi, lo uint64
		want   string
	}{
		{0, 0, "00000000000000000000000000"},
		{0, 1, "00000000000000000000000001"},
		{0, 31, "0000000000000000000000000Z"},
		{0, 32, "00000000000000000000000010"},
		{^uint64(0), ^uint64(0), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{1469922850259 << 16, 0, "01ARZ3NDEK0000000000000000"},
	}
	for _, tt := range tests {
		if got := encodeULID(tt.hi, tt.lo); got != tt.want {
			t.Errorf("encodeULID(%#x, %#x) = %s, want %s", tt.hi, tt.lo, got, tt.want)
		}
	}
	for _, ms := range []int64{0, 1, 1469922850259, time.Now().UnixMilli(), 1<<48 - 1} {
		id := encodeULID(uint64(ms)<<16|0xbeef, 0x0123456789abcdef)
		if got, ok := PredictionIDTime(id); !ok || got.UnixMilli() != ms {
			t.Errorf("PredictionIDTime(%s) = %d %v, want %d", id, got.UnixMilli(), ok, ms)
		}
		if got, ok := PredictionIDTime(strings.ToLower(id)); !ok || got.UnixMilli() != ms {
			t.Errorf("lower case %s: %d %v, want %d", id, got.UnixMilli(), ok, ms)
		}
	}
	for _, bad := range []string{"", "req-1", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"} {
		if _, ok := PredictionIDTime(bad); ok {
			t.Errorf("PredictionIDTime(%q) accepted", bad)
		}
	}
}

// TestGeneratorMonotonic checks that generated IDs strictly increase, in the
// same millisecond, across milliseconds and when the clock steps back.
func TestGeneratorMonotonic(t *testing.T) {
	now := time.Now()
	var ids []string
	for _, at := range []time.Time{now, now, now.Add(time.Millisecond), now.Add(-time.Second), now.Add(2 * time.Millisecond)} {
		batch := make([]string, 3)
		newPredictionIDs(at, batch)
		ids = append(ids, batch...)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("id %d %s does not follow %s", i, ids[i], ids[i-1])
		}
	}
	// Stepping back does not move the time back.
	t9, _ := PredictionIDTime(ids[9])
	t8, _ := PredictionIDTime(ids[8])
	if t9.Before(t8) {
		t.Errorf("time went back: %v after %v", t9, t8)
	}
	// A run of IDs that would pass 2^80 in the random part moves to the
	// next millisecond. (The generator's state is set by hand, and put back.)
	idGen.mu.Lock()
	saved := [3]uint64{idGen.ms, idGen.hi, idGen.lo}
	idGen.mu.Unlock()
	future := uint64(now.Add(time.Hour).UnixMilli())
	for _, lo := range []uint64{^uint64(0) - 2, ^uint64(0)} {
		idGen.mu.Lock()
		idGen.ms, idGen.hi, idGen.lo = future, 0xffff, lo
		idGen.mu.Unlock()
		run := make([]string, 5)
		newPredictionIDs(now, run)
		for i, id := range run {
			at, _ := PredictionIDTime(id)
			if uint64(at.UnixMilli()) != future+1 {
				t.Errorf("lo %#x: id %d %s has time %d, want %d", lo, i, id, at.UnixMilli(), future+1)
			}
			if i > 0 && id <= run[i-1] {
				t.Errorf("lo %#x: id %s does not follow %s", lo, id, run[i-1])
			}
		}
		if next := NewPredictionID(); next <= run[4] {
			t.Errorf("lo %#x: next id %s does not follow the run's last %s", lo, next, run[4])
		}
	}
	// A run crossing 2^64 carries into the high bits, same millisecond.
	idGen.mu.Lock()
	idGen.ms, idGen.hi, idGen.lo = future, 5, ^uint64(0)-1
	idGen.mu.Unlock()
	run := make([]string, 4)
	newPredictionIDs(now, run)
	want := []string{encodeULID(future<<16|5, ^uint64(0)), encodeULID(future<<16|6, 0), encodeULID(future<<16|6, 1), encodeULID(future<<16|6, 2)}
	if !slices.Equal(run, want) {
		t.Errorf("run across 2^64: %v, want %v", run, want)
	}
	if next := NewPredictionID(); next != encodeULID(future<<16|6, 3) {
		t.Errorf("after the run: %s, want %s", next, encodeULID(future<<16|6, 3))
	}
	idGen.mu.Lock()
	idGen.ms, idGen.hi, idGen.lo = saved[0], saved[1], saved[2]
	idGen.mu.Unlock()

	// The process-wide generator is shared by concurrent callers.
	const workers, each = 4, 25000
	all := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				all[w] = append(all[w], NewPredictionID())
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for w, ids := range all {
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			if i > 0 && id <= ids[i-1] {
				t.Fatalf("worker %d: id %s does not follow %s", w, id, ids[i-1])
			}
		}
	}
}

// TestGeneratedIDsOverHTTP sends 100,000 predictions to a real server (100
// requests of 1,000 instances, 4 concurrent clients, then sequential
// requests): every prediction gets a ULID, all are unique, each encodes a
// time within its request's, IDs within a response increase, and the IDs of
// a later request sort after those of an earlier one.
func TestGeneratedIDsOverHTTP(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	rows := make([]map[string]any, 1000)
	for i := range rows {
		rows[i] = map[string]any{"charges": float64(i), "plan": "pro"}
	}
	body := []byte(predictV1Body(t, rows))
	type answer struct {
		ids           []string
		before, after int64
	}
	post := func() (answer, error) {
		a := answer{before: time.Now().UnixMilli()}
		resp, err := http.Post(ts.URL+"/v1/models/churn:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return a, err
		}
		defer resp.Body.Close()
		var r PredictResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
			return a, fmt.Errorf("status %d, %v", resp.StatusCode, err)
		}
		a.after = time.Now().UnixMilli()
		if len(r.PredictionIDs) != len(r.Predictions) || len(r.Predictions) != len(rows) {
			return a, fmt.Errorf("%d ids for %d predictions", len(r.PredictionIDs), len(r.Predictions))
		}
		a.ids = r.PredictionIDs
		return a, nil
	}
	const concurrent, sequential = 80, 20
	answers := make([]answer, concurrent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= concurrent {
					return
				}
				a, err := post()
				if err != nil {
					t.Error(err)
					return
				}
				answers[i] = a
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for range sequential {
		a, err := post()
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, a)
	}

	seen := make(map[string]bool, 100000)
	for i, a := range answers {
		for j, id := range a.ids {
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			at, ok := PredictionIDTime(id)
			if !ok {
				t.Fatalf("%q is not a ULID", id)
			}
			if ms := at.UnixMilli(); ms < a.before || ms > a.after {
				t.Fatalf("id %s has time %d outside its request's %d..%d", id, ms, a.before, a.after)
			}
			if j > 0 && id <= a.ids[j-1] {
				t.Fatalf("request %d: id %d %s does not follow %s", i, j, id, a.ids[j-1])
			}
		}
		if i > concurrent {
			if prev := answers[i-1].ids; a.ids[0] <= prev[len(prev)-1] {
				t.Errorf("request %d's first id %s sorts before the previous request's last %s", i, a.ids[0], prev[len(prev)-1])
			}
		}
	}
	if len(seen) != 100000 {
		t.Errorf("%d ids, want 100000", len(seen))
	}
	// Sorted as strings, the IDs are sorted by time.
	all := make([]string, 0, len(seen))
	for id := range seen {
		all = append(all, id)
	}
	slices.Sort(all)
	var last time.Time
	for _, id := range all {
		at, _ := PredictionIDTime(id)
		if at.Before(last) {
			t.Fatalf("id %s (%v) sorts after an id of %v", id, at, last)
		}
		last = at
	}
}

// TestClientPredictionIDs checks that client-supplied IDs are echoed in v1
// and v2 answers and recorded in the request log, and when IDs are
// generated instead.
func TestClientPredictionIDs(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	rows := instances[:3]
	long := strings.Repeat("é", MaxPredictionIDBytes/2) // 128 bytes
	tests := []struct {
		name     string
		path     string
		body     func(t *testing.T) string
		wantIDs  []string // nil: generated
		wantRows int
	}{
		{"v1 ids", "/v1/models/churn:predict", func(t *testing.T) string {
			return mustJSON(t, map[string]any{"instances": rows, "ids": []string{"a-1", "a-2", "a-3"}})
		}, []string{"a-1", "a-2", "a-3"}, 3},
		{"v1 ids of 128 bytes", "/v1/models/churn:predict", func(t *testing.T) string {
			return mustJSON(t, map[string]any{"instances": rows[:1], "ids": []string{long}})
		}, []string{long}, 1},
		{"v1 null ids", "/v1/models/churn:predict", func(t *testing.T) string {
			return mustJSON(t, map[string]any{"instances": rows, "ids": nil})
		}, nil, 3},
		{"v1 without ids", "/v1/models/churn:predict", func(t *testing.T) string { return predictV1Body(t, rows) }, nil, 3},
		{"v2 parameters", "/v2/models/churn/infer", func(t *testing.T) string {
			return v2BodyParams(t, "req-9", rows, map[string]any{"prediction_ids": []string{"x", "y", "z"}, "other": 1})
		}, []string{"x", "y", "z"}, 3},
		{"v2 one row, request id", "/v2/models/churn/infer", func(t *testing.T) string { return v2Body(t, "req-1", rows[:1]) }, []string{"req-1"}, 1},
		{"v2 one row, parameters before id", "/v2/models/churn/infer", func(t *testing.T) string {
			return v2BodyParams(t, "req-2", rows[:1], map[string]any{"prediction_ids": []string{"p-1"}})
		}, []string{"p-1"}, 1},
		{"v2 many rows, request id", "/v2/models/churn/infer", func(t *testing.T) string { return v2Body(t, "req-3", rows) }, nil, 3},
		{"v2 without ids", "/v2/models/churn/infer", func(t *testing.T) string { return v2Body(t, "", rows) }, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, Logger: quietLogger})
			deploy(t, s, "churn", stable(1, uri))
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			resp, err := http.Post(ts.URL+tt.path, "application/json", strings.NewReader(tt.body(t)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var ids []string
			var preds int
			if strings.HasPrefix(tt.path, "/v1/") {
				var r PredictResponse
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				ids, preds = r.PredictionIDs, len(r.Predictions)
			} else {
				var r v2Response
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				ids, preds = r.Parameters.PredictionIDs, len(r.Outputs[0].Data)
			}
			if preds != tt.wantRows || len(ids) != tt.wantRows {
				t.Fatalf("%d predictions and %d ids, want %d: %s", preds, len(ids), tt.wantRows, b)
			}
			if tt.wantIDs != nil && !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("ids %q, want %q", ids, tt.wantIDs)
			}
			if tt.wantIDs == nil {
				for _, id := range ids {
					if _, ok := PredictionIDTime(id); !ok {
						t.Errorf("generated id %q is not a ULID", id)
					}
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, logged := readLogs(t, dir, "churn")
			var got []string
			for _, r := range logged {
				got = append(got, r[LogPredictionID].(string))
			}
			if !slices.Equal(got, ids) {
				t.Errorf("logged ids %q, answered %q", got, ids)
			}
		})
	}
}

// v2BodyParams is v2Body with request parameters.
func v2BodyParams(t *testing.T, id string, rows []map[string]any, params map[string]any) string {
	t.Helper()
	var req map[string]any
	if err := json.Unmarshal([]byte(v2Body(t, id, rows)), &req); err != nil {
		t.Fatal(err)
	}
	req["parameters"] = params
	return mustJSON(t, req)
}

// TestBadPredictionIDs checks that bad IDs are refused with 400 and the
// protocol's error body, before the model runs (nothing is counted or
// logged).
func TestBadPredictionIDs(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	rows := instances[:2]
	many := make([]map[string]any, 40)
	manyIDs := make([]string, 40)
	for i := range many {
		many[i] = map[string]any{"charges": float64(i)}
		manyIDs[i] = fmt.Sprintf("id-%d", i)
	}
	manyIDs[37] = "id-5"
	v1 := func(rows []map[string]any, ids any) func(t *testing.T) string {
		return func(t *testing.T) string { return mustJSON(t, map[string]any{"instances": rows, "ids": ids}) }
	}
	v2 := func(id string, rows []map[string]any, ids any) func(t *testing.T) string {
		return func(t *testing.T) string {
			return v2BodyParams(t, id, rows, map[string]any{"prediction_ids": ids})
		}
	}
	tooLong := strings.Repeat("x", MaxPredictionIDBytes+1)
	tests := []struct {
		name    string
		path    string
		body    func(t *testing.T) string
		wantMsg []string
	}{
		{"v1 fewer ids", "/v1/models/churn:predict", v1(rows, []string{"a"}), []string{"ids has 1 IDs for 2 rows"}},
		{"v1 more ids", "/v1/models/churn:predict", v1(rows, []string{"a", "b", "c"}), []string{"ids", "3 IDs for 2 rows"}},
		{"v1 empty ids", "/v1/models/churn:predict", v1(rows, []string{}), []string{"ids", "0 IDs for 2 rows"}},
		{"v1 empty id", "/v1/models/churn:predict", v1(rows, []string{"a", ""}), []string{"ids[1] is empty"}},
		{"v1 id too long", "/v1/models/churn:predict", v1(rows, []string{tooLong, "b"}), []string{"ids[0]", "129 bytes", "at most 128"}},
		{"v1 duplicate", "/v1/models/churn:predict", v1(rows, []string{"a", "a"}), []string{"ids[1] repeats ids[0]", `"a"`}},
		{"v1 duplicate among many", "/v1/models/churn:predict", v1(many, manyIDs), []string{"ids[37] repeats ids[5]", `"id-5"`}},
		{"v1 control character", "/v1/models/churn:predict", v1(rows, []string{"a\nb", "c"}), []string{"ids[0]", "control character"}},
		{"v1 id not a string", "/v1/models/churn:predict", v1(rows, []any{"a", 2}), []string{"decoding request body", "ids"}},
		{"v1 ids not an array", "/v1/models/churn:predict", v1(rows, "a"), []string{"decoding request body", "ids"}},
		{"v2 fewer ids", "/v2/models/churn/infer", v2("", rows, []string{"a"}), []string{"parameters.prediction_ids", "1 IDs for 2 rows"}},
		{"v2 empty ids", "/v2/models/churn/infer", v2("", rows, []string{}), []string{"parameters.prediction_ids", "0 IDs for 2 rows"}},
		{"v2 duplicate", "/v2/models/churn/infer", v2("", rows, []string{"q", "q"}), []string{"parameters.prediction_ids[1] repeats parameters.prediction_ids[0]"}},
		{"v2 id too long", "/v2/models/churn/infer", v2("", rows, []string{"a", tooLong}), []string{"parameters.prediction_ids[1]", "129 bytes"}},
		{"v2 empty id", "/v2/models/churn/infer", v2("r", rows[:1], []string{""}), []string{"parameters.prediction_ids[0] is empty"}},
		{"v2 request id too long for a one-row request", "/v2/models/churn/infer", func(t *testing.T) string { return v2Body(t, tooLong, rows[:1]) }, []string{"id is 129 bytes", "prediction ID"}},
		{"v2 parameters not an object", "/v2/models/churn/infer", func(t *testing.T) string {
			return `{"inputs":[{"name":"charges","data":[1]}],"parameters":[1]}`
		}, []string{"decoding request body"}},
	}
	dir := t.TempDir()
	s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, Logger: quietLogger})
	deploy(t, s, "churn", stable(1, uri))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(ts.URL+tt.path, "application/json", strings.NewReader(tt.body(t)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e map[string]string
			if err := json.Unmarshal(b, &e); err != nil || len(e) != 1 || e["error"] == "" {
				t.Fatalf("answer %s is not {\"error\": message}", b)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(e["error"], want) {
					t.Errorf("error %q does not mention %q", e["error"], want)
				}
			}
		})
	}
	if st, _ := s.Stats("churn"); len(st.Variants) != 0 {
		t.Errorf("refused requests were counted: %+v", st.Variants)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files, _ := RequestLogFiles(dir, "churn", time.Time{}); len(files) != 0 {
		t.Errorf("refused requests were logged: %v", files)
	}
}
