package activities

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

func csvParquet(t *testing.T, dir, name, text string) string {
	t.Helper()
	csv := filepath.Join(dir, name+".csv")
	if err := os.WriteFile(csv, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, name+".parquet")
	if _, err := dataset.CSVToParquet(context.Background(), csv, pq, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	return pq
}

func TestAppendRows(t *testing.T) {
	dir := t.TempDir()
	base := csvParquet(t, dir, "base", "a,b,c,d,y\n1,1.5,x,true,0\n2,2.5,y,false,1\n")
	// The appended rows lack a and d, carry b as integers and a column the
	// base does not have.
	extra := csvParquet(t, dir, "extra", "b,c,y,other\n7,z,1,q\n8,,0,r\n")
	out := filepath.Join(dir, "out.parquet")
	info, err := appendRows(context.Background(), base, []string{extra}, out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != 4 {
		t.Fatalf("%d rows, want 4", info.Rows)
	}
	r, err := dataset.OpenParquet(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Schema().Names(); len(got) != 6 || got[5] != pipelines.SourceColumn {
		t.Fatalf("columns %v", got)
	}
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	b, _ := dataset.Float64s(rec, "b")
	a, _ := dataset.Float64s(rec, "a")
	c, cValid, _ := dataset.Strings(rec, "c")
	src, _, _ := dataset.Strings(rec, pipelines.SourceColumn)
	if b[2] != 7 || b[3] != 8 || !math.IsNaN(a[2]) || a[0] != 1 {
		t.Errorf("a %v b %v", a, b)
	}
	if c[2] != "z" || cValid[3] {
		t.Errorf("c %v valid %v", c, cValid)
	}
	want := []string{pipelines.SourceTraining, pipelines.SourceTraining, pipelines.SourceAppended, pipelines.SourceAppended}
	for i := range want {
		if src[i] != want[i] {
			t.Errorf("source %v, want %v", src, want)
			break
		}
	}
	// Appending to an appended dataset is refused.
	if _, err := appendRows(context.Background(), out, []string{extra}, filepath.Join(dir, "again.parquet")); err == nil {
		t.Error("appending twice was accepted")
	}
}
