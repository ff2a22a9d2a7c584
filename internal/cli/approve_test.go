package cli_test

import (
	"strings"
	"testing"
)

// noServer is a Temporal address where nothing listens.
const noServer = "127.0.0.1:1"

// TestApproveAndResumeArgs checks kiln approve's and kiln run --resume's
// argument handling without a server: usage errors exit with code 2 before
// anything is dialled; command lines that are fine get as far as dialling.
func TestApproveAndResumeArgs(t *testing.T) {
	spec := exampleSpecs(t)[0]
	tests := []struct {
		name string
		args []string
		code int
		want []string
		// dials is whether the command got as far as connecting.
		dials bool
	}{
		{name: "approve without arguments", args: []string{"approve"}, code: 2, want: []string{"accepts 2 arg(s), received 0"}},
		{name: "approve without a step", args: []string{"approve", "churn/r1", "--reason", "ok"}, code: 2, want: []string{"accepts 2 arg(s), received 1"}},
		{name: "approve without a reason", args: []string{"approve", "churn/r1", "gate"}, code: 2, want: []string{"--reason is required"}},
		{name: "approve with a blank reason", args: []string{"approve", "churn/r1", "gate", "--reason", "  "}, code: 2, want: []string{"--reason is required"}},
		{name: "approve with an unknown flag", args: []string{"approve", "churn/r1", "gate", "--reason", "ok", "--force"}, code: 2, want: []string{"unknown flag: --force"}},
		{name: "reject is a switch", args: []string{"approve", "churn/r1", "gate", "--reason", "ok", "--reject=maybe"}, code: 2, want: []string{`invalid argument "maybe"`}},
		{name: "as needs a name", args: []string{"approve", "churn/r1", "gate", "--reason", "ok", "--as"}, code: 2, want: []string{"flag needs an argument: --as"}},
		{name: "approve dials", args: []string{"approve", "churn/r1", "gate", "--reason", "ok"}, code: 1, dials: true},
		{name: "reject as someone dials", args: []string{"approve", "churn/r1", "gate", "--reason", "no", "--reject", "--as", "ana"}, code: 1, dials: true},
		{name: "run without spec or resume", args: []string{"run"}, code: 2, want: []string{"needs a SPEC, or --resume RUN"}},
		{name: "run with two specs", args: []string{"run", spec, spec}, code: 2, want: []string{"accepts at most 1 arg(s), received 2"}},
		{name: "resume needs a run", args: []string{"run", spec, "--resume"}, code: 2, want: []string{"flag needs an argument: --resume"}},
		{name: "no-cache is a switch", args: []string{"run", spec, "--no-cache=always"}, code: 2, want: []string{`invalid argument "always"`}},
		{name: "resume with a bad param", args: []string{"run", "--resume", "churn/r1", "-p", "seed"}, code: 2, want: []string{`-p "seed": expected name=value`}},
		{name: "resume with an invalid spec", args: []string{"run", "testdata/invalid/typos.yaml", "--resume", "churn/r1"}, code: 1, want: []string{"invalid spec", "typos.yaml:16:11"}},
		{name: "resume dials", args: []string{"run", "--resume", "churn/r1"}, code: 1, dials: true},
		{name: "resume with a spec dials", args: []string{"run", spec, "--resume", "pipeline/churn/r1", "-p", "seed=3"}, code: 1, dials: true},
		{name: "no-cache dials", args: []string{"run", spec, "--no-cache"}, code: 1, dials: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, append([]string{"--address", noServer}, tt.args...)...)
			if r.exitCode() != tt.code {
				t.Errorf("kiln %v: exit code %d (%v), want %d", tt.args, r.exitCode(), r.err, tt.code)
			}
			if r.err == nil {
				t.Fatalf("kiln %v succeeded", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("kiln %v: error %q, want it to mention %q", tt.args, r.err, w)
				}
			}
			if dialled := strings.Contains(r.err.Error(), noServer) && strings.Contains(r.err.Error(), "kiln dev"); dialled != tt.dials {
				t.Errorf("kiln %v: dialled %v, want %v (error %q)", tt.args, dialled, tt.dials, r.err)
			}
			if r.stdout != "" {
				t.Errorf("kiln %v printed %q", tt.args, r.stdout)
			}
		})
	}
}

// TestApproveAndRunHelp checks that kiln approve --help explains the
// decision, its flags and its exit codes, and kiln run --help the cache and
// --resume.
func TestApproveAndRunHelp(t *testing.T) {
	r := kiln(t, "approve", "--help")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, w := range []string{
		"kiln approve RUN STEP --reason REASON", "--reason", "--reject", "--as", "approvers",
		"exits with code 1", "kiln approve churn/", "--reject --reason",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("kiln approve --help does not mention %q:\n%s", w, r.stdout)
		}
	}
	run := kiln(t, "run", "--help")
	for _, w := range []string{"run [SPEC]", "--no-cache", "--resume", "kiln run --resume churn/", `"cached"`} {
		if !strings.Contains(run.stdout, w) {
			t.Errorf("kiln run --help does not mention %q:\n%s", w, run.stdout)
		}
	}
}
