package activities

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/internal/artifact"
)

// Path confinement for shared workers.
//
// A spec names files: an ingest source, score inputs and outputs, report
// outputs, foreach globs, monitor label files. On a worker several teams
// share, a spec must not read or write outside the places its operator
// allows (kiln worker --allow-path DIR, repeatable): Activities.AllowPaths.
// Every path a spec names goes through specPath, which resolves it against
// the spec's directory, follows symbolic links (of the part that exists:
// an output's directory) and refuses it unless it lies under an allowed
// root or the worker's own artifact store. Without AllowPaths any path is
// allowed, as on one user's machine.

// specPath resolves a path or file:// URI a spec names (relative paths
// against specDir) and checks it against AllowPaths.
func (a *Activities) specPath(uri, specDir string) (string, error) {
	p, err := artifact.Path(uri, specDir)
	if err != nil {
		return "", err
	}
	if err := a.confine(p); err != nil {
		return "", err
	}
	return p, nil
}

// confine checks that path lies under an allowed root (or the artifact
// store); it is an InvalidInput error otherwise.
func (a *Activities) confine(path string) error {
	if len(a.AllowPaths) == 0 {
		return nil
	}
	real, err := realPath(path)
	if err != nil {
		return invalid("path %s: %v", path, err)
	}
	roots := append([]string{}, a.AllowPaths...)
	if a.Store != nil {
		roots = append(roots, a.Store.Root())
	}
	for _, r := range roots {
		rr, err := realPath(r)
		if err != nil {
			continue
		}
		if within(rr, real) {
			return nil
		}
	}
	return invalid("path %s is outside the directories this worker allows specs to use (--allow-path %s)", path, strings.Join(a.AllowPaths, ", "))
}

// realPath is path made absolute with the symbolic links of its longest
// existing prefix resolved (a file to be written need not exist yet).
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	p := abs
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// within reports whether path is root or lies under it (both real).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(os.PathSeparator)) && !filepath.IsAbs(rel)
}

// confineAll checks every path of paths.
func (a *Activities) confineAll(paths []string) error {
	for _, p := range paths {
		if err := a.confine(p); err != nil {
			return err
		}
	}
	return nil
}
