package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// TestDataHeadAndSchema prints the first rows and the schema of a CSV file
// (read as ingest reads it), as a table and as JSON.
func TestDataHeadAndSchema(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "rows.csv")
	os.WriteFile(csv, []byte("id,plan,charges\n1,pro,20.5\n2,,31\n3,basic,7.25\n"), 0o644)
	r := kiln(t, "data", "head", csv, "-n", "2")
	if r.err != nil || !strings.Contains(r.stdout, "pro") || !strings.Contains(r.stdout, "null") || strings.Contains(r.stdout, "basic") ||
		!strings.Contains(r.stdout, "(2 of 3 rows)") {
		t.Errorf("kiln data head: %v\n%s", r.err, r.stdout)
	}
	r = kiln(t, "--json", "data", "head", csv)
	var rows []map[string]any
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 3 || rows[2]["charges"] != 7.25 || rows[1]["plan"] != nil {
		t.Errorf("kiln data head --json: %v %q", r.err, r.stdout)
	}
	r = kiln(t, "data", "schema", csv)
	if r.err != nil || !strings.Contains(r.stdout, "charges") || !strings.Contains(r.stdout, "float64") || !strings.Contains(r.stdout, "3 rows") {
		t.Errorf("kiln data schema: %v\n%s", r.err, r.stdout)
	}
	if r := kiln(t, "data", "head", filepath.Join(t.TempDir(), "none.parquet")); r.exitCode() != 2 {
		t.Errorf("a missing file: exit %d (%v), want 2", r.exitCode(), r.err)
	}

	// A directory of parts, as the score step writes its output: the first
	// part is shown, and stderr says how many there are.
	dir := t.TempDir()
	for i, body := range []string{"id,x\n1,0.5\n", "id,x\n2,1.5\n"} {
		src := filepath.Join(t.TempDir(), "p.csv")
		os.WriteFile(src, []byte(body), 0o644)
		if _, err := dataset.CSVToParquet(t.Context(), src, filepath.Join(dir, fmt.Sprintf("part-%06d.parquet", i)), dataset.CSVOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r = kiln(t, "data", "head", dir)
	if r.err != nil || !strings.Contains(r.stdout, "0.5") || strings.Contains(r.stdout, "1.5") || !strings.Contains(r.stderr, "holds 2 Parquet files") {
		t.Errorf("kiln data head DIR: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	if r := kiln(t, "data", "schema", t.TempDir()); r.exitCode() != 2 {
		t.Errorf("an empty directory: exit %d (%v), want 2", r.exitCode(), r.err)
	}
}
