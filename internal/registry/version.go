package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Version statuses.
const (
	// StatusReady is a version available for aliasing and serving.
	StatusReady = "ready"
	// StatusRejected is a version kept for the record that failed a gate:
	// it can never be aliased, and neither "name@alias" nor "name" /
	// "name:latest" resolve to it ("name:N" still does, for inspection).
	StatusRejected = "rejected"
	// StatusRegistered is the former name of StatusReady. Register accepts
	// it and stores StatusReady.
	//
	// Deprecated: use StatusReady.
	StatusRegistered = "registered"
)

// Version is one immutable, numbered version of a model.
type Version struct {
	// Model is the model name, matching ^[a-z][a-z0-9_-]*$.
	Model string `json:"model"`
	// Version is the number assigned at registration: 1, 2, ... per model.
	Version int64 `json:"version"`
	// BundleURI locates the model bundle.
	BundleURI string `json:"bundle_uri"`
	// Status is StatusReady or StatusRejected.
	Status string `json:"status"`
	// Report is the gate report (JSON text) explaining the status, or "".
	Report string `json:"report,omitempty"`
	// Metrics are evaluation metrics; NaN and ±Inf survive storage.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Params are training parameters, stored as JSON: read back, numbers
	// are float64, objects map[string]any and arrays []any.
	Params map[string]any `json:"params,omitempty"`
	// DatasetHash and SpecHash identify the training data and pipeline spec.
	DatasetHash string `json:"dataset_hash,omitempty"`
	SpecHash    string `json:"spec_hash,omitempty"`
	// Pipeline, RunID and Step name the pipeline run step that produced the
	// version. A non-empty RunID makes registration idempotent per
	// (Model, RunID, Step).
	Pipeline string `json:"pipeline,omitempty"`
	RunID    string `json:"run_id,omitempty"`
	Step     string `json:"step,omitempty"`
	// Runtime and Image describe how the model was trained, e.g. "docker"
	// and "sha256:...".
	Runtime string `json:"runtime,omitempty"`
	Image   string `json:"image,omitempty"`
	// TrainerVersion is the version the trainer reported.
	TrainerVersion string `json:"trainer_version,omitempty"`
	// SpecText is the pipeline spec the version was trained from (SpecHash
	// is its SHA-256).
	SpecText string `json:"spec_text,omitempty"`
	// GitCommit is the commit of the git work tree holding the spec, when
	// it was in one; GitDirty reports uncommitted changes in that tree.
	GitCommit string `json:"git_commit,omitempty"`
	GitDirty  bool   `json:"git_dirty,omitempty"`
	// Datasets are the data the version was trained from, source first.
	Datasets []DatasetRef `json:"datasets,omitempty"`
	// WorkflowRunID is the Temporal run ID of the pipeline run whose
	// workflow ID is RunID.
	WorkflowRunID string `json:"workflow_run_id,omitempty"`
	// RequireApproval lists the aliases that may only point at this version
	// after an approval (the spec's register.require_approval).
	RequireApproval []string `json:"require_approval,omitempty"`
	// Trigger says what started the run that made the version, beyond
	// its trigger kind: e.g. "monitor decision #12 of churn: auc 0.69
	// below 0.75 ...".
	Trigger string `json:"trigger,omitempty"`
	// CreatedBy is the user or service that registered the version.
	CreatedBy string `json:"created_by,omitempty"`
	// CreatedAt is the registration time, in UTC.
	CreatedAt time.Time `json:"created_at"`
	// Aliases are the aliases pointing at this version when it was read,
	// sorted. They are not part of the immutable version.
	Aliases []string `json:"aliases,omitempty"`
}

// Dataset roles in a version's lineage.
const (
	// DatasetSource is the data as the spec names it (a file or URL).
	DatasetSource = "source"
	// DatasetIngested is the content-addressed Parquet copy ingest made.
	DatasetIngested = "ingested"
	// DatasetTrain, DatasetValid and DatasetTest are the preprocessed splits.
	DatasetTrain = "train"
	DatasetValid = "valid"
	DatasetTest  = "test"
	// DatasetAppended is data a retrain appended to the source: the served
	// rows whose labels arrived.
	DatasetAppended = "appended"
)

// DatasetRef is one dataset in a version's lineage.
type DatasetRef struct {
	// Role says what the dataset was to the run: DatasetSource, ...
	Role string `json:"role"`
	// URI locates the data.
	URI string `json:"uri"`
	// SHA256 is the hex SHA-256 of the content, when known.
	SHA256 string `json:"sha256,omitempty"`
	// Rows is the number of rows, when known.
	Rows int64 `json:"rows,omitempty"`
}

// ModelSummary describes a model and its versions.
type ModelSummary struct {
	// Name is the model name.
	Name string `json:"name"`
	// Versions is the number of versions.
	Versions int `json:"versions"`
	// Latest is the highest version number.
	Latest int64 `json:"latest"`
	// Aliases maps each alias of the model to its version.
	Aliases map[string]int64 `json:"aliases,omitempty"`
	// UpdatedAt is the time of the latest registration or alias change, UTC.
	UpdatedAt time.Time `json:"updated_at"`
}

// Ref is a parsed model reference: "name" or "name:latest" (the latest
// version that is not rejected), "name:3" or "name@alias".
type Ref struct {
	// Model is the model name.
	Model string
	// Version is the version number, or 0.
	Version int64
	// Alias is the alias name, or "".
	Alias string
}

// String formats the reference in the syntax ParseRef accepts.
func (r Ref) String() string {
	switch {
	case r.Version != 0:
		return r.Model + ":" + strconv.FormatInt(r.Version, 10)
	case r.Alias != "":
		return r.Model + "@" + r.Alias
	default:
		return r.Model
	}
}

// ParseRef parses "name", "name:N" (N >= 1), "name:latest" (the same as
// "name") or "name@alias".
func ParseRef(ref string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%w: model reference %q: %s (want name, name:version or name@alias)", ErrInvalid, ref, why)
	}
	if ref == "" {
		return bad("empty")
	}
	i := strings.IndexAny(ref, ":@")
	if i < 0 {
		if !nameRE.MatchString(ref) {
			return bad("model name must match " + nameRE.String())
		}
		return Ref{Model: ref}, nil
	}
	name, rest := ref[:i], ref[i+1:]
	if !nameRE.MatchString(name) {
		return bad("model name must match " + nameRE.String())
	}
	if ref[i] == ':' {
		if rest == "latest" {
			return Ref{Model: name}, nil
		}
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n < 1 || rest != strconv.FormatInt(n, 10) {
			return bad("version must be a positive integer")
		}
		return Ref{Model: name, Version: n}, nil
	}
	if !nameRE.MatchString(rest) {
		return bad("alias name must match " + nameRE.String())
	}
	return Ref{Model: name, Alias: rest}, nil
}

// Register records a new version of v.Model and returns it with its number
// and CreatedAt (set to now if zero) filled in, and true. The number is the
// model's previous highest plus one, assigned in the registering transaction.
// When v.RunID is not empty and a version with the same (Model, RunID, Step)
// exists, Register returns that version and false instead. v.Version and
// v.Aliases are ignored; an empty Status means StatusReady. v.Report, if not
// empty, must be valid JSON.
func (r *Registry) Register(ctx context.Context, v Version) (Version, bool, error) {
	if err := validName("model", v.Model); err != nil {
		return Version{}, false, fmt.Errorf("register: %w", err)
	}
	if v.BundleURI == "" {
		return Version{}, false, fmt.Errorf("register %s: %w: empty bundle URI", v.Model, ErrInvalid)
	}
	if v.Status == "" || v.Status == StatusRegistered {
		v.Status = StatusReady
	}
	if v.Status != StatusReady && v.Status != StatusRejected {
		return Version{}, false, fmt.Errorf("register %s: %w: status %q is neither %q nor %q",
			v.Model, ErrInvalid, v.Status, StatusReady, StatusRejected)
	}
	if v.Report != "" && !json.Valid([]byte(v.Report)) {
		return Version{}, false, fmt.Errorf("register %s: %w: report is not valid JSON", v.Model, ErrInvalid)
	}
	for _, a := range v.RequireApproval {
		if err := validName("alias", a); err != nil {
			return Version{}, false, fmt.Errorf("register %s: require_approval: %w", v.Model, err)
		}
	}
	datasets, err := encodeJSONList(v.Datasets)
	if err != nil {
		return Version{}, false, fmt.Errorf("register %s: datasets: %w", v.Model, err)
	}
	approvals, err := encodeJSONList(v.RequireApproval)
	if err != nil {
		return Version{}, false, fmt.Errorf("register %s: require_approval: %w", v.Model, err)
	}
	metrics, err := encodeMetrics(v.Metrics)
	if err != nil {
		return Version{}, false, fmt.Errorf("register %s: %w", v.Model, err)
	}
	params, err := encodeParams(v.Params)
	if err != nil {
		return Version{}, false, fmt.Errorf("register %s: %w", v.Model, err)
	}
	now := r.now().UTC()
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now
	}
	v.CreatedAt = v.CreatedAt.UTC()
	v.Aliases = nil

	tx, err := r.writeTx(ctx)
	if err != nil {
		return Version{}, false, fmt.Errorf("register %s: %w", v.Model, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO models (name, last_version, created_at, updated_at) VALUES ($1, 0, $2, $2)
		 ON CONFLICT (name) DO NOTHING`, v.Model, formatTime(now)); err != nil {
		return Version{}, false, fmt.Errorf("register %s: create model: %w", v.Model, err)
	}
	// Incrementing the counter first also locks the model row (PostgreSQL),
	// so the idempotency check below cannot race with a concurrent retry.
	if err := tx.QueryRowContext(ctx,
		`UPDATE models SET last_version = last_version + 1, updated_at = $2 WHERE name = $1 RETURNING last_version`,
		v.Model, formatTime(now)).Scan(&v.Version); err != nil {
		return Version{}, false, fmt.Errorf("register %s: assign version number: %w", v.Model, err)
	}
	if v.RunID != "" {
		var existing int64
		err := tx.QueryRowContext(ctx,
			`SELECT version FROM versions WHERE model = $1 AND run_id = $2 AND step = $3`,
			v.Model, v.RunID, v.Step).Scan(&existing)
		switch {
		case err == nil:
			got, err := getVersion(ctx, tx, v.Model, existing)
			if err != nil {
				return Version{}, false, fmt.Errorf("register %s: %w", v.Model, err)
			}
			return got, false, nil // the deferred rollback undoes the increment
		case !errors.Is(err, sql.ErrNoRows):
			return Version{}, false, fmt.Errorf("register %s: look up run %s step %q: %w", v.Model, v.RunID, v.Step, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (model, version, bundle_uri, status, metrics, params,
    dataset_hash, spec_hash, pipeline, run_id, step, runtime, image, created_by, created_at, report,
    spec_text, git_commit, git_dirty, datasets, trainer_version, workflow_run_id, require_approval, trigger_ref)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
    $17, $18, $19, $20, $21, $22, $23, $24)`,
		v.Model, v.Version, v.BundleURI, v.Status, metrics, params,
		v.DatasetHash, v.SpecHash, v.Pipeline, v.RunID, v.Step, v.Runtime, v.Image, v.CreatedBy,
		formatTime(v.CreatedAt), v.Report,
		v.SpecText, v.GitCommit, boolInt(v.GitDirty), datasets, v.TrainerVersion, v.WorkflowRunID, approvals, v.Trigger); err != nil {
		return Version{}, false, fmt.Errorf("register %s version %d: %w", v.Model, v.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return Version{}, false, fmt.Errorf("register %s version %d: commit: %w", v.Model, v.Version, err)
	}
	return v, true, nil
}

// Get returns a version of a model; errors.Is(err, ErrNotFound) when it does
// not exist.
func (r *Registry) Get(ctx context.Context, model string, version int64) (Version, error) {
	if err := validName("model", model); err != nil {
		return Version{}, fmt.Errorf("get: %w", err)
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return Version{}, fmt.Errorf("get %s:%d: %w", model, version, err)
	}
	defer tx.Rollback()
	return getVersion(ctx, tx, model, version)
}

// Resolve returns the version a reference designates: "name:3" that version
// (whatever its status), "name@production" the version the alias points to,
// "name" and "name:latest" the highest version that is not rejected. A
// malformed reference gives an ErrInvalid error; a missing model, version or
// alias (or a model with only rejected versions, for "name") an ErrNotFound
// error; an alias on a rejected version, which SetAlias prevents, an
// ErrRejected error.
func (r *Registry) Resolve(ctx context.Context, ref string) (Version, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return Version{}, fmt.Errorf("resolve: %w", err)
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return Version{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	defer tx.Rollback()
	n := p.Version
	switch {
	case p.Alias != "":
		err := tx.QueryRowContext(ctx, `SELECT version FROM aliases WHERE model = $1 AND alias = $2`,
			p.Model, p.Alias).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			if err := requireModel(ctx, tx, p.Model); err != nil {
				return Version{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
			return Version{}, fmt.Errorf("resolve %s: alias %s of model %s: %w", ref, p.Alias, p.Model, ErrNotFound)
		}
		if err != nil {
			return Version{}, fmt.Errorf("resolve %s: look up alias: %w", ref, err)
		}
	case n == 0:
		var latest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM versions WHERE model = $1 AND status <> $2`,
			p.Model, StatusRejected).Scan(&latest); err != nil {
			return Version{}, fmt.Errorf("resolve %s: latest version: %w", ref, err)
		}
		if !latest.Valid {
			if err := requireModel(ctx, tx, p.Model); err != nil {
				return Version{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
			return Version{}, fmt.Errorf("resolve %s: model %s has no version that is not rejected: %w", ref, p.Model, ErrNotFound)
		}
		n = latest.Int64
	}
	v, err := getVersion(ctx, tx, p.Model, n)
	if err != nil {
		return Version{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if p.Alias != "" && v.Status == StatusRejected {
		return Version{}, fmt.Errorf("resolve %s: %s version %d: %w", ref, p.Model, n, ErrRejected)
	}
	return v, nil
}

// Versions returns the versions of a model, newest first;
// errors.Is(err, ErrNotFound) when the model does not exist.
func (r *Registry) Versions(ctx context.Context, model string) ([]Version, error) {
	if err := validName("model", model); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", model, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, model); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	out, err := queryAll(ctx, tx, "versions of "+model, scanVersion, `SELECT `+versionColumns+` FROM versions WHERE model = $1 ORDER BY version DESC`, model)
	if err != nil {
		return nil, err
	}
	aliases, err := modelAliases(ctx, tx, model)
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", model, err)
	}
	for i := range out {
		out[i].Aliases = aliasesOf(aliases, out[i].Version)
	}
	return out, nil
}

// Models summarises every model, sorted by name.
func (r *Registry) Models(ctx context.Context) ([]ModelSummary, error) {
	tx, err := r.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT m.name, COUNT(v.version), COALESCE(MAX(v.version), 0), m.updated_at
FROM models m LEFT JOIN versions v ON v.model = m.name
GROUP BY m.name, m.updated_at
ORDER BY m.name`)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer rows.Close()
	var out []ModelSummary
	index := map[string]int{}
	for rows.Next() {
		var s ModelSummary
		var updated string
		if err := rows.Scan(&s.Name, &s.Versions, &s.Latest, &updated); err != nil {
			return nil, fmt.Errorf("list models: %w", err)
		}
		if s.UpdatedAt, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("list models: %s: %w", s.Name, err)
		}
		index[s.Name] = len(out)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	rows.Close()
	arows, err := tx.QueryContext(ctx, `SELECT model, alias, version FROM aliases`)
	if err != nil {
		return nil, fmt.Errorf("list models: aliases: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var model, alias string
		var version int64
		if err := arows.Scan(&model, &alias, &version); err != nil {
			return nil, fmt.Errorf("list models: aliases: %w", err)
		}
		i, ok := index[model]
		if !ok {
			continue
		}
		if out[i].Aliases == nil {
			out[i].Aliases = map[string]int64{}
		}
		out[i].Aliases[alias] = version
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("list models: aliases: %w", err)
	}
	return out, nil
}

// versionColumns are the versions columns scanVersion reads, in order.
const versionColumns = `model, version, bundle_uri, status, metrics, params, dataset_hash, spec_hash,
    pipeline, run_id, step, runtime, image, created_by, created_at, report,
    spec_text, git_commit, git_dirty, datasets, trainer_version, workflow_run_id, require_approval, trigger_ref`

// scanVersion scans a row of versionColumns.
func scanVersion(row scanner) (Version, error) {
	var v Version
	var metrics, params, created, datasets, approvals string
	var dirty int64
	if err := row.Scan(&v.Model, &v.Version, &v.BundleURI, &v.Status, &metrics, &params,
		&v.DatasetHash, &v.SpecHash, &v.Pipeline, &v.RunID, &v.Step, &v.Runtime, &v.Image,
		&v.CreatedBy, &created, &v.Report,
		&v.SpecText, &v.GitCommit, &dirty, &datasets, &v.TrainerVersion, &v.WorkflowRunID, &approvals, &v.Trigger); err != nil {
		return Version{}, err
	}
	v.GitDirty = dirty != 0
	if err := decodeJSONList(datasets, &v.Datasets); err != nil {
		return Version{}, fmt.Errorf("%s:%d: datasets: %w", v.Model, v.Version, err)
	}
	if err := decodeJSONList(approvals, &v.RequireApproval); err != nil {
		return Version{}, fmt.Errorf("%s:%d: require_approval: %w", v.Model, v.Version, err)
	}
	var err error
	if v.Metrics, err = decodeMetrics(metrics); err != nil {
		return Version{}, fmt.Errorf("%s:%d: %w", v.Model, v.Version, err)
	}
	if v.Params, err = decodeParams(params); err != nil {
		return Version{}, fmt.Errorf("%s:%d: %w", v.Model, v.Version, err)
	}
	if v.CreatedAt, err = parseTime(created); err != nil {
		return Version{}, fmt.Errorf("%s:%d: %w", v.Model, v.Version, err)
	}
	return v, nil
}

// getVersion reads one version and its aliases.
func getVersion(ctx context.Context, q querier, model string, version int64) (Version, error) {
	v, err := scanVersion(q.QueryRowContext(ctx,
		`SELECT `+versionColumns+` FROM versions WHERE model = $1 AND version = $2`, model, version))
	if errors.Is(err, sql.ErrNoRows) {
		if err := requireModel(ctx, q, model); err != nil {
			return Version{}, err
		}
		return Version{}, fmt.Errorf("model %s version %d: %w", model, version, ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read %s:%d: %w", model, version, err)
	}
	aliases, err := modelAliases(ctx, q, model)
	if err != nil {
		return Version{}, err
	}
	v.Aliases = aliasesOf(aliases, version)
	return v, nil
}

// modelAliases maps each alias of a model to its version.
func modelAliases(ctx context.Context, q querier, model string) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT alias, version FROM aliases WHERE model = $1`, model)
	if err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", model, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var alias string
		var version int64
		if err := rows.Scan(&alias, &version); err != nil {
			return nil, fmt.Errorf("aliases of %s: %w", model, err)
		}
		out[alias] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", model, err)
	}
	return out, nil
}

// aliasesOf returns the sorted aliases pointing at version, nil if none.
func aliasesOf(aliases map[string]int64, version int64) []string {
	var out []string
	for a, v := range aliases {
		if v == version {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// encodeMetrics renders metrics as a JSON object; NaN and ±Inf, which JSON
// numbers cannot hold, become the strings "NaN", "+Inf" and "-Inf".
func encodeMetrics(m map[string]float64) (string, error) {
	obj := make(map[string]any, len(m))
	for k, x := range m {
		switch {
		case math.IsNaN(x):
			obj[k] = "NaN"
		case math.IsInf(x, 1):
			obj[k] = "+Inf"
		case math.IsInf(x, -1):
			obj[k] = "-Inf"
		default:
			obj[k] = x
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("encode metrics: %w", err)
	}
	return string(b), nil
}

// decodeMetrics reverses encodeMetrics; an empty object gives nil.
func decodeMetrics(s string) (map[string]float64, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("decode metrics: %w", err)
	}
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string]float64, len(raw))
	for k, msg := range raw {
		var x float64
		if err := json.Unmarshal(msg, &x); err == nil {
			out[k] = x
			continue
		}
		var special string
		if err := json.Unmarshal(msg, &special); err != nil {
			return nil, fmt.Errorf("decode metric %s: %s is neither a number nor a string", k, msg)
		}
		switch special {
		case "NaN":
			out[k] = math.NaN()
		case "+Inf":
			out[k] = math.Inf(1)
		case "-Inf":
			out[k] = math.Inf(-1)
		default:
			return nil, fmt.Errorf("decode metric %s: unexpected value %q", k, special)
		}
	}
	return out, nil
}

// encodeParams renders params as a JSON object.
func encodeParams(p map[string]any) (string, error) {
	if p == nil {
		return "{}", nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode params: %w", err)
	}
	return string(b), nil
}

// decodeParams reverses encodeParams; an empty object gives nil.
func decodeParams(s string) (map[string]any, error) {
	var out map[string]any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode params: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// encodeJSONList renders a slice as a JSON array ("[]" when empty).
func encodeJSONList[T any](list []T) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeJSONList reverses encodeJSONList; an empty array leaves *out nil.
func decodeJSONList[T any](s string, out *[]T) error {
	if s == "" || s == "[]" {
		*out = nil
		return nil
	}
	return json.Unmarshal([]byte(s), out)
}

// boolInt stores a bool as 0 or 1 (portable across SQLite and PostgreSQL).
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
