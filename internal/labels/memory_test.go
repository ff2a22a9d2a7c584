package labels

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// TestJoinMemoryBounded joins 10k labels against 2M predictions and checks
// that the heap grows with the labels, not the predictions: holding the
// predictions' IDs, values, versions and times alone would take ~100 MB.
func TestJoinMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2M request log rows; skipped with -short")
	}
	const files, perFile, every = 20, 100_000, 200
	dir := t.TempDir()
	var logs []string
	var labels []labelRow
	rows := make([]logRow, perFile)
	for f := 0; f < files; f++ {
		for i := range rows {
			n := f*perFile + i
			rows[i] = logRow{id: fmt.Sprintf("pred-%08d", n), tenure: float64(i % 50), plan: "basic", pred: float64(i%100) / 100, version: 1,
				at: t0.Add(time.Duration(n) * time.Millisecond)}
			if n%every == 0 {
				labels = append(labels, labelRow{id: rows[i].id, label: float64(i % 2), at: rows[i].at.Add(time.Hour)})
			}
		}
		logs = append(logs, writeLog(t, filepath.Join(dir, fmt.Sprintf("%d-1-1.parquet", f)), rows, true))
	}
	batch := writeBatch(t, filepath.Join(dir, "labels.parquet"), labels)
	rows = nil

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapBytes()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heapBytes())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	res, err := Join(context.Background(), JoinInput{RequestLogs: logs, LabelFiles: []string{batch}, From: t0, To: t0.Add(time.Minute)})
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Predictions != files*perFile || res.Counts.Joined != int64(len(labels)) || res.Counts.Total != int64(len(labels)) {
		t.Fatalf("predictions %d, counts %+v", res.Predictions, res.Counts)
	}
	if want := 60_000 / every; len(res.Pairs) != want {
		t.Errorf("%d pairs in the first minute, want %d", len(res.Pairs), want)
	}
	growth := int64(peak) - int64(base)
	t.Logf("%d predictions, %d labels: joined in %s, heap %.1f MiB → peak %.1f MiB (+%.1f MiB)",
		res.Predictions, len(labels), took.Round(time.Millisecond), float64(base)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	if limit := int64(40 << 20); growth > limit {
		t.Errorf("heap grew by %.1f MiB, want at most %.0f MiB", float64(growth)/(1<<20), float64(limit)/(1<<20))
	}
}

// heapBytes is the memory of heap objects, live or not yet collected.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
