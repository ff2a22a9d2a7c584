package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/cli"
)

// commands lists every command of the tree under root, root first.
func commands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, commands(c)...)
	}
	return out
}

// TestHelp runs --help on every command: each prints its usage, and every
// command that does something shows an example of itself.
func TestHelp(t *testing.T) {
	all := commands(cli.NewRootCommand())
	if len(all) < 15 {
		t.Fatalf("only %d commands in the tree", len(all))
	}
	for _, c := range all {
		path := c.CommandPath() // "kiln models show"
		t.Run(path, func(t *testing.T) {
			args := append(strings.Fields(path)[1:], "--help")
			r := kiln(t, args...)
			if r.err != nil || r.stderr != "" {
				t.Fatalf("kiln %v: %v, stderr %q", args, r.err, r.stderr)
			}
			if !strings.Contains(r.stdout, "Usage:\n  "+path) {
				t.Errorf("kiln %v has no Usage section for %s:\n%s", args, path, r.stdout)
			}
			if c.Short == "" || !strings.Contains(r.stdout, c.Short) && !strings.Contains(r.stdout, c.Long) {
				t.Errorf("kiln %v does not describe the command", args)
			}
			if c.Runnable() && !c.HasSubCommands() && c.Example == "" { // a group runs only to explain an unknown subcommand
				t.Errorf("%s runs but has no example", path)
			}
			if c.Example == "" {
				return
			}
			if !strings.Contains(r.stdout, "Examples:\n"+c.Example) {
				t.Errorf("kiln %v does not show its examples:\n%s", args, r.stdout)
			}
			if !strings.Contains(c.Example, path+" ") && !strings.HasSuffix(strings.Split(c.Example, "\n")[0], path) {
				t.Errorf("the examples of %s do not use it:\n%s", path, c.Example)
			}
		})
	}
}

// TestValidateHelpExample runs the validate command's own example against
// the repository's specs: a documented command line should work.
func TestValidateHelpExample(t *testing.T) {
	var example string
	for _, c := range commands(cli.NewRootCommand()) {
		if c.Name() == "validate" {
			example = c.Example
		}
	}
	for _, l := range strings.Split(example, "\n") {
		fields := strings.Fields(l)
		if len(fields) < 2 || fields[0] != "kiln" {
			t.Fatalf("example line %q is not a kiln command line", l)
		}
		var args []string
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "pipelines/") {
				matches, err := filepath.Glob(filepath.Join(repoRoot, f))
				if err != nil || len(matches) == 0 {
					t.Fatalf("example %q: %s matches no spec", l, f)
				}
				args = append(args, matches...)
				continue
			}
			args = append(args, f)
		}
		if r := kiln(t, args...); r.err != nil {
			t.Errorf("example %q: %v\n%s", l, r.err, r.stderr)
		}
	}
}

// TestRunsNoServer checks that runs list without a Temporal server fails
// fast and tells the user to start kiln dev.
func TestRunsNoServer(t *testing.T) {
	tests := [][]string{
		{"runs", "list"},
		{"runs", "show", "churn/r1"},
		{"runs", "cancel", "churn/r1"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			r := kiln(t, append([]string{"--address", "127.0.0.1:1"}, args...)...)
			took := time.Since(start)
			if r.err == nil {
				t.Fatalf("kiln %v succeeded without a server", args)
			}
			for _, w := range []string{"127.0.0.1:1", "kiln dev"} {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not mention %q", r.err, w)
				}
			}
			if took > 5*time.Second {
				t.Errorf("took %s to fail, want a few seconds at most", took)
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), r.err)
		})
	}
}

// TestHelpHidesSecrets: secrets in the environment never appear in --help
// (a flag's default is printed there).
func TestHelpHidesSecrets(t *testing.T) {
	t.Setenv("KILN_ADMIN_TOKEN", "tok-9f8e7d6c")
	t.Setenv("TEMPORAL_API_KEY", "key-1a2b3c4d")
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"worker", "--help"}, {"run", "--help"}} {
		var out, errOut bytes.Buffer
		if err := cli.Run(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if s := out.String() + errOut.String(); strings.Contains(s, "tok-9f8e7d6c") || strings.Contains(s, "key-1a2b3c4d") {
			t.Errorf("kiln %v prints a secret:\n%s", args, s)
		}
	}
}
