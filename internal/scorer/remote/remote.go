// Package remote stages batch scoring inputs held in an object store
// (s3://, gs://) as local Parquet files for the scorer. It is apart from
// package scorer so exported predictors do not link the object store
// clients.
package remote

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

	"github.com/kiln-ml/kiln/internal/artifact"
)

// Scoring inputs in an object store.
//
// A remote input (s3://bucket/key, gs://bucket/key) is an object, or a
// prefix whose Parquet objects are the input, as a local path prefix or
// directory would be: s3://lake/scores/2026-12/ (the "directory") or
// s3://lake/scores/part- (the objects whose names start so). Their keys
// after the prefix hold no "/", and names starting with "." or "_" are
// skipped, as locally.
//
// The scorer reads Parquet through an io.ReaderAt with many small reads,
// so the objects are first fetched (streamed, 1 MiB at a time) into a
// local cache: one directory per object version, named by the hash of the
// object's URL, size, modification time and MD5, holding the object under
// its own name. A fetch lands by rename, so a cached copy is whole; a
// later run over the same objects reuses it, and a changed object gets a
// new directory. The cache may be deleted at any time.

// StageOptions configures Stage.
type StageOptions struct {
	// CacheDir is the local cache of fetched objects. Required.
	CacheDir string
	// Progress, when set, is called as objects are fetched, with the bytes
	// fetched (or found in the cache) and the bytes of all the objects.
	Progress func(done, total int64)
}

// Stage resolves a remote scoring input to local Parquet files
// (see above), fetching those not already in opts.CacheDir, and returns
// their paths in key order. A missing object or an empty prefix is an error
// wrapping artifact.ErrNotFound.
func Stage(ctx context.Context, input string, opts StageOptions) ([]string, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("staging remote inputs: no cache directory")
	}
	objs, err := artifact.List(ctx, input)
	if err != nil {
		return nil, err
	}
	objs = scoreObjects(input, objs)
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no .parquet object at or under it: %w", input, artifact.ErrNotFound)
	}
	var total, done int64
	for _, o := range objs {
		total += o.Size
	}
	files := make([]string, len(objs))
	for i, o := range objs {
		id := sha256.Sum256(fmt.Appendf(nil, "%s\n%d\n%s\n%s", o.URI, o.Size, o.ModTime.UTC().Format("2006-01-02T15:04:05.999999999Z"), o.MD5))
		dst := filepath.Join(opts.CacheDir, hex.EncodeToString(id[:16]), path.Base(o.Key))
		files[i] = dst
		if st, err := os.Stat(dst); err == nil && st.Size() == o.Size {
			done += o.Size
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("staging %s: %w", o.URI, err)
		}
		base := done
		_, err := artifact.Fetch(ctx, o.URI, dst, artifact.FetchOptions{Progress: func(n, _ int64) {
			if opts.Progress != nil {
				opts.Progress(base+n, total)
			}
		}})
		if err != nil {
			return nil, err
		}
		done += o.Size
	}
	return files, nil
}

// scoreObjects picks the scoring input's objects from the listing of its
// prefix: the object the input names exactly, if there is one; else the
// *.parquet objects whose names do not start with "." or "_".
func scoreObjects(input string, objs []artifact.Object) []artifact.Object {
	ou, err := artifact.ParseObjectURL(input)
	if err == nil {
		for _, o := range objs {
			if o.Key == ou.Key {
				return []artifact.Object{o}
			}
		}
	}
	var out []artifact.Object
	for _, o := range objs {
		name := path.Base(o.Key)
		if strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_") {
			out = append(out, o)
		}
	}
	return out
}
