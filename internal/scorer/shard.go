package scorer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// Sharded batch scoring with exactly-once output.
//
// A scoring job is planned once (NewPlan): its input files (a file, a
// directory of *.parquet files, a glob, or a path prefix) are cut into
// shards — one per file, or ranges of consecutive row groups of a big file —
// and each shard into parts of about PartRows rows (whole row groups).
// The plan is written as plan.json into a staging directory next to the
// output, .<output name>.staging, whose name depends only on the output.
//
// Each shard is scored by one activity (Activities.ScoreShard) that writes each of its
// parts as its own Parquet file, part-NNNNNN.parquet (NNNNNN is the part's
// number in the plan), through a temporary file and a rename. A part file
// therefore exists only once it is complete, and its name is fixed by the
// plan: a retried shard (after a killed worker, a timeout, ...) skips the
// parts already there and rewrites none twice, so it resumes from the last
// completed part without duplicating rows. Heartbeats report the parts done;
// the files, not the heartbeat details, are the record of progress.
//
// The commit (CommitScore) checks that every part is present with the row
// count the plan expects, writes the manifest _SUCCESS (JSON: model,
// version, rows, and each part's file, rows and SHA-256) and renames the
// staging directory onto the output directory; a previous output there is
// replaced. Readers see the old output or the new one whole, and a directory
// with _SUCCESS is complete.
//
// The output is a directory of parts rather than one merged file: merging
// would rewrite every row (doubling the output I/O) and serialise the end of
// a parallel job, while Parquet readers (pyarrow, DuckDB, Spark, pandas) read
// a directory of parts as one dataset, and the manifest says exactly which
// files belong to it. `kiln score` writes a single file instead when the
// output path ends in .parquet.

// ImplVersion is the version of the scorer's output: bump it when the same
// model and input would score differently, so cached score steps rerun.
const ImplVersion = 1

// Score fan-out defaults.
const (
	// DefaultShardRows is the target rows per shard (ScoreConfig.ShardRows).
	DefaultShardRows = 4 << 20
	// DefaultMaxShards bounds the shards of one job (ScoreConfig.MaxShards);
	// with more, shards grow.
	DefaultMaxShards = 10000
	// DefaultPartRows is the largest target rows per part file (the unit of
	// resume); parts are at most a quarter of ShardRows.
	DefaultPartRows = 1 << 20
)

// SuccessFile is the manifest of a committed scoring output directory.
const SuccessFile = "_SUCCESS"

// planFile is the plan's name in the staging directory.
const planFile = "plan.json"

// Plan describes a sharded scoring job.
type Plan struct {
	// Key identifies the job: the model, the inputs and the options. A
	// staging directory holding a plan with the same key is resumed.
	Key string `json:"key"`
	// Model and Version are the registered model's name and version;
	// BundleDir is its bundle.
	Model     string `json:"model"`
	Version   int64  `json:"version"`
	BundleDir string `json:"bundle_dir"`
	// Passthrough columns are copied from the input.
	Passthrough []string `json:"passthrough,omitempty"`
	// Output is the output directory; Staging where it is built.
	Output  string `json:"output"`
	Staging string `json:"staging"`
	// Files are the input files, in order.
	Files  []InputFile `json:"files"`
	Shards []ShardSpec `json:"shards"`
	Parts  int         `json:"parts"`
	Rows   int64       `json:"rows"`
}

// InputFile is one input file of a plan.
type InputFile struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Rows      int64  `json:"rows"`
	RowGroups int    `json:"row_groups"`
}

// ShardSpec is one activity's work: parts of one file.
type ShardSpec struct {
	Index int    `json:"index"`
	File  int    `json:"file"`
	Parts []Part `json:"parts"`
	Rows  int64  `json:"rows"`
}

// Part is one output part file: row groups Lo..Hi (inclusive) of the
// shard's file, whose first row is the file's row First.
type Part struct {
	ID    int   `json:"id"`
	Lo    int   `json:"lo"`
	Hi    int   `json:"hi"`
	First int64 `json:"first"`
	Rows  int64 `json:"rows"`
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	Model       string
	Version     int64
	BundleDir   string
	Passthrough []string
	// ShardRows, MaxShards and PartRows default to DefaultShardRows,
	// DefaultMaxShards and DefaultPartRows when zero.
	ShardRows int64
	MaxShards int
	PartRows  int64
	// KeyExtra is mixed into the plan key (e.g. the inputs' content hash).
	KeyExtra string
}

// SuccessManifest is the content of _SUCCESS.
type SuccessManifest struct {
	Key       string        `json:"key"`
	Model     string        `json:"model"`
	Version   int64         `json:"version"`
	Rows      int64         `json:"rows"`
	Inputs    []string      `json:"inputs"`
	Parts     []SuccessPart `json:"parts"`
	Committed time.Time     `json:"committed"`
}

// SuccessPart is one part file of a committed output.
type SuccessPart struct {
	File   string `json:"file"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// ResolveInputs lists the Parquet files of a scoring input: a file; a
// directory (its *.parquet files that are not hidden, not recursive); a glob
// pattern; or a path prefix (the files whose path starts with it). Relative
// paths are relative to dir. The files come in lexical order; none is an
// error.
func ResolveInputs(input, dir string) ([]string, error) {
	if input == "" {
		return nil, errors.New("no input given")
	}
	if !filepath.IsAbs(input) && dir != "" {
		input = filepath.Join(dir, input)
	}
	if strings.ContainsAny(input, "*?[") {
		files, err := GlobFiles(input, "")
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no files match %s", input)
		}
		return files, nil
	}
	st, err := os.Stat(input)
	switch {
	case err == nil && st.IsDir():
		ents, err := os.ReadDir(input)
		if err != nil {
			return nil, err
		}
		var files []string
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") && strings.HasSuffix(e.Name(), ".parquet") {
				files = append(files, filepath.Join(input, e.Name()))
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("directory %s holds no .parquet files", input)
		}
		return files, nil
	case err == nil:
		return []string{input}, nil
	case errors.Is(err, os.ErrNotExist):
		files, gerr := GlobFiles(escapeGlob(input)+"*", "")
		if gerr != nil || len(files) == 0 {
			return nil, fmt.Errorf("%s: no such file, directory or prefix of files", input)
		}
		return files, nil
	}
	return nil, err
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

// StagingDir is where the output directory out is built.
func StagingDir(out string) string {
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".staging")
}

// NewPlan plans scoring files with m into the output directory out. It
// checks every file's schema against the model (errors name the file and
// the column), cuts the files into shards and parts, and writes the plan
// into the staging directory — keeping the parts already there if the
// staging directory holds a plan with the same key, so a restarted job
// resumes.
func NewPlan(m *model.Model, files []string, out string, opts PlanOptions) (*Plan, error) {
	opts.ShardRows = cmpOr(opts.ShardRows, DefaultShardRows)
	opts.MaxShards = cmpOr(opts.MaxShards, DefaultMaxShards)
	// A shard gets at least about four resume points.
	opts.PartRows = cmpOr(opts.PartRows, min(DefaultPartRows, max(opts.ShardRows/4, 1)))
	if opts.ShardRows < 0 || opts.MaxShards < 0 || opts.PartRows < 0 {
		return nil, &dataError{errors.New("shard_rows, max_shards and part rows must be positive")}
	}
	sc, err := newScorer(m, opts.Model, opts.Version, opts.Passthrough, 1)
	if err != nil {
		return nil, &dataError{err}
	}
	p := &Plan{Model: opts.Model, Version: opts.Version, BundleDir: opts.BundleDir, Passthrough: opts.Passthrough,
		Output: filepath.Clean(out), Staging: StagingDir(filepath.Clean(out))}
	groups := make([][]int64, len(files))
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		r, err := dataset.OpenParquet(f)
		if err != nil {
			return nil, &dataError{err}
		}
		err = sc.check(f, r)
		if err == nil {
			groups[i] = make([]int64, r.NumRowGroups())
			for g := range groups[i] {
				groups[i][g] = r.RowGroupRows(g)
			}
			p.Files = append(p.Files, InputFile{Path: f, Size: st.Size(), Rows: r.NumRows(), RowGroups: r.NumRowGroups()})
			p.Rows += r.NumRows()
		}
		r.Close()
		if err != nil {
			return nil, &dataError{err}
		}
	}
	if len(files) > opts.MaxShards {
		return nil, &dataError{fmt.Errorf("%d input files exceed max_shards %d (a shard never spans files)", len(files), opts.MaxShards)}
	}
	shardRows := opts.ShardRows
	for {
		p.cut(groups, shardRows, opts.PartRows)
		if len(p.Shards) <= opts.MaxShards {
			break
		}
		shardRows *= 2
	}
	doc, err := json.Marshal(struct {
		Model   string
		Version int64
		Bundle  string
		Pass    []string
		Files   []InputFile
		Shards  []ShardSpec
		Extra   string
		Impl    int
	}{p.Model, p.Version, p.BundleDir, p.Passthrough, p.Files, p.Shards, opts.KeyExtra, ImplVersion})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(doc)
	p.Key = hex.EncodeToString(sum[:])
	if old, err := LoadPlan(p.Staging); err != nil || old.Key != p.Key {
		// Another job's staging (or one being planned): refuse while that
		// job is alive, so its parts are not wiped under it.
		if age, ok := leaseAge(p.Staging); ok && age < LeaseTTL {
			return nil, &dataError{fmt.Errorf("output %s is being written by another score job (its staging %s was active %s ago): "+
				"wait for it to finish, or write to another output; a job that died releases the output %s after its last activity",
				out, p.Staging, age.Round(time.Second), LeaseTTL)}
		}
		if err := os.RemoveAll(p.Staging); err != nil {
			return nil, fmt.Errorf("clearing %s: %w", p.Staging, err)
		}
	}
	if err := os.MkdirAll(p.Staging, 0o755); err != nil {
		return nil, err
	}
	if err := touchLease(p.Staging); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return nil, err
	}
	if err := localfs.WriteFileAtomic(filepath.Join(p.Staging, planFile), b); err != nil {
		return nil, err
	}
	return p, nil
}

// cmpOr returns v, or def when v is zero.
func cmpOr[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// cut splits the files' row groups (groups[file][rg] = rows) into shards of
// about shardRows rows and parts of about partRows rows, both whole row
// groups.
func (p *Plan) cut(groups [][]int64, shardRows, partRows int64) {
	p.Shards, p.Parts = nil, 0
	for fi, gs := range groups {
		var sh *ShardSpec
		var part *Part
		var first int64
		for g, rows := range gs {
			if sh == nil || sh.Rows >= shardRows {
				p.Shards = append(p.Shards, ShardSpec{Index: len(p.Shards), File: fi})
				sh = &p.Shards[len(p.Shards)-1]
				part = nil
			}
			if part == nil || part.Rows >= partRows {
				sh.Parts = append(sh.Parts, Part{ID: p.Parts, Lo: g, Hi: g, First: first})
				p.Parts++
				part = &sh.Parts[len(sh.Parts)-1]
			}
			part.Hi = g
			part.Rows += rows
			sh.Rows += rows
			first += rows
		}
	}
}

// LeaseTTL is how long a score job's staging directory stays its own
// after the job's last sign of life (planning, or finishing a part): a
// second job with another plan for the same output is refused until then,
// and takes the output over after (the first job died).
const LeaseTTL = 10 * time.Minute

// leaseFile marks a staging directory's owner alive by its modification
// time.
const leaseFile = "lease"

// touchLease records that the job owning staging is alive.
func touchLease(staging string) error {
	p := filepath.Join(staging, leaseFile)
	now := time.Now()
	if err := os.Chtimes(p, now, now); err == nil {
		return nil
	}
	return os.WriteFile(p, nil, 0o644)
}

// releaseLease marks the job owning staging as gone (an interrupted local
// job): its staging resumes for the same job, and no longer holds off
// another.
func releaseLease(staging string) {
	_ = os.Chtimes(filepath.Join(staging, leaseFile), time.Unix(0, 0), time.Unix(0, 0))
}

// leaseAge is how long ago the job owning staging last showed life; false
// when the staging directory has no lease.
func leaseAge(staging string) (time.Duration, bool) {
	st, err := os.Stat(filepath.Join(staging, leaseFile))
	if err != nil {
		return 0, false
	}
	return time.Since(st.ModTime()), true
}

// LoadPlan reads the plan in a staging directory.
func LoadPlan(staging string) (*Plan, error) {
	b, err := os.ReadFile(filepath.Join(staging, planFile))
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", filepath.Join(staging, planFile), err)
	}
	return &p, nil
}

// PartFile is the name of part id in the staging and output directories.
func PartFile(id int) string { return fmt.Sprintf("part-%06d.parquet", id) }

// partDone reports whether part's file exists in the staging directory with
// the rows the plan expects. A part file with other rows (which the atomic
// rename rules out, short of tampering) is removed and redone.
func (p *Plan) partDone(part Part) bool {
	path := filepath.Join(p.Staging, PartFile(part.ID))
	r, err := dataset.OpenParquet(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			os.Remove(path)
		}
		return false
	}
	n := r.NumRows()
	r.Close()
	if n != part.Rows {
		os.Remove(path)
		return false
	}
	return true
}

// ShardProgress reports a shard's progress: parts (and rows) done of all.
type ShardProgress struct {
	Parts, PartsDone int
	Rows, RowsDone   int64
	// Skipped parts were already complete when the shard started.
	Skipped int
}

// ShardResult is what RunShard did.
type ShardResult struct {
	Shard   int   `json:"shard"`
	Parts   int   `json:"parts"`
	Skipped int   `json:"skipped"`
	Rows    int64 `json:"rows"`
}

// RunShard scores shard i of the plan with m: each part not already in the
// staging directory is written there atomically. progress (optional) is
// called after each part and after each batch.
func (p *Plan) RunShard(ctx context.Context, m *model.Model, i int, progress func(ShardProgress)) (ShardResult, error) {
	if i < 0 || i >= len(p.Shards) {
		return ShardResult{}, &dataError{fmt.Errorf("shard %d out of range [0, %d)", i, len(p.Shards))}
	}
	sh := p.Shards[i]
	res := ShardResult{Shard: i, Parts: len(sh.Parts), Rows: sh.Rows}
	pr := ShardProgress{Parts: len(sh.Parts), Rows: sh.Rows}
	var todo []Part
	for _, part := range sh.Parts {
		if p.partDone(part) {
			pr.PartsDone++
			pr.Skipped++
			pr.RowsDone += part.Rows
			continue
		}
		todo = append(todo, part)
	}
	res.Skipped = pr.Skipped
	if progress != nil {
		progress(pr)
	}
	if len(todo) == 0 {
		return res, nil
	}
	sc, err := newScorer(m, p.Model, p.Version, p.Passthrough, scoreBatchRows)
	if err != nil {
		return res, &dataError{err}
	}
	path := p.Files[sh.File].Path
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return res, &dataError{err}
	}
	defer r.Close()
	if err := sc.check(path, r); err != nil {
		return res, &dataError{err}
	}
	for _, part := range todo {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		out := filepath.Join(p.Staging, PartFile(part.ID))
		w, err := dataset.CreateParquet(out, sc.out, sc.writerOptions())
		if err != nil {
			return res, err
		}
		first := part.First
		for g := part.Lo; g <= part.Hi; g++ {
			n, err := sc.scoreRowGroup(ctx, r, g, first, w)
			if err != nil {
				w.Abort()
				return res, err
			}
			first += n
			pr.RowsDone += n
		}
		if _, err := w.Commit(); err != nil {
			return res, err
		}
		if err := touchLease(p.Staging); err != nil {
			return res, err
		}
		pr.PartsDone++
		if progress != nil {
			progress(pr)
		}
	}
	return res, nil
}

// Commit publishes the scored output: it checks that every part of the plan
// is complete, writes _SUCCESS into the staging directory and renames it
// onto the output directory (replacing an older output). Committing a plan
// whose output is already committed with the same key returns the existing
// manifest, so a retried commit is harmless.
func (p *Plan) Commit() (SuccessManifest, error) {
	if man, err := ReadSuccess(p.Output); err == nil && man.Key == p.Key {
		if _, serr := os.Stat(p.Staging); errors.Is(serr, os.ErrNotExist) {
			return man, nil
		}
	}
	man := SuccessManifest{Key: p.Key, Model: p.Model, Version: p.Version, Committed: time.Now().UTC()}
	for _, f := range p.Files {
		man.Inputs = append(man.Inputs, f.Path)
	}
	for _, sh := range p.Shards {
		for _, part := range sh.Parts {
			name := PartFile(part.ID)
			if !p.partDone(part) {
				return SuccessManifest{}, fmt.Errorf("committing %s: part %s (shard %d, %s row groups %d-%d) is missing", p.Output, name, sh.Index, p.Files[sh.File].Path, part.Lo, part.Hi)
			}
			sum, err := dataset.HashFile(filepath.Join(p.Staging, name))
			if err != nil {
				return SuccessManifest{}, err
			}
			man.Parts = append(man.Parts, SuccessPart{File: name, Rows: part.Rows, SHA256: sum})
			man.Rows += part.Rows
		}
	}
	// Only the plan's parts are published.
	ents, err := os.ReadDir(p.Staging)
	if err != nil {
		return SuccessManifest{}, err
	}
	keep := map[string]bool{}
	for _, pt := range man.Parts {
		keep[pt.File] = true
	}
	for _, e := range ents {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(p.Staging, e.Name()))
		}
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return SuccessManifest{}, err
	}
	if err := localfs.WriteFileAtomic(filepath.Join(p.Staging, SuccessFile), append(b, '\n')); err != nil {
		return SuccessManifest{}, err
	}
	// Swap the new output into place in one step: readers see the old
	// output or the new one, never a partial one.
	if err := localfs.ReplaceDir(p.Staging, p.Output); err != nil {
		return SuccessManifest{}, fmt.Errorf("committing %s: %w", p.Output, err)
	}
	return man, nil
}

// ReadSuccess reads the _SUCCESS manifest of a committed output directory.
func ReadSuccess(dir string) (SuccessManifest, error) {
	var man SuccessManifest
	b, err := os.ReadFile(filepath.Join(dir, SuccessFile))
	if err != nil {
		return man, err
	}
	if err := json.Unmarshal(b, &man); err != nil {
		return man, fmt.Errorf("decoding %s: %w", filepath.Join(dir, SuccessFile), err)
	}
	return man, nil
}

// Abandon removes the staging directory of a failed job, so nothing partial
// is left behind.
func (p *Plan) Abandon() error { return os.RemoveAll(p.Staging) }

// syncDir makes a rename in dir durable; errors are ignored (some file
// systems cannot sync directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// LocalOptions configure Local.
type LocalOptions struct {
	PlanOptions
	// Progress, when set, is called after every part (a directory output)
	// or row group (a file output) with the rows scored so far and in all.
	Progress func(done, total int64)
}

// LocalResult describes what Local wrote.
type LocalResult struct {
	Output string `json:"output"`
	// Single is true for one Parquet file, false for a directory of parts
	// with a _SUCCESS manifest.
	Single bool  `json:"single_file"`
	Files  int   `json:"input_files"`
	Parts  int   `json:"parts"`
	Rows   int64 `json:"rows"`
	// Skipped parts were already scored by an interrupted earlier run.
	Skipped int `json:"skipped_parts,omitempty"`
}

// Local scores files with m in this process, without Temporal (`kiln
// score`). An output ending in .parquet is written as one file (atomically);
// any other output is a directory of parts published with _SUCCESS, planned,
// scored shard by shard and committed like the score step (an interrupted
// run resumes from its staging directory). On failure nothing is published
// and a directory job's staging directory is removed, unless the context
// was cancelled (it is kept for a resume).
func Local(ctx context.Context, m *model.Model, files []string, out string, opts LocalOptions) (LocalResult, error) {
	if strings.HasSuffix(out, ".parquet") {
		return scoreSingle(ctx, m, files, out, opts)
	}
	p, err := NewPlan(m, files, out, opts.PlanOptions)
	if err != nil {
		return LocalResult{}, err
	}
	res := LocalResult{Output: p.Output, Files: len(p.Files), Parts: p.Parts, Rows: p.Rows}
	var before int64
	for i := range p.Shards {
		r, err := p.RunShard(ctx, m, i, func(sp ShardProgress) {
			if opts.Progress != nil {
				opts.Progress(before+sp.RowsDone, p.Rows)
			}
		})
		if err != nil {
			if ctx.Err() == nil {
				p.Abandon()
			} else {
				// Interrupted: the parts stay for a rerun of the same job to
				// resume, and another job may take the output over at once.
				releaseLease(p.Staging)
			}
			return res, err
		}
		res.Skipped += r.Skipped
		before += p.Shards[i].Rows
	}
	if _, err := p.Commit(); err != nil {
		return res, err
	}
	return res, nil
}

// scoreSingle scores files into one Parquet file.
func scoreSingle(ctx context.Context, m *model.Model, files []string, out string, opts LocalOptions) (LocalResult, error) {
	res := LocalResult{Output: out, Single: true, Files: len(files), Parts: 1}
	sc, err := newScorer(m, opts.Model, opts.Version, opts.Passthrough, scoreBatchRows)
	if err != nil {
		return res, &dataError{err}
	}
	readers := make([]*dataset.Reader, 0, len(files))
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	var total int64
	for _, f := range files {
		r, err := dataset.OpenParquet(f)
		if err != nil {
			return res, &dataError{err}
		}
		readers = append(readers, r)
		if err := sc.check(f, r); err != nil {
			return res, &dataError{err}
		}
		total += r.NumRows()
	}
	w, err := dataset.CreateParquet(out, sc.out, sc.writerOptions())
	if err != nil {
		return res, err
	}
	defer w.Abort()
	var done int64
	for _, r := range readers {
		var first int64
		for g := range r.NumRowGroups() {
			n, err := sc.scoreRowGroup(ctx, r, g, first, w)
			if err != nil {
				return res, err
			}
			first += n
			done += n
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
	}
	info, err := w.Commit()
	if err != nil {
		return res, err
	}
	res.Rows = info.Rows
	return res, nil
}

// GlobFiles returns the absolute paths of the regular files matching
// pattern, relative to dir unless absolute, in lexical order.
func GlobFiles(pattern, dir string) ([]string, error) {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(dir, pattern)
	}
	abs, err := filepath.Abs(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pattern, err)
	}
	matches, err := filepath.Glob(abs)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	items := []string{}
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			items = append(items, m)
		}
	}
	slices.Sort(items)
	return items, nil
}
