package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/experiment"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/transform"
)

// writeLogisticBundle writes a logistic bundle of model name over x0..x2
// with weights w and intercept b.
func writeLogisticBundle(t *testing.T, dir, name string, w [3]float64, b float64) {
	t.Helper()
	names := []string{"x0", "x1", "x2"}
	var inputs []dataset.Field
	for _, n := range names {
		inputs = append(inputs, dataset.Field{Name: n, Type: dataset.Float64})
	}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: name, Task: model.TaskBinary, Target: "y", Output: model.OutputProbability,
		Inputs: inputs, Transforms: &transform.Fitted{Inputs: inputs, Features: names},
		Estimator: model.Estimator{Type: model.EstimatorLogistic, File: model.DefaultEstimatorFile},
	}
	est := fmt.Appendf(nil, `{"type":"logistic","features":["x0","x1","x2"],"weights":[%g,%g,%g],"intercept":%g}`, w[0], w[1], w[2], b)
	if err := model.WriteBundle(dir, man, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
}

// kilnAt runs the kiln CLI in this process on a Kiln home and registry,
// without Temporal.
func kilnAt(t *testing.T, home, reg string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), append([]string{"--home", home, "--registry", reg}, args...), &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("kiln %s stderr:\n%s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), err
}

// TestExperimentTwoReplicas runs an A/B experiment on two real kiln serve
// replicas: kiln experiments start deploys it to both; every user meets
// the same variant on either replica and after a replica restarts (it
// restores the experiment from the registry); outcomes posted later by
// prediction ID (the treatment's predictions are right more often) make
// kiln experiments show call the treatment better and keep it; kiln
// experiments stop serves it to everyone.
func TestExperimentTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx := context.Background()
	home := t.TempDir()
	regPath := filepath.Join(home, "registry.db")
	reg, err := registry.Open(ctx, regPath)
	if err != nil {
		t.Fatal(err)
	}
	const model = "ab"
	for i, w := range [][3]float64{{0.5, -1.25, 2}, {1.5, 0.25, -1}} {
		dir := filepath.Join(home, "bundles", fmt.Sprint(i+1))
		writeLogisticBundle(t, dir, "ab", w, 0)
		if _, _, err := reg.Register(ctx, registry.Version{Model: model, BundleURI: artifact.FileURI(dir)}); err != nil {
			t.Fatal(err)
		}
	}
	reg.Close()
	const token = "e2e-token"
	reps := []*replica{
		{addr: freeAddr(t), home: t.TempDir(), reg: regPath, token: token},
		{addr: freeAddr(t), home: t.TempDir(), reg: regPath, token: token},
	}
	for _, r := range reps {
		r.start(t)
		t.Cleanup(func() { r.cancel() })
	}
	servers := "http://" + reps[0].addr + ",http://" + reps[1].addr
	out, err := kilnAt(t, home, regPath, "experiments", "start", "pricing", "--model", model,
		"--variant", "control=1", "--variant", "treatment=2", "--key", "header:X-User-ID",
		"--metric", "accuracy", "--min-effect", "0.05", "--server", servers, "--admin-token", token)
	if err != nil {
		t.Fatalf("kiln experiments start: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	for _, r := range reps {
		if e := r.status(t, model).Deployment.Experiment; e == nil || e.Name != "pricing" || len(e.Variants) != 2 {
			t.Fatalf("replica %s serves %+v", r.addr, r.status(t, model).Deployment)
		}
	}

	// Each user sends one request to each replica: both answer with the
	// same variant.
	type served struct {
		id, variant string
		pred        float64
	}
	var log []served
	variantOf := map[string]string{}
	predict := func(r *replica, user string, row map[string]any) serving.PredictResponse {
		body, _ := json.Marshal(map[string]any{"instances": []map[string]any{row}})
		req, _ := http.NewRequest("POST", "http://"+r.addr+"/v1/models/"+model+":predict", bytes.NewReader(body))
		req.Header.Set("X-User-ID", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pr serving.PredictResponse
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&pr) != nil || len(pr.PredictionIDs) != 1 {
			t.Fatalf("predict: status %d", resp.StatusCode)
		}
		return pr
	}
	rng := rand.New(rand.NewPCG(3, 4))
	users := func(from, to int) {
		for u := from; u < to; u++ {
			user := fmt.Sprintf("user-%d", u)
			row := map[string]any{"x0": rng.NormFloat64(), "x1": rng.NormFloat64(), "x2": rng.NormFloat64()}
			for _, r := range reps {
				pr := predict(r, user, row)
				if v, ok := variantOf[user]; ok && v != pr.Variant {
					t.Fatalf("%s met %s, then %s on %s", user, v, pr.Variant, r.addr)
				}
				variantOf[user] = pr.Variant
				log = append(log, served{pr.PredictionIDs[0], pr.Variant, pr.Predictions[0]})
			}
		}
	}
	users(0, 600)
	// A replica restart restores the experiment from the registry: the
	// users keep their variants.
	reps[1].stop(t)
	reps[1].start(t)
	users(0, 50)
	users(600, 1200)
	counts := map[string]int{}
	for _, v := range variantOf {
		counts[v]++
	}
	if counts["control"] < 480 || counts["treatment"] < 480 {
		t.Errorf("users per variant %v, want about 600 each", counts)
	}
	// Stop both replicas so their request logs are flushed.
	for _, r := range reps {
		r.stop(t)
	}

	// The world labels each prediction: its class at 0.5 with probability
	// 0.8 under the control, 0.95 under the treatment.
	var labelsCSV strings.Builder
	labelsCSV.WriteString("id,label\n")
	for _, s := range log {
		p := 0.8
		if s.variant == "treatment" {
			p = 0.95
		}
		class := 0
		if s.pred >= 0.5 {
			class = 1
		}
		if rng.Float64() >= p {
			class = 1 - class
		}
		fmt.Fprintf(&labelsCSV, "%s,%d\n", s.id, class)
	}
	labelsFile := filepath.Join(t.TempDir(), "outcomes.csv")
	if err := os.WriteFile(labelsFile, []byte(labelsCSV.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := kilnAt(t, home, regPath, "labels", "push", model, labelsFile); err != nil {
		t.Fatalf("kiln labels push: %v\n%s", err, out)
	}

	show := func() cli.ExperimentShow {
		t.Helper()
		out, err := kilnAt(t, home, regPath, "experiments", "show", "pricing", "--json",
			"--request-logs", filepath.Join(reps[0].home, "requests"), "--request-logs", filepath.Join(reps[1].home, "requests"))
		if err != nil {
			t.Fatalf("kiln experiments show: %v\n%s", err, out)
		}
		var s cli.ExperimentShow
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
		return s
	}
	s := show()
	if s.Pairs != len(log) {
		t.Errorf("%d outcomes joined, want %d (labels %+v)", s.Pairs, len(log), s.Labels)
	}
	ctl, trt := s.Report.Results[0], s.Report.Results[1]
	t.Logf("control %d labelled, accuracy %.3f; treatment %d, %.3f, effect %+.3f [%+.3f, %+.3f] need %d: %s",
		ctl.N, ctl.Mean, trt.N, trt.Mean, trt.Effect, trt.Lower, trt.Upper, trt.Need, trt.Verdict)
	if trt.Verdict != experiment.Better || s.Report.Decision != "keep treatment" {
		t.Fatalf("treatment verdict %q (%s), decision %q; want better, keep treatment", trt.Verdict, trt.Note, s.Report.Decision)
	}
	text, err := kilnAt(t, home, regPath, "experiments", "show", "pricing",
		"--request-logs", filepath.Join(reps[0].home, "requests"), "--request-logs", filepath.Join(reps[1].home, "requests"))
	if err != nil || !strings.Contains(text, "Decision: keep treatment") || !strings.Contains(text, "treatment") {
		t.Errorf("kiln experiments show: %v\n%s", err, text)
	}
	t.Logf("kiln experiments show:\n%s", text)

	// Stopping keeps the treatment for everyone, on replicas that start
	// after the stop too.
	for _, r := range reps {
		r.start(t)
	}
	if out, err := kilnAt(t, home, regPath, "experiments", "stop", "pricing", "--keep", "treatment", "--reason", "better by 15 points",
		"--admin-token", token); err != nil {
		t.Fatalf("kiln experiments stop: %v\n%s", err, out)
	}
	for _, r := range reps {
		d := r.status(t, model).Deployment
		if d.Experiment != nil || d.Stable.Version != 2 {
			t.Errorf("replica %s serves %+v after the stop, want v2 alone", r.addr, d)
		}
	}
	list, err := kilnAt(t, home, regPath, "experiments", "list")
	if err != nil || !strings.Contains(list, "kept treatment (v2): better by 15 points") {
		t.Errorf("kiln experiments list: %v\n%s", err, list)
	}
}
