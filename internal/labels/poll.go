package labels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
)

// PollOptions configures Poll.
type PollOptions struct {
	// IDColumn, LabelColumn and TimeColumn are as in PushInput.
	IDColumn, LabelColumn, TimeColumn string
	// PushedBy is recorded with each batch (e.g. "monitor/churn").
	PushedBy string
	// At is the push time of the batches (default now).
	At time.Time
	// CacheDir holds objects fetched from an object store; default
	// cache/objects under the artifact store.
	CacheDir string
	// Classes are a multiclass model's classes, as in PushInput.
	Classes []string
	// OnPush, if set, is called with each new batch and its report (to
	// record rejected rows, say).
	OnPush func(registry.LabelBatch, PushReport)
}

// Poll pushes, through Push, every file of source that the model has no
// batch of yet, in name order, and returns the new batches. source is a
// labels file, a directory (its files, not its subdirectories), a glob
// (labels/*/*.csv), a path prefix (labels/2026-12-) or an object or prefix
// in an object store (s3://bucket/labels/). Only names with a labels
// format's extension (see FormatOf) are read from directories, globs and
// prefixes, and names starting with "." or "_" are skipped. A source that
// matches nothing gives no batches and no error.
//
// Polling again is cheap and idempotent: a file whose bytes were already
// pushed with the same columns is recognised by its SHA-256 and not read.
// A file that cannot be pushed does not stop the others: Poll returns the
// batches it pushed together with an error naming each file that failed
// (files that fail are tried again at the next poll).
func Poll(ctx context.Context, store *artifact.Store, reg *registry.Registry, model, source string, opts PollOptions) ([]registry.LabelBatch, error) {
	if store == nil || reg == nil {
		return nil, errors.New("poll labels: no artifact store or registry")
	}
	if opts.CacheDir == "" {
		opts.CacheDir = store.LocalPath("cache/objects")
	}
	files, err := sourceFiles(ctx, source, opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("poll labels of %s from %s: %w", model, source, err)
	}
	_, regCols := resolveColumns(opts.IDColumn, opts.LabelColumn, opts.TimeColumn)
	var out []registry.LabelBatch
	var errs []error
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		sum, err := dataset.HashFile(f.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, ok, err := reg.LabelBatchBySource(ctx, model, sum, regCols); err != nil {
			return out, err
		} else if ok {
			continue
		}
		b, rep, err := Push(ctx, store, reg, PushInput{
			Model: model, File: f.path, Source: f.source, IDColumn: opts.IDColumn, LabelColumn: opts.LabelColumn,
			TimeColumn: opts.TimeColumn, PushedBy: opts.PushedBy, At: opts.At, Classes: opts.Classes,
		})
		if errors.Is(err, registry.ErrNotFound) {
			return out, err // the model does not exist: every file would fail
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rep.AlreadyPushed {
			continue
		}
		out = append(out, b)
		if opts.OnPush != nil {
			opts.OnPush(b, rep)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("poll labels of %s from %s: %d of %d files not pushed: %w", model, source, len(errs), len(files), errors.Join(errs...))
	}
	return out, nil
}

// sourceFile is a local labels file and the name it is recorded under.
type sourceFile struct {
	path, source string
}

// pollable says whether a listed name is a labels file to read.
func pollable(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return false
	}
	_, err := FormatOf(name)
	return err == nil
}

// sourceFiles resolves a Poll source to local files, in name order.
func sourceFiles(ctx context.Context, source, cacheDir string) ([]sourceFile, error) {
	if source == "" {
		return nil, errors.New("no labels source")
	}
	if artifact.Remote(source) {
		return remoteFiles(ctx, source, cacheDir)
	}
	var paths []string
	keep := func(p string) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && pollable(filepath.Base(p)) {
			paths = append(paths, p)
		}
	}
	st, err := os.Stat(source)
	switch {
	case strings.ContainsAny(source, "*?["):
		matches, err := filepath.Glob(source)
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			keep(m)
		}
	case err == nil && st.IsDir():
		ents, err := os.ReadDir(source)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			keep(filepath.Join(source, e.Name()))
		}
	case err == nil:
		if _, err := FormatOf(source); err != nil {
			return nil, err
		}
		paths = []string{source}
	case errors.Is(err, os.ErrNotExist):
		matches, _ := filepath.Glob(escapeGlob(source) + "*")
		for _, m := range matches {
			keep(m)
		}
	default:
		return nil, err
	}
	out := make([]sourceFile, len(paths))
	for i, p := range paths {
		out[i] = sourceFile{path: p, source: p}
	}
	return out, nil
}

// escapeGlob quotes the glob metacharacters of a literal path.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// remoteFiles lists an object or prefix and fetches the labels objects into
// cacheDir (each under a directory named by its URL, size, modification
// time and MD5, so a changed object is fetched again and an unchanged one
// is not).
func remoteFiles(ctx context.Context, source, cacheDir string) ([]sourceFile, error) {
	objs, err := artifact.List(ctx, source)
	if err != nil {
		return nil, err
	}
	var keep []artifact.Object
	if ou, err := artifact.ParseObjectURL(source); err == nil {
		for _, o := range objs {
			if o.Key == ou.Key {
				keep = []artifact.Object{o}
			}
		}
	}
	if keep == nil {
		for _, o := range objs {
			if pollable(path.Base(o.Key)) {
				keep = append(keep, o)
			}
		}
	}
	out := make([]sourceFile, 0, len(keep))
	for _, o := range keep {
		id := sha256.Sum256(fmt.Appendf(nil, "%s\n%d\n%s\n%s", o.URI, o.Size, o.ModTime.UTC().Format(time.RFC3339Nano), o.MD5))
		dst := filepath.Join(cacheDir, hex.EncodeToString(id[:16]), path.Base(o.Key))
		if st, err := os.Stat(dst); err != nil || st.Size() != o.Size {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			if _, err := artifact.Fetch(ctx, o.URI, dst, artifact.FetchOptions{}); err != nil {
				return nil, err
			}
		}
		out = append(out, sourceFile{path: dst, source: o.URI})
	}
	return out, nil
}
