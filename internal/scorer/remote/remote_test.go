package remote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer/remote"
)

// TestStageScoreInputs fetches a prefix's Parquet objects into the cache
// once: a second staging reads nothing, a changed object is fetched again
// into a new place, and an empty prefix is ErrNotFound.
func TestStageScoreInputs(t *testing.T) {
	srv := s3test.Start(t, "lake")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	writeParquet(t, a, 0, 3000)
	writeParquet(t, b, 3000, 2000)
	put := func(key, file string) []byte {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(t, "lake", key, data)
		return data
	}
	put("in/a.parquet", a)
	dataB := put("in/b.parquet", b)
	srv.Put(t, "lake", "in/_SUCCESS", []byte("{}"))
	srv.Put(t, "lake", "in/notes.txt", []byte("not data"))
	put("in/deeper/c.parquet", a)

	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "cache")
	var last, total int64
	opts := remote.StageOptions{CacheDir: cache, Progress: func(d, n int64) { last, total = d, n }}
	files, err := remote.Stage(ctx, srv.URL("lake", "in/"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "a.parquet" || filepath.Base(files[1]) != "b.parquet" {
		t.Fatalf("staged %v, want a.parquet and b.parquet", files)
	}
	if got, _ := os.ReadFile(files[1]); string(got) != string(dataB) {
		t.Fatal("staged b.parquet differs from the object")
	}
	if last != total || total == 0 {
		t.Fatalf("progress ended at %d of %d", last, total)
	}
	gets := srv.ObjectGets()
	if gets != 2 {
		t.Fatalf("%d object reads, want 2", gets)
	}

	again, err := remote.Stage(ctx, srv.URL("lake", "in/"), opts)
	if err != nil || again[0] != files[0] || again[1] != files[1] {
		t.Fatalf("second staging %v, %v; want %v", again, err, files)
	}
	if n := srv.ObjectGets(); n != gets {
		t.Fatalf("second staging read %d objects, want none (cached)", n-gets)
	}

	put("in/b.parquet", a) // a new version of b
	changed, err := remote.Stage(ctx, srv.URL("lake", "in/b.parquet"), opts)
	if err != nil || len(changed) != 1 || changed[0] == files[1] {
		t.Fatalf("changed object staged as %v, %v; want a new cache entry", changed, err)
	}

	_, err = remote.Stage(ctx, srv.URL("lake", "empty/"), opts)
	if !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("empty prefix: %v, want ErrNotFound", err)
	}
}

// writeParquet writes rows IDs from firstID to path, 1,000 rows per row group.
func writeParquet(t *testing.T, path string, firstID int64, rows int) {
	t.Helper()
	s := dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}}}
	w, err := dataset.CreateParquet(path, s, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for lo := 0; lo < rows; lo += 1000 {
		ids := make([]int64, min(1000, rows-lo))
		for i := range ids {
			ids[i] = firstID + int64(lo+i)
		}
		rec, err := dataset.NewRecord(s, []arrow.Array{dataset.Int64Array(ids, nil)})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}
