package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/workflows"
)

// TestShadowGatesCanary runs deploy steps with a shadow phase on a real
// model server under live traffic: a worse candidate (fails on rows with a
// missing value, predictions pulled to the base rate) is refused while it
// only shadows, so it never answers a request; a good one passes the
// shadow, then its canary, and is promoted.
func TestShadowGatesCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	data := filepath.Join(repoRoot, "data", "breast_cancer.csv")
	spec := strings.Replace(canarySpec, "name: canary-e2e", "name: shadow-e2e", 1)
	spec = strings.Replace(spec, "with: {model: bc-canary}", "with: {model: bc-shadow}", 1)
	spec = strings.Replace(spec, "      min_requests: 20\n", "      min_requests: 20\n      shadow: {min_agreement: 0.9, min_requests: 100}\n", 1)
	write := func(name, impute string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, fmt.Appendf(nil, spec, data, impute), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "        - impute: {columns: [\"*\"], strategy: mean}\n")
	bad := write("bad.yaml", "")
	const model = "bc-shadow"

	run1 := runPipeline(t, st, st.Home, good)
	if run1.Status != workflows.StatusCompleted {
		t.Fatalf("run 1: %s: %s", run1.Status, run1.Error)
	}
	rows := csvRows(t, data)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for i := range rows {
		delete(rows[i], "malignant")
		if i%10 == 0 {
			rows[i]["mean_radius"] = nil
		}
	}
	tr := startTraffic(st.ServerURL, model, rows, 200)
	defer tr.stop()

	run2, _ := kiln(t, st, st.Home, "run", bad, "--wait", "--json", "-p", "l2=30", "-p", "seed=7")
	cs := canaryResult(t, st, model)
	if cs.Deployment.Promoted || cs.Shadow == nil || !strings.HasPrefix(cs.Deployment.Reason, "shadow") {
		t.Fatalf("run 2 (%.200s): deployment %+v", run2, cs.Deployment)
	}
	if len(cs.Steps) != 0 {
		t.Errorf("the refused candidate had %d canary analyses, want none", len(cs.Steps))
	}
	t.Logf("run 2 refused in shadow after %d analyses: %s", cs.ShadowLooks, cs.Deployment.Reason)
	stats, ok := st.Server.Stats(model)
	if !ok {
		t.Fatal("no stats")
	}
	for _, v := range stats.Variants {
		if v.Version == 2 {
			t.Errorf("v2 answered %d requests while it only shadowed", v.Requests)
		}
	}
	if len(stats.Shadows) != 1 || stats.Shadows[0].Version != 2 || stats.Shadows[0].Requests == 0 {
		t.Errorf("shadow stats %+v, want v2's mirrored requests", stats.Shadows)
	}

	run3 := runPipeline(t, st, st.Home, good, "seed=11")
	if run3.Status != workflows.StatusCompleted {
		t.Fatalf("run 3: %s: %s", run3.Status, run3.Error)
	}
	cs = canaryResult(t, st, model)
	dep := run3.Artifacts().Deployment
	if dep == nil || !dep.Promoted || dep.Version != 3 || dep.Shadow == nil || dep.Shadow.Decision != "pass" || len(cs.Steps) == 0 {
		t.Fatalf("run 3 deployment %+v (canary analyses %d)", dep, len(cs.Steps))
	}
	t.Logf("run 3 passed the shadow (agreement %.3f over %d rows) and %d canary analyses", dep.Shadow.Agreement, dep.Shadow.Rows, len(cs.Steps))
	// kiln runs compare lays the two good runs side by side.
	cmpOut, err := kiln(t, st, st.Home, "runs", "compare", run1.WorkflowID, run3.WorkflowID, "--json")
	var cmp cli.Comparison
	if err != nil || json.Unmarshal([]byte(cmpOut), &cmp) != nil || len(cmp.Runs) != 2 {
		t.Fatalf("kiln runs compare: %v\n%s", err, cmpOut)
	}
	for _, f := range cmp.Fields {
		if f.Name == "model" && (f.Values[0] != model+":1" || f.Values[1] != model+":3" || !f.Differs) {
			t.Errorf("compare: model %+v", f)
		}
	}
	out, err := kiln(t, st, st.Home, "runs", "show", run3.WorkflowID)
	if err != nil || !strings.Contains(out, "Shadow   v3 beside v1") || !strings.Contains(out, "agreement") {
		t.Errorf("kiln runs show: %v\n%s", err, out)
	}
}
