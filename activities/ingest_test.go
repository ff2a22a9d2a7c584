package activities_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// ingestWith runs an ingest step with cfg (without the cache).
func ingestWith(t *testing.T, e *env, cfg pipelines.IngestConfig) (activities.StepOutput, error) {
	t.Helper()
	st := pipelines.Step{Name: "ingest", Uses: pipelines.StepIngest, Ingest: &cfg}
	return e.acts.Ingest(e.ctx, activities.StepInput{Run: activities.RunInfo{Pipeline: "t", WorkflowID: "pipeline/t/1", SpecDir: t.TempDir()}, Step: st, NoCache: true})
}

// TestIngestHTTP downloads sources from a local HTTP server: the dataset is
// the one a local copy gives; failures name the status code; the size limit
// holds; object stores are rejected as not supported yet.
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

	local := filepath.Join(t.TempDir(), "small.csv")
	if err := os.WriteFile(local, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := ingestWith(t, e, pipelines.IngestConfig{Source: local})
	if err != nil {
		t.Fatal(err)
	}
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

	_, err = ingestWith(t, e, pipelines.IngestConfig{Source: "s3://bucket/small.csv", Format: "csv"})
	checkAppError(t, err, "InvalidInput", "s3:// sources are not supported yet")

	// Nothing is left of the downloads.
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
