package serving

import (
	"fmt"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// TestRequestLogChunks logs more rows than a chunk holds (logChunkRows),
// in requests that straddle chunk boundaries, and reads them back in order
// from one file with one row group per chunk.
func TestRequestLogChunks(t *testing.T) {
	if 7*1200 <= 2*logChunkRows {
		t.Fatal("the test needs more than two chunks of rows")
	}
	dir := t.TempDir()
	l := newRequestLog(dir, 1<<30, quietLogger)
	m := &model.Model{Manifest: model.Manifest{Inputs: churnInputs}}
	const n = 7 * 1200 // > 2 chunks, in requests of 7 rows
	at := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < n; {
		k := 7
		rows := make([]map[string]any, k)
		preds := make([]float64, k)
		ids := make([]string, k)
		for r := range k {
			rows[r] = instances[(i+r)%len(instances)]
			preds[r] = float64(i + r)
			ids[r] = fmt.Sprintf("id-%d", i+r)
		}
		l.add("churn", 3, "canary", m, rows, preds, ids, time.Millisecond, at)
		i += k
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	files, rows := readLogs(t, dir, "churn")
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	r, err := dataset.OpenParquet(files[0])
	if err != nil {
		t.Fatal(err)
	}
	groups := r.NumRowGroups()
	r.Close()
	if want := (n + logChunkRows - 1) / logChunkRows; groups != want {
		t.Errorf("%d row groups, want %d (one per chunk of %d rows)", groups, want, logChunkRows)
	}
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	for i, got := range rows {
		for name, v := range wantInputs(instances[i%len(instances)]) {
			if got[name] != v {
				t.Fatalf("row %d: %s = %#v, want %#v", i, name, got[name], v)
			}
		}
		if got[LogPrediction] != float64(i) || got[LogPredictionID] != fmt.Sprintf("id-%d", i) || got[LogVersion] != int64(3) ||
			got[LogVariant] != "canary" || got[LogTimeMs] != at.UnixMilli() || got[LogLatencyMs] != 1.0/7 {
			t.Fatalf("row %d: %v", i, got)
		}
	}
}
