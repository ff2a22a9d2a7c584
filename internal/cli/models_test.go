package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/registry"
)

// populate fills a registry under home: churn versions 1 and 2 (production
// → 1, staging → 2) and breast-cancer version 1.
func populate(t *testing.T, home string) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Open(ctx, filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	versions := []registry.Version{
		{Model: "churn", BundleURI: "file:///artifacts/bundles/aaa", Metrics: map[string]float64{"auc": 0.8123, "accuracy": 0.79, "f1": 0.51},
			Params: map[string]any{"l2": 0.001}, Runtime: "process", Pipeline: "churn", RunID: "pipeline/churn/r1", Step: "register", CreatedBy: "ada"},
		{Model: "churn", BundleURI: "file:///artifacts/bundles/bbb", Metrics: map[string]float64{"auc": 0.8456, "accuracy": 0.81, "f1": 0.55},
			Runtime: "docker", Pipeline: "churn", RunID: "pipeline/churn/r2", Step: "register", CreatedBy: "ada"},
		{Model: "breast-cancer", BundleURI: "file:///artifacts/bundles/ccc", Metrics: map[string]float64{"auc": 0.9989}, Runtime: "process"},
	}
	for _, v := range versions {
		if _, _, err := reg.Register(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []registry.AliasMove{
		{Model: "churn", Alias: "production", To: 1, Actor: "ada", Reason: "first deployment"},
		{Model: "churn", Alias: "staging", To: 2, Actor: "ada", Reason: "registered by pipeline/churn/r2"},
	} {
		if _, err := reg.SetAlias(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestModels checks models list and show against a populated registry.
func TestModels(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	// line matches one line of output, columns separated by runs of spaces.
	line := func(cols ...string) *regexp.Regexp {
		for i, c := range cols {
			cols[i] = regexp.QuoteMeta(c)
		}
		return regexp.MustCompile(`(?m)^` + strings.Join(cols, ` +`) + ` *$`)
	}
	tests := []struct {
		name string
		args []string
		want []*regexp.Regexp
	}{
		{"list", []string{"models", "list"}, []*regexp.Regexp{
			line("MODEL", "VERSIONS", "LATEST", "ALIASES", "UPDATED"),
			regexp.MustCompile(`(?m)^breast-cancer +1 +1 +- +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`),
			regexp.MustCompile(`(?m)^churn +2 +2 +production→1, staging→2 +\d{4}-`),
		}},
		{"versions", []string{"models", "show", "churn"}, []*regexp.Regexp{
			line("VERSION", "CREATED", "AUC", "ACCURACY", "F1", "RUNTIME", "RUN", "ALIASES"),
			regexp.MustCompile(`(?m)^2 +\S+ \S+ +0\.8456 +0\.8100 +0\.5500 +docker +pipeline/churn/r2 +staging$`),
			regexp.MustCompile(`(?m)^1 +\S+ \S+ +0\.8123 +0\.7900 +0\.5100 +process +pipeline/churn/r1 +production$`),
		}},
		{"one version", []string{"models", "show", "churn:1"}, []*regexp.Regexp{
			line("Model", "churn:1 (ready)"),
			regexp.MustCompile(`(?m)^Run +pipeline/churn/r1 \(pipeline churn, step register\)$`),
			line("Aliases", "production"),
			line("  auc", "0.8123"),
			line("  accuracy", "0.79"),
			regexp.MustCompile(`(?m)^Params +l2=0\.001$`),
			regexp.MustCompile(`(?m)^  \S+ \S+ +production +- +1 +ada +first deployment$`),
		}},
		{"by alias", []string{"models", "show", "churn@staging"}, []*regexp.Regexp{
			line("Model", "churn:2 (ready)"),
			line("Aliases", "staging"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, append([]string{"--home", home}, tt.args...)...)
			if r.err != nil {
				t.Fatalf("kiln %v: %v", tt.args, r.err)
			}
			for _, re := range tt.want {
				if !re.MatchString(r.stdout) {
					t.Errorf("kiln %v: no line matches %s in\n%s", tt.args, re, r.stdout)
				}
			}
		})
	}
}

// TestModelsJSON decodes the --json output of models list and show.
func TestModelsJSON(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	decode := func(args []string, v any) {
		t.Helper()
		r := kiln(t, append([]string{"--home", home, "--json"}, args...)...)
		if r.err != nil {
			t.Fatalf("kiln %v: %v", args, r.err)
		}
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("kiln %v --json: %v\n%s", args, err, r.stdout)
		}
	}
	var models []registry.ModelSummary
	decode([]string{"models", "list"}, &models)
	if len(models) != 2 || models[1].Name != "churn" || models[1].Versions != 2 || models[1].Aliases["production"] != 1 {
		t.Errorf("models list --json: %+v", models)
	}
	var versions []registry.Version
	decode([]string{"models", "show", "churn"}, &versions)
	if len(versions) != 2 || versions[0].Version != 2 || versions[1].Metrics["auc"] != 0.8123 {
		t.Errorf("models show churn --json: %+v", versions)
	}
	var one struct {
		Version      registry.Version      `json:"version"`
		AliasHistory []registry.AliasEvent `json:"alias_history"`
	}
	decode([]string{"models", "show", "churn@production"}, &one)
	if one.Version.Version != 1 || one.Version.BundleURI != "file:///artifacts/bundles/aaa" || len(one.AliasHistory) != 2 {
		t.Errorf("models show churn@production --json: %+v", one)
	}

	var empty []registry.ModelSummary
	emptyHome := t.TempDir()
	reg, err := registry.Open(context.Background(), filepath.Join(emptyHome, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()
	r := kiln(t, "--home", emptyHome, "--json", "models", "list")
	if err := json.Unmarshal([]byte(r.stdout), &empty); r.err != nil || err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("models list --json on an empty registry: %q, %v, %v", r.stdout, r.err, err)
	}
}

// TestNoRegistryIsNotCreated: a Kiln home without a registry is an error
// naming where Kiln looked, and no empty registry appears there.
func TestNoRegistryIsNotCreated(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{{"models", "list"}, {"models", "show", "churn"}, {"experiments", "list"}, {"labels", "list", "churn"}} {
		r := kiln(t, append([]string{"--home", home}, args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), "no model registry at "+filepath.Join(home, "registry.db")) {
			t.Errorf("kiln %v: %v, want the missing registry named", args, r.err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "registry.db")); !os.IsNotExist(err) {
		t.Errorf("a registry was created: %v", err)
	}
}

// TestModelsErrors checks that references to what does not exist fail with
// a message naming it.
func TestModelsErrors(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	tests := []struct {
		ref  string
		want []string
	}{
		{"churn:99", []string{"churn:99", "not found"}},
		{"churn@canary", []string{"churn@canary", "alias canary", "not found"}},
		{"nope", []string{`model "nope" not found`, "not found"}},
		{"nope:1", []string{"nope", "not found"}},
		{"Bad_Name", []string{"Bad_Name"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r := kiln(t, "--home", home, "models", "show", tt.ref)
			if r.err == nil {
				t.Fatalf("models show %s succeeded:\n%s", tt.ref, r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("models show %s: error %q does not mention %q", tt.ref, r.err, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("models show %s printed %q", tt.ref, r.stdout)
			}
		})
	}
}

// TestHomeDiscovery: without --home or KILN_HOME, the CLI finds the Kiln
// home in a parent directory as git finds .git, so models list from a
// subdirectory sees the project's registry.
func TestHomeDiscovery(t *testing.T) {
	proj := t.TempDir()
	populate(t, filepath.Join(proj, ".kiln"))
	sub := filepath.Join(proj, "notebooks", "week1")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KILN_HOME", "")
	t.Chdir(sub)
	for _, dir := range []string{sub, proj} {
		t.Chdir(dir)
		var out, errOut bytes.Buffer
		if err := cli.Run(context.Background(), []string{"models", "list"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "churn") {
			t.Errorf("models list in %s: %v\n%s", dir, err, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(sub, ".kiln")); !os.IsNotExist(err) {
		t.Errorf("a .kiln appeared in the subdirectory: %v", err)
	}
}

// TestModelsRegressionColumns: a regression's versions show RMSE, MAE and
// R², not empty classification columns.
func TestModelsRegressionColumns(t *testing.T) {
	home := t.TempDir()
	reg, err := registry.Open(context.Background(), filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Register(context.Background(), registry.Version{Model: "price", BundleURI: "file:///b/1",
		Metrics: map[string]float64{"rmse": 1.25, "mae": 0.75, "r2": 0.5}, Params: map[string]any{"l2": 1.0, "max_depth": 6.0}}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	for _, args := range [][]string{{"models", "show", "price"}, {"models", "versions", "price"}} {
		r := kiln(t, append([]string{"--home", home}, args...)...)
		if r.err != nil || !strings.Contains(r.stdout, "RMSE") || !strings.Contains(r.stdout, "R2") || !strings.Contains(r.stdout, "1.2500") || strings.Contains(r.stdout, "AUC") {
			t.Errorf("kiln %v: %v\n%s", args, r.err, r.stdout)
		}
	}
	r := kiln(t, "--home", home, "models", "show", "price:1")
	if !regexp.MustCompile(`(?m)^Params +l2=1 max_depth=6$`).MatchString(r.stdout) {
		t.Errorf("params not printed as key=value:\n%s", r.stdout)
	}
}

// TestModelsMulticlassColumns: a multi-class model's versions show the
// one-vs-rest AUC, accuracy and macro F1.
func TestModelsMulticlassColumns(t *testing.T) {
	home := t.TempDir()
	reg, err := registry.Open(context.Background(), filepath.Join(home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Register(context.Background(), registry.Version{Model: "wine", BundleURI: "file:///b/1",
		Metrics: map[string]float64{"auc_ovr": 0.99, "accuracy": 0.95, "f1_macro": 0.94, "logloss": 0.1}}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	r := kiln(t, "--home", home, "models", "versions", "wine")
	for _, col := range []string{"AUC_OVR", "ACCURACY", "F1_MACRO", "0.9900", "0.9400"} {
		if r.err != nil || !strings.Contains(r.stdout, col) {
			t.Errorf("kiln models versions wine lacks %s (%v):\n%s", col, r.err, r.stdout)
		}
	}
}
