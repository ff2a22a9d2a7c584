package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/registry"
)

// TestModelsHistoryAt moves production 1 → 2 → 1 and asks, for a time
// before, between and after the moves, which version was in production.
func TestModelsHistoryAt(t *testing.T) {
	home := t.TempDir()
	populate(t, home) // production → 1 (now)
	afterFirst := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	reg, err := registry.Open(context.Background(), filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetAlias(context.Background(), registry.AliasMove{Model: "churn", Alias: "production", To: 2, Actor: "bob", Reason: "better auc", RunID: "promote/churn/production"}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	time.Sleep(20 * time.Millisecond)
	afterSecond := time.Now().UTC()

	tests := []struct {
		at   time.Time
		want string
	}{
		{afterFirst.Add(-time.Hour), "churn@production was not set at "},
		{afterFirst, "churn@production was version 1 at "},
		{afterSecond, "churn@production was version 2 at "},
	}
	for _, tt := range tests {
		r := kiln(t, "--home", home, "models", "history", "churn", "--alias", "production", "--at", tt.at.Format(time.RFC3339Nano))
		if r.err != nil || !strings.HasPrefix(r.stdout, tt.want) {
			t.Errorf("history --at %s = %q, %v; want %q", tt.at, r.stdout, r.err, tt.want)
		}
	}
	var got struct {
		Version int64 `json:"version"`
		Set     bool  `json:"set"`
	}
	r := kiln(t, "--home", home, "--json", "models", "history", "churn", "--alias", "production", "--at", afterFirst.Format(time.RFC3339Nano))
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Version != 1 || !got.Set {
		t.Errorf("history --at --json = %q (%v)", r.stdout, err)
	}

	// Without --at: every move, with who, why and the workflow.
	r = kiln(t, "--home", home, "models", "history", "churn", "--alias", "production")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.err != nil || len(lines) != 3 || !strings.Contains(lines[2], "bob") || !strings.Contains(lines[2], "better auc") ||
		!strings.Contains(lines[2], "promote/churn/production") {
		t.Errorf("history:\n%s (%v)", r.stdout, r.err)
	}
}

// TestModelsUsageErrors: bad arguments exit with code 2 and say why.
func TestModelsUsageErrors(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"models", "history", "churn", "--alias", "production", "--at", "yesterday"}, "RFC 3339"},
		{[]string{"models", "history", "churn", "--at", "2026-01-02T03:04:05Z"}, "--alias"},
		{[]string{"models", "promote", "churn", "x", "--to", "production", "--reason", "r"}, "positive number"},
		{[]string{"models", "promote", "churn", "2", "--reason", "r"}, "--to"},
		{[]string{"models", "promote", "churn", "2", "--to", "production"}, "--reason"},
		{[]string{"models", "promote", "churn", "2", "--to", "Prod!", "--reason", "r"}, "alias name"},
		{[]string{"models", "lineage", "churn:x"}, "version"},
		{[]string{"models", "diff", "churn:1"}, "arg"},
		{[]string{"models", "versions"}, "arg"},
	}
	for _, tt := range tests {
		r := kiln(t, append([]string{"--home", home}, tt.args...)...)
		if r.exitCode() != 2 || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("kiln %v: exit %d, %v; want exit 2 mentioning %q", tt.args, r.exitCode(), r.err, tt.want)
		}
	}
}

// TestModelsLineageAndDiff registers a version with full lineage and checks
// the chain from source data to aliases, and a diff against another.
func TestModelsLineageAndDiff(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	ctx := context.Background()
	reg, err := registry.Open(ctx, filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := reg.Register(ctx, registry.Version{
		Model: "churn", BundleURI: "file:///artifacts/bundles/ddd", Metrics: map[string]float64{"auc": 0.86},
		Params: map[string]any{"l2": 0.01}, DatasetHash: "d1", SpecHash: "s1", Pipeline: "churn",
		RunID: "pipeline/churn/r3", WorkflowRunID: "tr-3", Step: "register", Runtime: "docker", Image: "sha256:img3",
		TrainerVersion: "kiln-trainer 1.2", CreatedBy: "cy", GitCommit: "abc123", GitDirty: true, SpecText: "name: churn\n",
		Datasets: []registry.DatasetRef{
			{Role: registry.DatasetSource, URI: "file:///data/churn.csv"},
			{Role: registry.DatasetIngested, URI: "file:///artifacts/datasets/d1.parquet", SHA256: "d1", Rows: 7043},
			{Role: registry.DatasetTrain, URI: "file:///artifacts/prep/train.parquet", Rows: 5000},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: "churn", Alias: "production", To: v.Version, Actor: "cy", Reason: "ship", RunID: "promote/churn/production"}); err != nil {
		t.Fatal(err)
	}
	reg.Close()

	r := kiln(t, "--home", home, "models", "lineage", "churn:3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	order := []string{"file:///data/churn.csv", "sha256 d1, 7043 rows", "git commit abc123 (uncommitted changes)",
		"pipeline/churn/r3", "Temporal run tr-3", "sha256:img3", "kiln-trainer 1.2", "churn:3", "churn@production", "ship"}
	pos := 0
	for _, w := range order {
		i := strings.Index(r.stdout[pos:], w)
		if i < 0 {
			t.Fatalf("lineage lacks %q after position %d:\n%s", w, pos, r.stdout)
		}
		pos += i
	}

	var lin struct {
		Version registry.Version         `json:"version"`
		Chain   []struct{ Stage string } `json:"chain"`
	}
	r = kiln(t, "--home", home, "--json", "models", "lineage", "churn@production")
	if err := json.Unmarshal([]byte(r.stdout), &lin); err != nil || lin.Version.SpecText != "name: churn\n" || lin.Chain[0].Stage != "source" {
		t.Errorf("lineage --json: %v\n%s", err, r.stdout)
	}

	r = kiln(t, "--home", home, "models", "diff", "churn:1", "3")
	for _, w := range []string{"params.l2", "0.001", "0.01", "metrics.auc", "0.8123", "0.86 (+0.0477)", "train.image", "sha256:img3", "train.runtime"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("diff lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "status") {
		t.Errorf("diff shows an unchanged field without --all:\n%s", r.stdout)
	}
	// Long values (dataset URIs with their sha256, the image) are shortened
	// so the table fits a 100-column terminal; --json keeps them whole.
	long := strings.Repeat("ab12", 16)
	reg, err = registry.Open(ctx, filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Register(ctx, registry.Version{Model: "churn", BundleURI: "file:///artifacts/bundles/eee", Image: "sha256:" + long,
		Datasets: []registry.DatasetRef{{Role: registry.DatasetIngested, URI: "file:///home/someone/projects/churn/.kiln/artifacts/datasets/" + long + "/data.parquet", SHA256: long}}}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	r = kiln(t, "--home", home, "models", "diff", "churn:3", "4", "--all")
	for _, line := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("diff line of %d columns: %q", n, line)
		}
	}
	if r = kiln(t, "--home", home, "--json", "models", "diff", "churn:3", "4"); !strings.Contains(r.stdout, "sha256:"+long) {
		t.Errorf("diff --json shortened the image:\n%s", r.stdout)
	}
	r = kiln(t, "--home", home, "models", "versions", "churn")
	if r.err != nil || !strings.Contains(r.stdout, "STATUS") || !strings.Contains(r.stdout, "ready") {
		t.Errorf("versions:\n%s %v", r.stdout, r.err)
	}
}
