package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// ingestWith runs an ingest step with cfg (without the cache).
func ingestWith(t *testing.T, e *env, cfg pipelines.IngestConfig) (activities.StepOutput, error) {
	t.Helper()
	st := pipelines.Step{Name: "ingest", Uses: pipelines.StepIngest, Ingest: &cfg}
	return e.acts.Ingest(e.ctx, activities.StepInput{Run: activities.RunInfo{Pipeline: "t", WorkflowID: "pipeline/t/1", SpecDir: t.TempDir()}, Step: st, NoCache: true})
}

// ingestLocalCopy writes text to a local file called name and ingests it:
// the dataset that a remote copy of the same bytes must give.
func ingestLocalCopy(t *testing.T, e *env, name, text string) activities.StepOutput {
	t.Helper()
	local := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(local, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ingestWith(t, e, pipelines.IngestConfig{Source: local})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIngestHTTP downloads sources from a local HTTP server: the dataset is
// the one a local copy gives; failures name the status code; the size limit
// holds.
func TestIngestHTTP(t *testing.T) {
	e := newEnv(t)
	text := smallCSV()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/data/small.csv":
			fmt.Fprint(w, text)
		case "/flaky.csv":
			http.Error(w, "try later", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	want := ingestLocalCopy(t, e, "small.csv", text)
	got, err := ingestWith(t, e, pipelines.IngestConfig{Source: srv.URL + "/data/small.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Artifacts.Dataset.SHA256 != want.Artifacts.Dataset.SHA256 {
		t.Errorf("downloaded dataset %s, local copy %s", got.Artifacts.Dataset.SHA256, want.Artifacts.Dataset.SHA256)
	}
	if s := got.Artifacts.Dataset.Source; s != srv.URL+"/data/small.csv" {
		t.Errorf("source %q, want the URL", s)
	}

	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: srv.URL + "/missing.csv"})
	checkAppError(t, err, "InvalidInput", "404", "/missing.csv")
	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: srv.URL + "/flaky.csv"})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want one naming status 503", err)
	}

	defer func(old int64) { activities.MaxDownloadBytes = old }(activities.MaxDownloadBytes)
	activities.MaxDownloadBytes = 10
	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: srv.URL + "/data/small.csv"})
	checkAppError(t, err, "InvalidInput", "more than the limit of 10")
	activities.MaxDownloadBytes = 1 << 30

	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: "azblob://bucket/small.csv", Format: "csv"})
	checkAppError(t, err, "InvalidInput", "unsupported scheme azblob://")

	// Nothing is left of the downloads.
	ents, _ := os.ReadDir(filepath.Join(e.store.Root(), "tmp"))
	for _, ent := range ents {
		t.Errorf("left behind in the store's tmp: %s", ent.Name())
	}
}

// TestIngestS3 fetches sources from an S3-compatible server over real
// HTTP: the same bytes give the same dataset as a local copy (content
// addressing), in every format; a missing object is invalid input naming
// the URL; the size limit holds; nothing is left behind.
func TestIngestS3(t *testing.T) {
	e := newEnv(t)
	srv := s3test.Start(t, "lake")
	text := smallCSV()
	srv.Put(t, "lake", "raw/2026/small.csv", []byte(text))

	want := ingestLocalCopy(t, e, "small.csv", text)
	uri := srv.URL("lake", "raw/2026/small.csv")
	got, err := ingestWith(t, e, pipelines.IngestConfig{Source: uri})
	if err != nil {
		t.Fatal(err)
	}
	if got.Artifacts.Dataset.SHA256 != want.Artifacts.Dataset.SHA256 {
		t.Errorf("dataset from S3 %s, from the local copy %s", got.Artifacts.Dataset.SHA256, want.Artifacts.Dataset.SHA256)
	}
	if s := got.Artifacts.Dataset.Source; s != uri {
		t.Errorf("source %q, want the object URL %q", s, uri)
	}

	// A Parquet object: the dataset ingested above, stored in the bucket.
	pq, err := artifact.Path(want.Artifacts.Dataset.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	srv.Put(t, "lake", "curated/small.parquet", data)
	got, err = ingestWith(t, e, pipelines.IngestConfig{Source: srv.URL("lake", "curated/small.parquet")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Artifacts.Dataset.SHA256 != want.Artifacts.Dataset.SHA256 {
		t.Errorf("Parquet object gives dataset %s, want %s", got.Artifacts.Dataset.SHA256, want.Artifacts.Dataset.SHA256)
	}

	missing := srv.URL("lake", "raw/missing.csv")
	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: missing})
	checkAppError(t, err, "InvalidInput", "object not found", "s3://lake/raw/missing.csv")

	defer func(old int64) { activities.MaxDownloadBytes = old }(activities.MaxDownloadBytes)
	activities.MaxDownloadBytes = 10
	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: uri})
	checkAppError(t, err, "InvalidInput", "more than the limit of 10")
	activities.MaxDownloadBytes = 1 << 30

	ents, _ := os.ReadDir(filepath.Join(e.store.Root(), "tmp"))
	for _, ent := range ents {
		t.Errorf("left behind in the store's tmp: %s", ent.Name())
	}
}

// TestIngestJSONLExpectations ingests JSON Lines with a schema override and
// expectations: a failing run reports every failed check and publishes the
// report; a passing one links it from the dataset.
func TestIngestJSONLExpectations(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	for i := range 50 {
		plan := []string{"basic", "pro"}[i%2]
		age := 20 + i
		if i == 7 {
			plan, age = "gold", 130
		}
		fmt.Fprintf(&b, `{"id": "%d", "age": %d, "plan": %q, "y": %d}`+"\n", i, age, plan, i%2)
	}
	src := filepath.Join(t.TempDir(), "people.jsonl")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := pipelines.IngestConfig{
		Source: src, Format: "jsonl",
		Schema: map[string]string{"id": "int64"},
		Expect: pipelines.Expectations{
			MinRows: 10, NotNull: []string{"id"}, Unique: []string{"id"},
			Ranges:  map[string]pipelines.Range{"age": {Min: ptr(0), Max: ptr(120)}},
			Allowed: map[string][]string{"plan": {"basic", "pro"}},
		},
	}
	_, err := ingestWith(t, e, cfg)
	checkAppError(t, err, "InvalidInput", "2 of 5 expectations failed on 50 rows",
		"range age (in [0, 120]): 1 rows fail; first row 8 = 130", `allowed plan (one of basic, pro): 1 rows fail; first row 8 = "gold"`, "reports/expectations/")

	cfg.Expect.Ranges = map[string]pipelines.Range{"age": {Min: ptr(0), Max: ptr(200)}}
	cfg.Expect.Allowed = map[string][]string{"plan": {"basic", "pro", "gold"}}
	out, err := ingestWith(t, e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds := out.Artifacts.Dataset
	if ds.Schema.Fields[0] != (dataset.Field{Name: "id", Type: dataset.Int64}) {
		t.Errorf("id field %v, want int64 (overridden)", ds.Schema.Fields[0])
	}
	if ds.ExpectationsURI == "" || !artifact.Exists(ds.ExpectationsURI) {
		t.Errorf("expectations report %q missing", ds.ExpectationsURI)
	}
	if !strings.Contains(out.Summary, "5 expectations passed") {
		t.Errorf("summary %q", out.Summary)
	}
}

func ptr(v float64) *float64 { return &v }

// TestIngestParquetBigRowGroup ingests a Parquet file whose one row group
// is larger than a batch: the dataset holds the same rows, in row groups of
// at most dataset.DefaultBatchRows (the copy streams batches, so memory does
// not follow the input's row group size), nulls and strings included.
func TestIngestParquetBigRowGroup(t *testing.T) {
	e := newEnv(t)
	const n = 2*dataset.DefaultBatchRows + 1234
	ids := make([]int64, n)
	xs := make([]float64, n)
	names := make([]string, n)
	valid := make([]bool, n)
	for i := range n {
		ids[i], xs[i], names[i], valid[i] = int64(i), float64(i)/7, fmt.Sprint("c", i%13), i%5 != 0
	}
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}, {Name: "x", Type: dataset.Float64}, {Name: "name", Type: dataset.String}}}
	src := filepath.Join(t.TempDir(), "big.parquet")
	w, err := dataset.CreateParquet(src, schema, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cols := []arrow.Array{dataset.Int64Array(ids, nil), dataset.Float64Array(xs), dataset.StringArray(names, valid)}
	rec := array.NewRecord(schema.Arrow(), cols, n)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}

	out, err := ingestWith(t, e, pipelines.IngestConfig{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	path, err := artifact.Path(out.Artifacts.Dataset.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != n || r.NumRowGroups() != 3 {
		t.Fatalf("dataset has %d rows in %d row groups, want %d in 3", r.NumRows(), r.NumRowGroups(), n)
	}
	all, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Release()
	gotIDs := all.Column(0).(*array.Int64)
	gotX := all.Column(1).(*array.Float64)
	gotNames := all.Column(2).(*array.String)
	for i := range n {
		if gotIDs.Value(i) != ids[i] || gotX.Value(i) != xs[i] || gotNames.IsValid(i) != valid[i] || (valid[i] && gotNames.Value(i) != names[i]) {
			t.Fatalf("row %d: got (%d, %v, %q valid %v), want (%d, %v, %q valid %v)", i,
				gotIDs.Value(i), gotX.Value(i), gotNames.Value(i), gotNames.IsValid(i), ids[i], xs[i], names[i], valid[i])
		}
	}
}
