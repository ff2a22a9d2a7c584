package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/pipelines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// repoRoot is the repository's root, relative to this package.
const repoRoot = "../.."

// result is what one kiln command line did.
type result struct {
	stdout, stderr string
	err            error
}

// kiln runs the command line in-process. It adds --home to a temporary
// directory unless args set it, so no test touches ./.kiln.
func kiln(t *testing.T, args ...string) result {
	t.Helper()
	home := false
	for _, a := range args {
		if a == "--home" || strings.HasPrefix(a, "--home=") {
			home = true
		}
	}
	if !home {
		args = append([]string{"--home", t.TempDir()}, args...)
	}
	var stdout, stderr bytes.Buffer
	err := cli.Run(context.Background(), args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// exitCode is the process exit code of r: 0 on success.
func (r result) exitCode() int {
	if r.err == nil {
		return 0
	}
	return cli.ExitCode(r.err)
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// exampleSpecs are the specs shipped in pipelines/.
func exampleSpecs(t *testing.T) []string {
	t.Helper()
	specs, err := filepath.Glob(filepath.Join(repoRoot, "pipelines", "*.yaml"))
	if err != nil || len(specs) < 2 {
		t.Fatalf("example specs: %v, %v", specs, err)
	}
	return specs
}

// TestValidateExamples checks that every spec in pipelines/ is valid.
func TestValidateExamples(t *testing.T) {
	specs := exampleSpecs(t)
	r := kiln(t, append([]string{"validate"}, specs...)...)
	if r.err != nil {
		t.Fatalf("kiln validate %v: %v\n%s", specs, r.err, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(specs) || r.stderr != "" {
		t.Fatalf("stdout %q, stderr %q; want one ok line per spec", r.stdout, r.stderr)
	}
	for i, spec := range specs {
		s, err := pipelines.ParseFile(spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := "ok    " + spec + " (pipeline " + s.Name + ", "
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d is %q, want it to start with %q", i, lines[i], want)
		}
	}
}

// problemLine is the text form of one problem: file:line[:col]: [path: ]message.
var problemLine = regexp.MustCompile(`^testdata/invalid/[a-z-]+\.yaml:[1-9][0-9]*(:[1-9][0-9]*)?: ([a-z_\[\]0-9.]+: )?\S.*$`)

// TestValidateInvalid checks the problems reported for the invalid specs in
// testdata/invalid against their golden files.
func TestValidateInvalid(t *testing.T) {
	specs, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no invalid specs: %v", err)
	}
	for _, spec := range specs {
		name := strings.TrimSuffix(filepath.Base(spec), ".yaml")
		t.Run(name, func(t *testing.T) {
			spec := filepath.ToSlash(spec)
			r := kiln(t, "validate", spec)
			if r.exitCode() != 1 || r.stdout != "" {
				t.Fatalf("exit code %d (%v), stdout %q; want 1 and nothing on stdout", r.exitCode(), r.err, r.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			for _, l := range lines {
				if !problemLine.MatchString(l) {
					t.Errorf("problem %q is not file:line:col: path: message", l)
				}
			}
			golden(t, "invalid/"+name+".golden", r.stderr+"exit 1: "+r.err.Error()+"\n")

			// --json reports the same problems, with their positions.
			j := kiln(t, "validate", "--json", spec)
			if j.exitCode() != 1 || j.stderr != "" {
				t.Fatalf("--json: exit code %d (%v), stderr %q", j.exitCode(), j.err, j.stderr)
			}
			var results []struct {
				File     string              `json:"file"`
				Valid    bool                `json:"valid"`
				Problems []pipelines.Problem `json:"problems"`
			}
			if err := json.Unmarshal([]byte(j.stdout), &results); err != nil {
				t.Fatalf("--json output is not JSON: %v\n%s", err, j.stdout)
			}
			if len(results) != 1 || results[0].File != spec || results[0].Valid || len(results[0].Problems) != len(lines) {
				t.Fatalf("--json: %+v; want one invalid result with %d problems", results, len(lines))
			}
			for i, p := range results[0].Problems {
				if p.Error() != lines[i] || p.Line == 0 || p.Message == "" {
					t.Errorf("--json problem %d %+v, text line %q", i, p, lines[i])
				}
			}
		})
	}
}

// TestValidateMixed validates a valid and an invalid spec at once: both are
// reported and the command fails.
func TestValidateMixed(t *testing.T) {
	valid := exampleSpecs(t)[0]
	r := kiln(t, "validate", valid, "testdata/invalid/typos.yaml")
	if r.exitCode() != 1 || !strings.Contains(r.err.Error(), "1 of 2 specs invalid") {
		t.Errorf("exit code %d (%v), want 1 and 1 of 2 specs invalid", r.exitCode(), r.err)
	}
	if !strings.HasPrefix(r.stdout, "ok    "+valid) || !strings.Contains(r.stderr, "typos.yaml:16:11: steps[2].uses:") {
		t.Errorf("stdout %q\nstderr %q", r.stdout, r.stderr)
	}

	j := kiln(t, "validate", "--json", valid, "testdata/invalid/typos.yaml")
	var results []map[string]any
	if err := json.Unmarshal([]byte(j.stdout), &results); err != nil || len(results) != 2 {
		t.Fatalf("--json output %q: %v", j.stdout, err)
	}
	if results[0]["valid"] != true || results[0]["problems"] != nil || results[1]["valid"] != false {
		t.Errorf("--json results %v", results)
	}
}

// TestUsageErrors checks that command lines that cannot work exit with code
// 2 and say why, before doing anything.
func TestUsageErrors(t *testing.T) {
	spec := exampleSpecs(t)[0]
	out := filepath.Join(t.TempDir(), "churn.csv")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"param without =", []string{"validate", spec, "-p", "foo"}, `-p "foo": expected name=value`},
		{"param without name", []string{"validate", spec, "-p", "=3"}, `-p "=3": expected name=value`},
		{"run param without =", []string{"run", spec, "-p", "seed"}, `-p "seed": expected name=value`},
		{"zero rows", []string{"demo-data", "-o", out, "--rows", "0"}, "--rows must be positive, got 0"},
		{"negative rows", []string{"demo-data", "-o", out, "--rows", "-5"}, "--rows must be positive, got -5"},
		{"drift out of range", []string{"demo-data", "-o", out, "--drift", "2"}, "--drift must be between 0 and 1, got 2"},
		{"rows not a number", []string{"demo-data", "-o", out, "--rows", "many"}, `invalid argument "many" for "--rows"`},
		{"unknown flag", []string{"validate", "--strict", spec}, "unknown flag: --strict"},
		{"missing argument", []string{"validate"}, "requires at least 1 arg(s)"},
		{"extra argument", []string{"models", "show", "churn", "churn:2"}, "accepts 1 arg(s), received 2"},
		{"bad status filter", []string{"runs", "list", "--status", "exploded"}, `--status "exploded"`},
		{"unknown subcommand", []string{"runs", "diff"}, `unknown command "diff" for "kiln runs"; its commands are: cancel, compare, list, show`},
		{"misspelt subcommand", []string{"models", "lst"}, "Did you mean this?\n\tlist"},
		{"unknown command", []string{"deploy"}, `unknown command "deploy" for "kiln"`},
		{"unknown nested subcommand", []string{"experiments", "begin"}, `unknown command "begin" for "kiln experiments"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, tt.args...)
			if r.exitCode() != 2 {
				t.Errorf("kiln %v: exit code %d (%v), want 2", tt.args, r.exitCode(), r.err)
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("kiln %v: error %v, want it to mention %q", tt.args, r.err, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("kiln %v wrote %s", tt.args, out)
			}
		})
	}
}

// TestDemoData checks that demo-data writes the requested rows, the same
// bytes for the same options, and other bytes for another seed.
func TestDemoData(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, seed string) []byte {
		t.Helper()
		out := filepath.Join(dir, "sub", name)
		r := kiln(t, "demo-data", "-o", out, "--rows", "100", "--seed", seed)
		if r.err != nil {
			t.Fatalf("demo-data: %v", r.err)
		}
		if want := "wrote 100 rows to " + out + "\n"; r.stdout != want {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, other := write("a.csv", "3"), write("b.csv", "3"), write("c.csv", "4")
	lines := strings.Split(strings.TrimSuffix(string(a), "\n"), "\n")
	if len(lines) != 101 || lines[0] != strings.Join(demodata.ChurnHeader, ",") {
		t.Errorf("%d lines starting %q, want the header and 100 rows", len(lines), lines[0])
	}
	var direct bytes.Buffer
	if err := demodata.WriteChurnCSV(&direct, demodata.ChurnOptions{Rows: 100, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Equal(a, direct.Bytes()) {
		t.Error("the same options gave different bytes")
	}
	if bytes.Equal(a, other) {
		t.Error("seeds 3 and 4 gave the same bytes")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) != 3 {
		t.Errorf("output directory holds %d files, want 3 (no temporary files)", len(entries))
	}
}
