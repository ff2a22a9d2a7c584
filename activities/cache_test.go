package activities_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// cacheEntry is the part of a step cache entry (cache/<key>.json) the tests
// read.
type cacheEntry struct {
	Key        string                `json:"key"`
	WorkflowID string                `json:"workflow_id"`
	Output     activities.StepOutput `json:"output"`
}

// entry reads the step cache entry of key; ok is false when there is none.
func (e *env) entry(t *testing.T, key string) (cacheEntry, bool) {
	t.Helper()
	b, err := os.ReadFile(e.store.LocalPath("cache/" + key + ".json"))
	if os.IsNotExist(err) {
		return cacheEntry{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ce cacheEntry
	if err := json.Unmarshal(b, &ce); err != nil {
		t.Fatalf("cache entry %s: %v", key, err)
	}
	return ce, true
}

// sameJSON reports whether a and b encode to the same JSON: what a step
// returns and what it returns again through the cache or a resume compare
// equal once both have been through JSON, as they are in a workflow.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// writeFile writes b to path.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cachedPipeline is the breast cancer pipeline with its source copied to a
// file the test may change, and the trainer on the process runtime.
type cachedPipeline struct {
	spec                                    *pipelines.Spec
	src                                     string
	original                                []byte
	ingest, prep, train, evaluate, register pipelines.Step
	score                                   pipelines.Step
}

func newCachedPipeline(t *testing.T) *cachedPipeline {
	t.Helper()
	spec := loadSpec(t, "breast_cancer.yaml")
	data, err := os.ReadFile(filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	if err != nil {
		t.Fatal(err)
	}
	p := &cachedPipeline{spec: spec, src: filepath.Join(t.TempDir(), "data.csv"), original: data}
	writeFile(t, p.src, data)
	p.ingest = step(t, spec, "ingest")
	p.ingest.Ingest.Source = p.src
	p.prep = step(t, spec, "prep")
	p.train = processTrain(t, spec, "train")
	p.evaluate = step(t, spec, "evaluate")
	p.register = step(t, spec, "register")
	p.score = step(t, spec, "score")
	return p
}

// cacheable are the pipeline's cacheable steps up to evaluate, in order.
func (p *cachedPipeline) cacheable() []pipelines.Step {
	return []pipelines.Step{p.ingest, p.prep, p.train, p.evaluate}
}

// runAll runs the whole pipeline as run and checks that every step worked.
func (p *cachedPipeline) runAll(t *testing.T, e *env, run string) *chain {
	t.Helper()
	c := e.chain(runInfo(p.spec, run))
	for _, st := range append(p.cacheable(), p.register, p.score) {
		out := c.must(st)
		if out.Cached || out.Reused || len(out.CacheKey) != 64 {
			t.Fatalf("first run of %s: cached %v, reused %v, key %q; want it to run and have a key", st.Name, out.Cached, out.Reused, out.CacheKey)
		}
	}
	return c
}

// TestStepCache runs the breast cancer pipeline twice in one store: the
// second run takes every cacheable step from the cache. Then it changes one
// thing at a time and checks which steps run again.
func TestStepCache(t *testing.T) {
	e := newEnv(t)
	p := newCachedPipeline(t)
	first := p.runAll(t, e, "first")
	for _, st := range p.cacheable() {
		key := first.outs[st.Name].CacheKey
		if ce, ok := e.entry(t, key); !ok || ce.WorkflowID != first.run.WorkflowID || !sameJSON(t, ce.Output.Artifacts, first.outs[st.Name].Artifacts) {
			t.Errorf("%s: cache entry %+v (found %v), want the first run's output", st.Name, ce, ok)
		}
	}
	if _, ok := e.entry(t, first.outs["register"].CacheKey); ok {
		t.Error("register stored a cache entry; it must never use the cache")
	}

	// The second run hits the cache for every cacheable step; scoring with
	// the same model version does too (register is never cached, so the
	// run scores with the first run's version).
	second := e.chain(runInfo(p.spec, "second"))
	for _, st := range p.cacheable() {
		out := second.must(st)
		want := first.outs[st.Name]
		if !out.Cached || out.Reused || out.CacheKey != want.CacheKey || !sameJSON(t, out.Artifacts, want.Artifacts) || out.Summary != want.Summary {
			t.Errorf("second run of %s: %+v; want the first run's output from the cache", st.Name, out)
		}
	}
	second.acc.Model = first.acc.Model
	if out := second.must(p.score); !out.Cached || out.Artifacts.Scored.URI != first.acc.Scored.URI {
		t.Errorf("second run of score: cached %v, output %s; want the first run's %s", out.Cached, out.Artifacts.Scored.URI, first.acc.Scored.URI)
	}

	changed := []byte(replaceOnce(t, string(p.original), "\n17.99,", "\n17.98,"))
	otherSeed := step(t, p.spec, "prep")
	otherSeed.Preprocess.Split.Seed = 7
	scoredPath := func(t *testing.T) string {
		ce, ok := e.entry(t, first.outs["score"].CacheKey)
		if !ok {
			t.Fatal("no cache entry for score")
		}
		return mustPath(t, ce.Output.Artifacts.Scored.URI)
	}
	tests := []struct {
		name string
		step pipelines.Step
		// setup changes the world before the step runs (undone by
		// t.Cleanup when later cases need it as it was).
		setup   func(t *testing.T, c *chain)
		noCache bool
		item    *activities.Item
		// cached is whether the step must come from the cache; sameKey
		// whether its key is the first run's.
		cached, sameKey bool
	}{
		{name: "identical ingest", step: p.ingest, cached: true, sameKey: true},
		{name: "source file changed", step: p.ingest, setup: func(t *testing.T, c *chain) {
			writeFile(t, p.src, changed)
			t.Cleanup(func() { writeFile(t, p.src, p.original) })
		}},
		{name: "preprocess config changed", step: otherSeed},
		{name: "a foreach item", step: p.prep, item: &activities.Item{Index: 0, Value: "shard-0"}},
		{name: "the same item again", step: p.prep, item: &activities.Item{Index: 1, Value: "shard-0"}, cached: true},
		{name: "another foreach item", step: p.prep, item: &activities.Item{Index: 1, Value: "shard-1"}},
		{name: "train params changed", step: func() pipelines.Step {
			st := processTrain(t, p.spec, "train")
			st.Train.Params = map[string]any{"l2": 0.5}
			return st
		}()},
		{name: "trainer image rebuilt", step: p.train, setup: func(t *testing.T, c *chain) {
			bin, err := os.ReadFile(trainerBin)
			if err != nil {
				t.Fatal(err)
			}
			rebuilt := filepath.Join(t.TempDir(), "trainer")
			if err := os.WriteFile(rebuilt, append(bin, "rebuilt"...), 0o755); err != nil {
				t.Fatal(err)
			}
			old := e.acts.Process
			e.acts.Process = containers.NewProcess(containers.ProcessOptions{Binaries: map[string]string{"kiln/trainer:dev": rebuilt}})
			t.Cleanup(func() { e.acts.Process = old })
		}},
		{name: "champion appeared", step: p.evaluate, setup: func(t *testing.T, c *chain) {
			m := first.acc.Model
			if _, err := e.reg.SetAlias(e.ctx, registry.AliasMove{Model: m.Name, Alias: "production", To: m.Version}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := e.reg.RemoveAlias(e.ctx, registry.AliasMove{Model: m.Name, Alias: "production"}); err != nil {
					t.Fatal(err)
				}
			})
		}},
		{name: "identical evaluate", step: p.evaluate, cached: true, sameKey: true},
		{name: "dataset deleted", step: p.ingest, sameKey: true, setup: func(t *testing.T, c *chain) {
			if err := os.Remove(mustPath(t, first.acc.Dataset.URI)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ingest after the dataset came back", step: p.ingest, cached: true, sameKey: true},
		{name: "scored file deleted", step: p.score, sameKey: true, setup: func(t *testing.T, c *chain) {
			if err := os.Remove(scoredPath(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "scored file overwritten", step: p.score, sameKey: true, setup: func(t *testing.T, c *chain) {
			writeFile(t, scoredPath(t), []byte("not what was scored"))
		}},
		{name: "no cache", step: p.prep, noCache: true, sameKey: true},
		{name: "after no cache", step: p.prep, cached: true, sameKey: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.chain(runInfo(p.spec, "case-"+string(rune('a'+i))))
			c.acc, c.noCache, c.item = first.acc, tt.noCache, tt.item
			if tt.setup != nil {
				tt.setup(t, c)
			}
			out := c.must(tt.step)
			key := first.outs[tt.step.Name].CacheKey
			if out.Cached != tt.cached || out.Reused || (out.CacheKey == key) != tt.sameKey {
				t.Errorf("cached %v, reused %v, same key %v; want cached %v, same key %v", out.Cached, out.Reused, out.CacheKey == key, tt.cached, tt.sameKey)
			}
			if err := checkExists(out.Artifacts); err != nil {
				t.Error(err)
			}
			ce, ok := e.entry(t, out.CacheKey)
			switch {
			case !ok:
				t.Errorf("no cache entry for key %s", out.CacheKey)
			case tt.cached && ce.WorkflowID == c.run.WorkflowID:
				t.Error("a cache hit rewrote the entry")
			case !tt.cached && (ce.WorkflowID != c.run.WorkflowID || !sameJSON(t, ce.Output, out)):
				t.Errorf("the entry holds the result of %s, want this run's", ce.WorkflowID)
			}
		})
	}
}

// checkExists reports an artifact of art that does not exist.
func checkExists(art activities.Artifacts) error {
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
	if s := art.Scored; s != nil {
		uris = append(uris, s.URI)
	}
	for _, uri := range uris {
		if !artifact.Exists(uri) {
			return fmt.Errorf("artifact %s does not exist", uri)
		}
	}
	return nil
}

// TestResume checks that a step reuses the resumed run's result when its key
// matches and its artifacts exist, and runs otherwise.
func TestResume(t *testing.T) {
	e := newEnv(t)
	p := newCachedPipeline(t)
	first := p.runAll(t, e, "first")
	withKey := func(name, key string) activities.StepOutput {
		out := first.outs[name]
		out.CacheKey = key
		return out
	}
	tests := []struct {
		name  string
		step  pipelines.Step
		reuse activities.StepOutput
		setup func(t *testing.T)
		// noCache keeps the cache from answering when the reuse fails.
		noCache        bool
		reused, cached bool
	}{
		{name: "ingest", step: p.ingest, reuse: first.outs["ingest"], noCache: true, reused: true},
		{name: "preprocess", step: p.prep, reuse: first.outs["prep"], noCache: true, reused: true},
		{name: "train", step: p.train, reuse: first.outs["train"], noCache: true, reused: true},
		{name: "evaluate", step: p.evaluate, reuse: first.outs["evaluate"], noCache: true, reused: true},
		{name: "score", step: p.score, reuse: first.outs["score"], noCache: true, reused: true},
		{name: "reuse comes before the cache", step: p.train, reuse: first.outs["train"], reused: true},
		{name: "key mismatch falls back to the cache", step: p.train, reuse: withKey("train", "0123"), cached: true},
		{name: "key mismatch runs", step: p.train, reuse: withKey("train", "0123"), noCache: true},
		{name: "config changed", step: func() pipelines.Step {
			st := step(t, p.spec, "prep")
			st.Preprocess.Split.Test = 0.3
			return st
		}(), reuse: first.outs["prep"], noCache: true},
		{name: "artifact deleted", step: p.train, reuse: first.outs["train"], noCache: true, setup: func(t *testing.T) {
			if err := os.RemoveAll(mustPath(t, first.acc.Bundle.URI)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			c := e.chain(runInfo(p.spec, "resume-"+string(rune('a'+i))))
			c.acc, c.noCache = first.acc, tt.noCache
			c.reuse = map[string]activities.StepOutput{tt.step.Name: tt.reuse}
			out := c.must(tt.step)
			if out.Reused != tt.reused || out.Cached != tt.cached || out.CacheKey == "" {
				t.Errorf("reused %v, cached %v, key %q; want reused %v, cached %v and a key", out.Reused, out.Cached, out.CacheKey, tt.reused, tt.cached)
			}
			if same := sameJSON(t, out.Artifacts, first.outs[tt.step.Name].Artifacts); same != (tt.reused || tt.cached) {
				t.Errorf("artifacts are the first run's: %v; want %v", same, tt.reused || tt.cached)
			}
			if tt.reused && out.CacheKey != tt.reuse.CacheKey {
				t.Errorf("key %s, want the reused %s", out.CacheKey, tt.reuse.CacheKey)
			}
		})
	}
}

// TestRegisterReuse checks that a resumed register step returns the version
// the earlier run registered instead of registering another, and that
// register never uses the step cache.
func TestRegisterReuse(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	reg := step(t, spec, "register")
	reg.Register.Alias = "staging"
	bundles := map[string]*activities.BundleRef{}
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bundles[name] = &activities.BundleRef{URI: artifact.FileURI(dir), SHA256: name + "000", Runtime: "process"}
	}
	in := func(run, bundle string, reuse *activities.StepOutput) activities.StepInput {
		return activities.StepInput{Run: runInfo(spec, run), Step: reg, Inputs: activities.Artifacts{Bundle: bundles[bundle]}, Reuse: reuse}
	}
	first, err := e.acts.Register(e.ctx, in("first", "a", nil))
	if err != nil {
		t.Fatal(err)
	}
	if first.CacheKey == "" || first.Cached || first.Reused || first.Artifacts.Model.Version != 1 {
		t.Fatalf("first registration %+v", first)
	}
	gone := first
	gone.Artifacts.Model = &activities.ModelRef{Name: first.Artifacts.Model.Name, Version: 99, BundleURI: first.Artifacts.Model.BundleURI}
	moved := first
	moved.Artifacts.Model = &activities.ModelRef{Name: first.Artifacts.Model.Name, Version: 1, BundleURI: bundles["b"].URI}
	tests := []struct {
		name   string
		in     activities.StepInput
		reused bool
		// version is the version the step returns; versions how many the
		// registry holds after it, moves how many moves of staging.
		version, versions int64
		moves             int
	}{
		{name: "resume reuses the version", in: in("resumed", "a", &first), reused: true, version: 1, versions: 1, moves: 1},
		{name: "a new run registers its own", in: in("new", "a", nil), version: 2, versions: 2, moves: 2},
		{name: "resume with another bundle", in: in("other-bundle", "b", &first), version: 3, versions: 3, moves: 3},
		{name: "resumed version no longer registered", in: in("gone", "a", &gone), version: 4, versions: 4, moves: 4},
		{name: "resumed version holds another bundle", in: in("moved", "a", &moved), version: 5, versions: 5, moves: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.acts.Register(e.ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if out.Reused != tt.reused || out.Cached || out.Artifacts.Model.Version != tt.version || out.CacheKey == "" {
				t.Errorf("reused %v, cached %v, version %d, key %q; want reused %v, version %d", out.Reused, out.Cached, out.Artifacts.Model.Version, out.CacheKey, tt.reused, tt.version)
			}
			if vs, err := e.reg.Versions(e.ctx, reg.Register.Model); err != nil || int64(len(vs)) != tt.versions {
				t.Errorf("registry holds %d versions (%v), want %d", len(vs), err, tt.versions)
			}
			if h, err := e.reg.AliasHistory(e.ctx, reg.Register.Model, "staging"); err != nil || len(h) != tt.moves {
				t.Errorf("%d moves of staging (%v), want %d", len(h), err, tt.moves)
			}
			if _, ok := e.entry(t, out.CacheKey); ok {
				t.Error("register stored a cache entry")
			}
		})
	}
}
