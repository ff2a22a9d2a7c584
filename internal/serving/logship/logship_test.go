package logship_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/serving/logship"
)

// TestShipAndFetch: two model server replicas on separate disks ship
// their request logs (one written before the shipper started, as after a
// crash, and one through Written); a worker on a third disk fetches those
// of the window and lists them like its own.
func TestShipAndFetch(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t, "kiln")
	remote := srv.URL("kiln", "artifacts")
	open := func() *artifact.Store {
		s, err := artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: remote})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	write := func(dir, name, body string) string {
		p := filepath.Join(dir, "churn", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now().UnixMilli()
	old := now - 3_600_000
	dirA, dirB := t.TempDir(), t.TempDir()
	write(dirA, name(old, 7, 1), "a-old")
	write(dirA, name(now, 7, 2), "a-backlog")
	shipA := logship.Start(ctx, open(), dirA, "ra", slog.Default())
	shipB := logship.Start(ctx, open(), dirB, "rb", slog.Default())
	shipB.Written("churn", write(dirB, name(now+1, 7, 1), "b-new"))
	shipA.Close()
	shipB.Close()

	worker := open()
	local := t.TempDir()
	since := time.UnixMilli(now - 60_000)
	if err := logship.Fetch(ctx, worker, local, "churn", since); err != nil {
		t.Fatal(err)
	}
	files, err := serving.RequestLogFiles(local, "churn", since)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		got = append(got, string(b))
	}
	if strings.Join(got, ",") != "a-backlog,b-new" {
		t.Fatalf("fetched %v (files %v), want a-backlog,b-new in time order", got, files)
	}
	// Fetching again downloads nothing new and keeps the list.
	if err := logship.Fetch(ctx, worker, local, "churn", since); err != nil {
		t.Fatal(err)
	}
	if again, _ := serving.RequestLogFiles(local, "churn", since); len(again) != 2 {
		t.Fatalf("after a second fetch: %v", again)
	}
}

func name(ms int64, pid, seq int) string {
	return strings.Join([]string{itoa(ms), itoa(int64(pid)), itoa(int64(seq))}, "-") + ".parquet"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
