package serving

import (
	"context"
	"fmt"
	"io"
	"sync"
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

// TestRequestLogWriterBehind: while maxQueued files are on their way to the
// log writer child, the server writes the next full buffer itself instead
// of queueing it in memory behind the child, and every row reaches a file
// either way.
func TestRequestLogWriterBehind(t *testing.T) {
	dir := t.TempDir()
	const perFile = 5
	l := newRequestLog(dir, perFile, quietLogger)
	var mu sync.Mutex
	var written []string
	l.written = func(model, path string) {
		mu.Lock()
		written = append(written, path)
		mu.Unlock()
	}
	// The child is a goroutine running the child's loop on pipes, held
	// back until the server has tried to write the second file.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	start, exited := make(chan struct{}), make(chan error, 1)
	go func() {
		<-start
		err := RunLogWriter(context.Background(), inR, outW)
		outW.Close()
		exited <- err
	}()
	l.proc = newLogProc(inW, outR, func() error { return <-exited }, l.written)
	m := &model.Model{Manifest: model.Manifest{Inputs: churnInputs}}
	at := time.UnixMilli(1_700_000_000_000)
	logRows := func(from int) {
		for i := from; i < from+perFile; i++ {
			l.add("churn", 1, "stable", m, []map[string]any{instances[i%len(instances)]}, []float64{float64(i)}, []string{fmt.Sprintf("id-%d", i)}, time.Millisecond, at)
		}
	}
	// maxQueued full buffers go to the child, which does not read yet.
	for k := range maxQueued {
		logRows(k * perFile)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.proc.queued.Load() < maxQueued {
		if time.Now().After(deadline) {
			t.Fatal("the first files never went to the child")
		}
		time.Sleep(time.Millisecond)
	}
	logRows(maxQueued * perFile) // full while the child is behind: written by the server
	for {
		mu.Lock()
		n := len(written)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not write the file the child had no room for")
		}
		time.Sleep(time.Millisecond)
	}
	close(start)
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	const files = maxQueued + 1
	got, rows := readLogs(t, dir, "churn")
	if len(got) != files || len(written) != files {
		t.Fatalf("%d files, %d reported, want %d and %d", len(got), len(written), files, files)
	}
	if len(rows) != files*perFile {
		t.Fatalf("%d rows, want %d", len(rows), files*perFile)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r[LogPredictionID].(string)] = true
	}
	for i := range files * perFile {
		if !seen[fmt.Sprintf("id-%d", i)] {
			t.Errorf("id-%d is not in the log", i)
		}
	}
}
