package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/pipelines"
)

// TestAllowPaths: with --allow-path, a spec's paths must lie under an
// allowed directory or the artifact store, after resolving relative paths,
// ".." and symbolic links; outputs that do not exist yet are judged by
// their directory. Without it any path is allowed.
func TestAllowPaths(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "team-a")
	other := filepath.Join(root, "team-b")
	for _, d := range []string{allowed, other, filepath.Join(allowed, "specs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(other, "secret.csv")
	if err := os.WriteFile(secret, []byte("a\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "in.csv"), []byte("a\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	store, err := artifact.NewLocal(filepath.Join(root, "home", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Store: store, AllowPaths: []string{allowed}}
	specDir := filepath.Join(allowed, "specs")
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"../in.csv", true},
		{filepath.Join(allowed, "in.csv"), true},
		{"file://" + filepath.Join(allowed, "in.csv"), true},
		{"../out/new/scored.parquet", true}, // not there yet: judged by its directory
		{store.LocalPath("datasets/x.parquet"), true},
		{secret, false},
		{"../../team-b/secret.csv", false},
		{"../escape/secret.csv", false}, // a symbolic link out of the allowed directory
		{"/etc/passwd", false},
		{filepath.Join(allowed, "..", "team-b", "new.parquet"), false},
	} {
		p, err := a.specPath(tc.path, specDir)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.path, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: allowed (%s)", tc.path, p)
		case !tc.ok:
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || !ae.NonRetryable() || !strings.Contains(err.Error(), "--allow-path "+allowed) {
				t.Errorf("%s: error %v; want a non-retryable error naming --allow-path", tc.path, err)
			}
		}
	}
	open := &Activities{Store: store}
	if _, err := open.specPath(secret, specDir); err != nil {
		t.Errorf("without AllowPaths: %v", err)
	}

	// A foreach glob that matches files outside fails its step.
	_, err = a.ExpandForeach(context.Background(), ExpandForeachInput{
		Run: RunInfo{SpecDir: specDir}, Step: "each", Foreach: pipelines.Foreach{Files: "../escape/*.csv"},
	})
	if err == nil || !strings.Contains(err.Error(), "outside the directories") {
		t.Errorf("foreach over files outside: %v", err)
	}
	out, err := a.ExpandForeach(context.Background(), ExpandForeachInput{
		Run: RunInfo{SpecDir: specDir}, Step: "each", Foreach: pipelines.Foreach{Files: "../*.csv"},
	})
	if err != nil || len(out.Items) != 1 {
		t.Errorf("foreach over allowed files: %v, %v", out.Items, err)
	}
}
