package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/activities"
)

// gitInfo returns the HEAD commit of the git work tree holding dir and
// whether the tree has uncommitted changes, or nil when dir is not in a work
// tree (or git is not installed). It goes into the lineage of the versions
// the run registers.
func gitInfo(ctx context.Context, dir string) *activities.GitInfo {
	if dir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	git := func(args ...string) (string, bool) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return "", false
		}
		return strings.TrimSpace(out.String()), true
	}
	if inside, ok := git("rev-parse", "--is-inside-work-tree"); !ok || inside != "true" {
		return nil
	}
	commit, ok := git("rev-parse", "HEAD")
	if !ok || commit == "" {
		return nil // a repository without commits
	}
	status, ok := git("status", "--porcelain", "--untracked-files=no")
	return &activities.GitInfo{Commit: commit, Dirty: !ok || status != ""}
}
