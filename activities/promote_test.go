package activities_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
)

// crashChildEnv turns the test binary into a worker that runs one Register
// activity and dies before reporting it (TestRegisterCrashBeforeReporting);
// its value is the registry path.
const crashChildEnv = "KILN_ACTIVITIES_TEST_CRASH_REGISTRY"

// crashInput is the register step both the crashing attempt and the retry run.
func crashInput(t *testing.T) activities.StepInput {
	spec := loadSpec(t, "breast_cancer.yaml")
	reg := step(t, spec, "register")
	reg.Register.Alias = "staging"
	reg.Register.RequireApproval = []string{"production"}
	run := runInfo(spec, "crash")
	run.Git = &activities.GitInfo{Commit: "c0ffee", Dirty: true}
	run.SpecText = "the spec"
	return activities.StepInput{Run: run, Step: reg, Inputs: activities.Artifacts{
		Dataset:  &activities.DatasetRef{URI: "file:///ds.parquet", SHA256: "d5", Rows: 569, Source: "file:///data/bc.csv"},
		Prepared: &activities.PreparedRef{TrainURI: "file:///train.parquet", TrainRows: 400, DatasetSHA256: "d5"},
		Bundle:   &activities.BundleRef{URI: "file:///bundles/crash", Runtime: "process", Image: "sha256:trainer", TrainerVersion: "t1"},
	}}
}

// TestRegisterCrashBeforeReporting: a worker process registers a version
// (and moves its alias) and dies before the activity's completion reaches
// Temporal; the retry in another process finds that version instead of
// adding a second one, and does not move the alias again.
func TestRegisterCrashBeforeReporting(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		ctx := context.Background()
		reg, err := registry.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := (&activities.Activities{Registry: reg}).Register(ctx, crashInput(t))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		os.Stdout.Write(b)
		os.Exit(3) // dies before reporting: no test result, no completion
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegisterCrashBeforeReporting$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child: %v (want exit 3 after registering)\n%s", err, out)
	}
	var first activities.StepOutput
	if err := json.Unmarshal(out, &first); err != nil || first.Artifacts.Model == nil || !first.Artifacts.Model.Created {
		t.Fatalf("child registered %s (%v)", out, err)
	}

	ctx := context.Background()
	reg, err := registry.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	retry, err := (&activities.Activities{Registry: reg}).Register(ctx, crashInput(t))
	if err != nil {
		t.Fatal(err)
	}
	if m := retry.Artifacts.Model; m.Created || m.Version != first.Artifacts.Model.Version {
		t.Errorf("retry = %+v, want version %d again, not created", m, first.Artifacts.Model.Version)
	}
	versions, err := reg.Versions(ctx, "breast-cancer")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Fatalf("%d versions after the crash and retry, want exactly 1", len(versions))
	}
	h, _ := reg.AliasHistory(ctx, "breast-cancer", "staging")
	if len(h) != 1 {
		t.Errorf("%d staging moves, want 1", len(h))
	}
	// The lineage the crashed attempt wrote is complete.
	v := versions[0]
	if v.GitCommit != "c0ffee" || !v.GitDirty || v.SpecText != "the spec" || v.TrainerVersion != "t1" || v.Image != "sha256:trainer" ||
		len(v.Datasets) != 3 || v.Datasets[0].URI != "file:///data/bc.csv" || v.Datasets[1].SHA256 != "d5" ||
		len(v.RequireApproval) != 1 || v.RunID != "pipeline/breast-cancer/crash" {
		t.Errorf("lineage %+v", v)
	}
}
