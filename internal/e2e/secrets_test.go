package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/proto"

	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/workflows"
)

// TestSecretsStayOutOfHistory runs pipelines that read their data from an
// S3-compatible object store with the credentials in the worker's
// environment, one that succeeds and one whose object is missing: neither
// the access key nor the secret key appears in any event of any workflow's
// history (inputs, results, memos, search attributes, failures: each event
// is searched in its binary protobuf form, where payloads are stored as
// they are) nor in what the CLI prints.
func TestSecretsStayOutOfHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	srv := s3test.Start(t, "lake")
	const keyID, secret = "AKIAKILNE2ESECRET42", "kiln/s3cr3t+Zq8vN2pLw0rd"
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	data, err := os.ReadFile(filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Put(t, "lake", "bc.csv", data)
	st := startStack(t, false)

	dir := t.TempDir()
	spec := func(name, source string) string {
		path := filepath.Join(dir, name+".yaml")
		body := `apiVersion: kiln/v1
kind: Pipeline
name: ` + name + `
steps:
  - name: ingest
    uses: ingest
    with: {source: "` + source + `"}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with: {target: malignant}
`
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var printed strings.Builder
	ok := runPipeline(t, st, st.Home, spec("secret-ok", srv.URL("lake", "bc.csv")))
	if ok.Status != workflows.StatusCompleted {
		t.Fatalf("the run reading s3: %s: %s", ok.Status, ok.Error)
	}
	out, _ := kiln(t, st, st.Home, "run", spec("secret-missing", srv.URL("lake", "missing.csv")), "--wait", "--json")
	printed.WriteString(out)
	if !strings.Contains(out, "missing.csv") {
		t.Errorf("the failed run does not name the missing object:\n%s", out)
	}
	for _, args := range [][]string{{"runs", "list"}, {"runs", "show", ok.WorkflowID}} {
		o, _ := kiln(t, st, st.Home, args...)
		printed.WriteString(o)
	}
	for _, s := range []string{keyID, secret} {
		if strings.Contains(printed.String(), s) {
			t.Errorf("the CLI printed the credential %q", s)
		}
	}

	ids := listWorkflows(t, st.Client, "")
	if len(ids) < 2 {
		t.Fatalf("%d workflows listed, want the two runs at least", len(ids))
	}
	events := 0
	for _, id := range ids {
		i := strings.LastIndex(id, "/") // workflow IDs hold slashes, run IDs do not
		wid, rid := id[:i], id[i+1:]
		iter := st.Client.GetWorkflowHistory(context.Background(), wid, rid, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", wid, err)
			}
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			events++
			for _, s := range []string{keyID, secret} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("workflow %s, event %d (%s) holds the credential %q", wid, ev.GetEventId(), ev.GetEventType(), s)
				}
			}
		}
	}
	t.Logf("searched %d events of %d workflows", events, len(ids))
}
