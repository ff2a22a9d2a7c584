package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// The step cache and resume.
//
// Every cacheable step (ingest, preprocess, train, evaluate, score) computes
// a cache key before it works: the hex SHA-256 of a JSON document holding
//
//   - the step type and its implementation version (below),
//   - the step's typed configuration, as the workflow resolved it (params,
//     ${item} and ${steps...} references already substituted),
//   - the content hashes of its inputs: the dataset's SHA-256, the prepared
//     artifacts' content address, the bundle's SHA-256, the model's
//     name:version, the champion's resolved version ("none" without one),
//     the source or input file's SHA-256, the row groups,
//   - the foreach item's value, when the step runs per item,
//   - for train, the container image's identity (containers.Runtime.Identify)
//     and the runtime that runs it.
//
// The workflow ID, the step's name and the time are not part of the key, so
// the same work in another run (or under another step name) has the same
// key.
//
// With that key, before working, a step returns:
//
//  1. in.Reuse (kiln run --resume), marked Reused, when its CacheKey equals
//     the key and its artifacts still exist;
//  2. else, unless in.NoCache, the cache entry cache/<key>.json of the
//     artifact store, marked Cached, when its artifacts still exist;
//  3. else it works, sets CacheKey on its output and stores the entry
//     (atomically; a failed store is logged, not fatal).
//
// "Still exist" means every artifact URI of the output is present, and a
// scored file (the only artifact not stored under a content address) still
// has the SHA-256 recorded when it was written.
//
// register computes a key (bundle SHA-256, model and alias) and honours
// Reuse, so a resumed run does not register a second version, but it never
// reads or writes the cache: a new run must register its own version. deploy,
// monitor, approval and noop steps have no key.

// Implementation versions of the cacheable step types, part of every key.
// Bump a step type's version whenever its results change for the same
// configuration and inputs (a new output field, another split, another
// metric, a different file layout): older cache entries and resumed runs
// then stop matching instead of handing out stale results.
const (
	ingestImplVersion     = 1
	preprocessImplVersion = 1
	trainImplVersion      = 1
	evaluateImplVersion   = 2
	registerImplVersion   = 1
	scoreImplVersion      = scorer.ImplVersion
)

// cacheDir is the directory of the step cache in the artifact store.
const cacheDir = "cache"

// keyDoc is what a cache key hashes. Maps marshal with sorted keys, so the
// same document always gives the same bytes.
type keyDoc struct {
	Type    pipelines.StepType `json:"type"`
	Version int                `json:"version"`
	Config  any                `json:"config"`
	Inputs  map[string]string  `json:"inputs"`
	Item    *string            `json:"item,omitempty"`
}

// stepKey computes the cache key of a step of type t from its resolved
// configuration cfg, its input content hashes and in's foreach item.
func stepKey(t pipelines.StepType, version int, cfg any, inputs map[string]string, in StepInput) (string, error) {
	doc := keyDoc{Type: t, Version: version, Config: cfg, Inputs: inputs}
	if in.Item != nil {
		v := in.Item.Value
		doc.Item = &v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("computing the cache key of step %q: %w", in.Step.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// cacheEntry is the JSON file cache/<key>.json.
type cacheEntry struct {
	Key  string             `json:"key"`
	Uses pipelines.StepType `json:"uses"`
	// WorkflowID and Step name the run step that stored the entry.
	WorkflowID string     `json:"workflow_id"`
	Step       string     `json:"step"`
	Stored     time.Time  `json:"stored"`
	Output     StepOutput `json:"output"`
}

// cachePath is the file of the cache entry with key.
func (a *Activities) cachePath(key string) string {
	return a.Store.LocalPath(cacheDir + "/" + key + ".json")
}

// cached runs a cacheable step: it returns in.Reuse or the cache entry of
// key when they are usable, and otherwise runs work and stores its result.
func (a *Activities) cached(ctx context.Context, in StepInput, key string, work func() (StepOutput, error)) (StepOutput, error) {
	if out, ok := a.reuse(ctx, in, key); ok {
		return out, nil
	}
	log := a.logger(ctx)
	if !in.NoCache {
		out, err := a.lookup(ctx, key)
		switch {
		case err == nil:
			log.Info("step cache hit", "step", in.Step.Name, "key", key)
			out.CacheKey, out.Cached, out.Reused = key, true, false
			return out, nil
		case !errors.Is(err, fs.ErrNotExist):
			log.Info("step cache entry not usable; running the step", "step", in.Step.Name, "key", key, "reason", err)
		}
	}
	out, err := work()
	if err != nil {
		return out, err
	}
	out.CacheKey, out.Cached, out.Reused = key, false, false
	if err := a.storeEntry(in, key, out); err != nil {
		log.Warn("storing the step's result in the step cache", "step", in.Step.Name, "key", key, "error", err)
	}
	return out, nil
}

// reuse returns in.Reuse, marked Reused, when its key is key, its artifacts
// still exist and the checks (if any) pass.
func (a *Activities) reuse(ctx context.Context, in StepInput, key string, checks ...func(StepOutput) error) (StepOutput, bool) {
	if in.Reuse == nil {
		return StepOutput{}, false
	}
	log := a.logger(ctx)
	if in.Reuse.CacheKey != key {
		log.Info("not reusing the resumed run's result: its inputs or configuration changed", "step", in.Step.Name, "key", key, "was", in.Reuse.CacheKey)
		return StepOutput{}, false
	}
	if err := a.checkOutputs(ctx, in.Reuse.Artifacts); err != nil {
		log.Info("not reusing the resumed run's result", "step", in.Step.Name, "reason", err)
		return StepOutput{}, false
	}
	for _, check := range checks {
		if err := check(*in.Reuse); err != nil {
			log.Info("not reusing the resumed run's result", "step", in.Step.Name, "reason", err)
			return StepOutput{}, false
		}
	}
	out := *in.Reuse
	out.CacheKey, out.Reused, out.Cached = key, true, false
	log.Info("reusing the resumed run's result", "step", in.Step.Name, "key", key)
	return out, true
}

// lookup reads the cache entry of key. A missing entry is an error wrapping
// fs.ErrNotExist; an entry whose artifacts are gone is another error.
func (a *Activities) lookup(ctx context.Context, key string) (StepOutput, error) {
	b, err := os.ReadFile(a.cachePath(key))
	if err != nil {
		return StepOutput{}, err
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return StepOutput{}, fmt.Errorf("decoding cache entry %s: %w", key, err)
	}
	if e.Key != key {
		return StepOutput{}, fmt.Errorf("cache entry %s holds key %q", key, e.Key)
	}
	if err := a.checkOutputs(ctx, e.Output.Artifacts); err != nil {
		return StepOutput{}, err
	}
	return e.Output, nil
}

// storeEntry writes the cache entry of key atomically (temporary file and
// rename), replacing an older one.
func (a *Activities) storeEntry(in StepInput, key string, out StepOutput) error {
	e := cacheEntry{Key: key, Uses: in.Step.Uses, WorkflowID: in.Run.WorkflowID, Step: in.Step.Name, Stored: time.Now().UTC(), Output: out}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding cache entry: %w", err)
	}
	return a.writeAtomic(a.cachePath(key), append(b, '\n'))
}

// writeAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers see the old file or the new one.
func (a *Activities) writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}

// checkOutputs reports the first artifact of art that no longer exists, or a
// scored file whose content changed since it was written.
func (a *Activities) checkOutputs(ctx context.Context, art Artifacts) error {
	for _, uri := range artifactURIs(art) {
		if !a.Store.Has(ctx, uri) {
			return fmt.Errorf("artifact %s no longer exists", artifact.Redact(uri))
		}
	}
	if s := art.Scored; s != nil && s.SHA256 != "" {
		var p string
		var err error
		if artifact.Remote(s.URI) {
			// A fanned-out output's manifest alone, not its parts.
			p, err = a.Store.Local(ctx, artifact.JoinURI(s.URI, scorer.SuccessFile))
			if errors.Is(err, artifact.ErrNotFound) {
				p, err = a.Store.Local(ctx, s.URI) // a single scored file
			}
		} else {
			p, err = a.Store.Local(ctx, s.URI)
		}
		if err != nil {
			return err
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, scorer.SuccessFile) // a fanned-out output: its manifest
		}
		sum, err := dataset.HashFile(p)
		if err != nil {
			return err
		}
		if sum != s.SHA256 {
			return fmt.Errorf("scored file %s changed since it was written", p)
		}
	}
	return nil
}

// artifactURIs lists the URIs of every artifact of art.
func artifactURIs(art Artifacts) []string {
	var uris []string
	if d := art.Dataset; d != nil {
		uris = append(uris, d.URI)
	}
	if p := art.Prepared; p != nil {
		uris = append(uris, p.TrainURI, p.ValidURI, p.TestURI, p.TransformsURI, p.ProfileURI)
	}
	if b := art.Bundle; b != nil {
		uris = append(uris, b.URI)
	}
	if m := art.Model; m != nil {
		uris = append(uris, m.BundleURI)
	}
	if s := art.Scored; s != nil {
		uris = append(uris, s.URI)
	}
	if f := art.Foreach; f != nil {
		uris = append(uris, f.ResultsURIs...)
	}
	return uris
}

// preparedAddress is the content address of prepared artifacts: the name of
// the directory prepared/<address> that holds them.
func preparedAddress(p *PreparedRef) (string, error) {
	if artifact.Remote(p.TrainURI) {
		ou, err := artifact.ParseObjectURL(p.TrainURI)
		if err != nil {
			return "", err
		}
		return path.Base(path.Dir(ou.Key)), nil
	}
	p2, err := artifact.Path(p.TrainURI, "")
	if err != nil {
		return "", err
	}
	return filepath.Base(filepath.Dir(p2)), nil
}
