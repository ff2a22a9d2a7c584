package pipelines

import (
	"errors"
	"fmt"
	"github.com/kiln-ml/kiln/internal/canary"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/internal/gate"
)

// Defaults applied by the decoder; see the field comments in spec.go.
const (
	DefaultTrainerImage = "kiln/trainer:dev"
	DefaultMaxAttempts  = 3
	DefaultBackoff      = Duration(time.Second)
	// DefaultParallelism bounds the items of a foreach step running at once.
	DefaultParallelism = 16
)

// ForeachTypes are the step types that may run once per item (foreach).
var ForeachTypes = []StepType{StepIngest, StepScore, StepNoop}

var (
	// queueRE is what a step's queue may be named.
	queueRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
	stepKeys      = []string{"name", "uses", "needs", "when", "foreach", "with", "retry", "timeout", "container", "queue"}
	foreachKeys   = []string{"items", "files", "row_groups", "parallelism", "continue_on_error"}
	onTimeouts    = []string{"fail", "skip"}
	retryKeys     = []string{"max_attempts", "backoff"}
	containerKeys = []string{"image", "cpus", "memory", "timeout", "runtime", "gpus"}
	runtimes      = []string{"auto", "docker", "process"}
	formats       = []string{"csv", "jsonl", "parquet"}
	tasks         = []string{"binary", "multiclass", "regression"}
	algorithms    = []string{"logistic", "gbdt", "ridge"}
	transformKeys = []string{"impute", "standardize", "minmax", "onehot", "ordinal", "bucketize", "log1p", "clip"}
	strategies    = []string{"mean", "median", "most_frequent", "mode", "constant"}
)

// DefaultContainer returns the container a train step gets when its spec
// gives none, and the base that a partial container mapping overrides.
func DefaultContainer() Container {
	return Container{Image: DefaultTrainerImage, CPUs: 1, Memory: GiB, Timeout: Duration(30 * time.Minute), Runtime: "auto"}
}

// stepInfo keeps a step's YAML nodes for graph validation messages.
type stepInfo struct {
	node *yaml.Node
	path string
	// nameNode is the name's value, nil when the name is missing or invalid.
	nameNode *yaml.Node
	// needs are the well-formed entries of needs, with their nodes and paths.
	needs     []string
	needNodes []*yaml.Node
	needPaths []string
	// needsAt is where problems about needs as a whole point.
	needsAt   *yaml.Node
	needsPath string
	// unsure is true when the step has unknown keys (a misspelt needs?) or
	// no known type, so that graph checks involving it would only add noise.
	unsure bool
	// foreach is true when the step has a foreach key, valid or not: its
	// with may then use ${item}.
	foreach bool
	// rowGroupsAt and rowGroupsPath locate foreach.row_groups when it is true.
	rowGroupsAt   *yaml.Node
	rowGroupsPath string
	// refs are the references to other steps' outputs in when and with.
	refs []outputRef
	// ownInput is true when a score step has with.model or a report step
	// with.input, which replace the input an upstream step would give
	// (see validateGraph); ownInputAt locates it when it is valid.
	ownInput     bool
	ownInputAt   *yaml.Node
	ownInputPath string
	// gate is an evaluate step's valid gate, checked against the task of its
	// upstream preprocess step (see checkTasks); sigMetricAt locates its
	// significance metric.
	gate          *scalar
	gatePath      string
	sigMetricAt   *yaml.Node
	sigMetricPath string
	// algorithmAt locates a train step's valid algorithm, checked against
	// the task of its upstream preprocess step (see checkTasks).
	algorithmAt   *yaml.Node
	algorithmPath string
}

// decodeStep decodes one item of steps into st.
func (d *decoder) decodeStep(item *yaml.Node, path string, spec *Spec, st *Step) *stepInfo {
	st.Line, st.Column = item.Line, item.Column
	info := &stepInfo{node: item, path: path, needsAt: item, needsPath: path}
	d.cur = info
	defer func() { d.cur = nil }()
	o := d.object(item, item, path, stepKeys)
	if !o.ok {
		info.unsure = true
		return info
	}
	info.unsure = o.unknown > 0
	_, info.foreach = o.keys["foreach"]
	o.require("name")
	if o.str("name", &st.Name) {
		n, p := o.where("name")
		if stepNameRE.MatchString(st.Name) {
			info.nameNode = n
		} else {
			d.errorf(n, p, "invalid step name %q: use lowercase letters, digits, dashes and underscores, starting with a letter", st.Name)
		}
	}

	o.require("uses")
	var uses string
	known := false
	if o.str("uses", &uses) {
		st.Uses = StepType(uses)
		if known = contains(StepTypes, st.Uses); !known {
			n, p := o.where("uses")
			names := make([]string, len(StepTypes))
			for i, t := range StepTypes {
				names[i] = string(t)
			}
			d.errorf(n, p, "unknown step type %q%s (known types: %s)", uses, didYouMean(uses, names), quoteList(names))
		}
	}

	if n, p, ok := o.get("needs"); ok {
		info.needsAt, info.needsPath = n, p
		if items, paths, ok := d.list(n, p, true); ok {
			for i, item := range items {
				s, ok := d.scalar(item, paths[i], "a step name")
				if !ok {
					continue
				}
				if v, ok := d.asString(s, paths[i]); ok {
					info.needs = append(info.needs, v)
					info.needNodes = append(info.needNodes, item)
					info.needPaths = append(info.needPaths, paths[i])
				}
			}
		}
		st.Needs = info.needs
	}

	st.Retry = Retry{MaxAttempts: DefaultMaxAttempts, Backoff: DefaultBackoff}
	r := d.object(o.vals["retry"], item, joinPath(path, "retry"), retryKeys)
	if r.int("max_attempts", &st.Retry.MaxAttempts) && st.Retry.MaxAttempts < 1 {
		n, p := r.where("max_attempts")
		d.errorf(n, p, "max_attempts must be at least 1 (1 means no retries), found %d", st.Retry.MaxAttempts)
	}
	r.duration("backoff", &st.Retry.Backoff)
	o.duration("timeout", &st.Timeout)
	if o.str("queue", &st.Queue) && !queueRE.MatchString(st.Queue) {
		n, p := o.where("queue")
		d.errorf(n, p, "queue %q: want a task queue name of letters, digits, '.', '_' and '-' (e.g. train, gpu)", st.Queue)
	}

	if k, ok := o.keys["container"]; ok && known && st.Uses != StepTrain {
		d.errorf(k, joinPath(path, "container"), "container is only allowed on train steps, and this step uses %s", st.Uses)
	}
	if st.Uses == StepTrain {
		st.Container = d.decodeContainer(d.object(o.vals["container"], item, joinPath(path, "container"), containerKeys))
	}
	d.decodeWhen(o, st)
	if k, ok := o.keys["foreach"]; ok {
		allowed := !known || contains(ForeachTypes, st.Uses)
		if !allowed {
			names := make([]string, len(ForeachTypes))
			for i, t := range ForeachTypes {
				names[i] = string(t)
			}
			d.errorf(k, joinPath(path, "foreach"), "foreach is only allowed on %s and %s steps, and this step uses %s",
				strings.Join(names[:len(names)-1], ", "), names[len(names)-1], st.Uses)
		}
		fe := d.decodeForeach(d.object(o.vals["foreach"], k, joinPath(path, "foreach"), foreachKeys), info)
		if allowed {
			st.Foreach = fe
		}
	}

	if !known {
		info.unsure = true
		return info
	}
	wpath := joinPath(path, "with")
	w := func(keys ...string) *object { return d.object(o.vals["with"], item, wpath, keys) }
	d.inWith = true
	defer func() { d.inWith = false }()
	switch st.Uses {
	case StepIngest:
		st.Ingest = d.decodeIngest(w("source", "format", "schema", "expect"), st.Foreach)
	case StepPreprocess:
		st.Preprocess = d.decodePreprocess(w("target", "task", "exclude", "split", "transforms"))
	case StepTrain:
		st.Train = d.decodeTrain(w("algorithm", "params"))
	case StepEvaluate:
		st.Evaluate = d.decodeEvaluate(w("gate", "threshold", "champion", "significance", "holdout"), info)
	case StepRegister:
		st.Register = d.decodeRegister(w("model", "alias", "require_approval"), spec.Name)
	case StepScore:
		st.Score = d.decodeScore(w("model", "input", "output", "passthrough", "row_groups", "shard_rows", "max_shards", "parallelism"), info)
	case StepReport:
		st.Report = d.decodeReport(w("input", "output", "model", "labels", "threshold", "trend", "drift", "columns", "title"), info)
	case StepDeploy:
		st.Deploy = d.decodeDeploy(w("server", "servers", "alias", "steps", "interval", "min_requests", "max_error_rate_increase", "max_waits",
			"max_intervals", "analysis", "require_approval", "shadow"))
	case StepMonitor:
		st.Monitor = d.decodeMonitor(w("interval", "psi_threshold", "min_rows", "window", "retrain", "cooldown",
			"drift_share", "features", "metric", "min_labels", "labels", "drift"))
	case StepApproval:
		st.Approval = d.decodeApproval(w("message", "approvers", "timeout", "on_timeout"))
	case StepNoop:
		st.Noop = d.decodeNoop(w("sleep"))
	}
	return info
}

// decodeForeach reads a step's foreach mapping: exactly one source (items,
// files or row_groups: true), parallelism and continue_on_error.
func (d *decoder) decodeForeach(o *object, info *stepInfo) *Foreach {
	fe := &Foreach{Parallelism: DefaultParallelism}
	if !o.ok {
		return fe
	}
	var sources []string
	if n, p, ok := o.get("items"); ok {
		sources = append(sources, "items")
		if items, paths, ok := d.list(n, p, false); ok {
			if len(items) == 0 {
				d.errorf(n, p, "items must list at least one item")
			}
			for i, item := range items {
				s, ok := d.scalar(item, paths[i], "an item (a single value)")
				if !ok {
					continue
				}
				if s.tag == "!!null" {
					d.errorf(item, paths[i], "expected an item (a single value), found null")
					continue
				}
				fe.Items = append(fe.Items, s.str)
			}
		}
	}
	if _, _, ok := o.get("files"); ok {
		sources = append(sources, "files")
		if o.str("files", &fe.Files) {
			n, p := o.where("files")
			if strings.TrimSpace(fe.Files) == "" {
				d.errorf(n, p, "must not be empty")
			} else if _, err := filepath.Match(fe.Files, ""); err != nil {
				d.errorf(n, p, "invalid files pattern %q: %v; a pattern uses *, ?, [a-z] and \\ escapes", fe.Files, err)
			}
		}
	}
	if o.bool("row_groups", &fe.RowGroups) && fe.RowGroups {
		sources = append(sources, "row_groups")
		info.rowGroupsAt, info.rowGroupsPath = o.where("row_groups")
	}
	if o.int("parallelism", &fe.Parallelism) && fe.Parallelism < 1 {
		n, p := o.where("parallelism")
		d.errorf(n, p, "parallelism must be at least 1, found %d", fe.Parallelism)
	}
	o.bool("continue_on_error", &fe.ContinueOnError)
	switch len(sources) {
	case 0:
		d.errorf(o.at, o.path, "foreach needs one source: items (a list), files (a glob) or row_groups: true")
	case 1:
	default:
		d.errorf(o.keys[sources[1]], joinPath(o.path, sources[1]), "foreach takes exactly one source, found %d: %s; keep one", len(sources), quoteList(sources))
	}
	return fe
}

func (d *decoder) decodeApproval(o *object) *ApprovalConfig {
	c := &ApprovalConfig{OnTimeout: "fail"}
	o.str("message", &c.Message)
	if o.strings("approvers", &c.Approvers) {
		for _, a := range c.Approvers {
			if strings.TrimSpace(a) == "" {
				n, p := o.where("approvers")
				d.errorf(n, p, "approver names must not be empty")
				break
			}
		}
	}
	o.duration("timeout", &c.Timeout)
	if o.str("on_timeout", &c.OnTimeout) {
		o.oneOf("on_timeout", c.OnTimeout, "on_timeout", onTimeouts)
	}
	return c
}

func (d *decoder) decodeNoop(o *object) *NoopConfig {
	c := &NoopConfig{}
	o.durationFrom("sleep", &c.Sleep, true)
	return c
}

// oneOf reports a problem when key's value is set and not one of allowed.
func (o *object) oneOf(key, value, what string, allowed []string) bool {
	if contains(allowed, value) {
		return true
	}
	n, p := o.where(key)
	o.d.errorf(n, p, "unsupported %s %q%s (supported: %s)", what, value, didYouMean(value, allowed), quoteList(allowed))
	return false
}

func (d *decoder) decodeContainer(o *object) *Container {
	c := DefaultContainer()
	if o.str("image", &c.Image) && strings.TrimSpace(c.Image) == "" {
		n, p := o.where("image")
		d.errorf(n, p, "must not be empty")
	}
	if o.float("cpus", &c.CPUs) && c.CPUs <= 0 {
		n, p := o.where("cpus")
		d.errorf(n, p, "cpus must be greater than 0, found %g", c.CPUs)
	}
	if o.bytes("memory", &c.Memory) && c.Memory < 4*MiB {
		n, p := o.where("memory")
		d.errorf(n, p, "memory must be at least 4MiB, found %s", c.Memory)
	}
	o.duration("timeout", &c.Timeout)
	if o.str("runtime", &c.Runtime) {
		o.oneOf("runtime", c.Runtime, "runtime", runtimes)
	}
	d.decodeGPUs(o, &c.GPUs)
	return &c
}

// decodeGPUs reads container.gpus: "all" or a count of GPUs.
func (d *decoder) decodeGPUs(o *object, dst *int) {
	n, path, ok := o.get("gpus")
	if !ok {
		return
	}
	s, ok := d.scalar(n, path, "`all` or a number of GPUs")
	if !ok {
		return
	}
	count := int64(-1)
	switch s.tag {
	case "!!int":
		count = s.i
	case "!!str":
		if strings.EqualFold(strings.TrimSpace(s.str), "all") {
			*dst = GPUsAll
			return
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(s.str), 10, 64); err == nil {
			count = v
		}
	}
	if count < 0 || count > 1024 {
		d.errorf(n, path, "gpus must be `all` or a number of GPUs (0 to 1024), found %q%s", s.str, s.origin())
		return
	}
	*dst = int(count)
}

func (d *decoder) decodePreprocess(o *object) *PreprocessConfig {
	c := &PreprocessConfig{Task: "binary", Split: Split{Test: 0.2, Valid: 0.1, Seed: 42}}
	o.requiredString("target", &c.Target)
	if o.str("task", &c.Task) {
		o.oneOf("task", c.Task, "task", tasks)
	}
	if o.strings("exclude", &c.Exclude) && c.Target != "" && contains(c.Exclude, c.Target) {
		n, p := o.where("exclude")
		d.errorf(n, p, "the target %q cannot also be excluded", c.Target)
	}

	s := d.object(o.vals["split"], o.at, joinPath(o.path, "split"), []string{"test", "valid", "seed"})
	testOK := s.float("test", &c.Split.Test)
	validOK := s.float("valid", &c.Split.Valid)
	s.int64("seed", &c.Split.Seed)
	inRange := true
	for _, f := range []struct {
		key string
		v   float64
		ok  bool
	}{{"test", c.Split.Test, testOK}, {"valid", c.Split.Valid, validOK}} {
		if f.ok && (f.v < 0 || f.v >= 1) {
			n, p := s.where(f.key)
			d.errorf(n, p, "split fraction %s must be in [0, 1), found %g", f.key, f.v)
			inRange = false
		}
	}
	if inRange && (testOK || validOK) && c.Split.Test+c.Split.Valid >= 1 {
		key := "test"
		if !testOK {
			key = "valid"
		}
		n, p := s.where(key)
		d.errorf(n, p, "test (%g) and valid (%g) fractions must leave rows to train on: their sum must be below 1", c.Split.Test, c.Split.Valid)
	}

	if n, p, ok := o.get("transforms"); ok {
		if items, paths, ok := d.list(n, p, false); ok {
			for i, item := range items {
				if t, ok := d.decodeTransform(item, paths[i]); ok {
					c.Transforms = append(c.Transforms, t)
				}
			}
		}
	}
	return c
}

func (d *decoder) decodeTrain(o *object) *TrainConfig {
	c := &TrainConfig{}
	o.requiredString("algorithm", &c.Algorithm)
	if c.Algorithm != "" {
		n, p := o.where("algorithm")
		if !contains(algorithms, c.Algorithm) {
			d.errorf(n, p, "unsupported algorithm %q%s (supported algorithms: %s)", c.Algorithm, didYouMean(c.Algorithm, algorithms), quoteList(algorithms))
		} else if d.cur != nil {
			d.cur.algorithmAt, d.cur.algorithmPath = n, p
		}
	}
	if n, p, ok := o.get("params"); ok {
		if n.Kind != yaml.MappingNode {
			d.errorf(n, p, "expected a mapping of trainer parameters, found %s", describeNode(n))
		} else if v, ok := d.value(n, p); ok {
			c.Params = v.(map[string]any)
			switch c.Algorithm {
			case "logistic":
				d.checkLogisticParams(n, p)
			case "gbdt":
				d.checkTrainParams("gbdt", gbdtParams, n, p)
			case "ridge":
				d.checkTrainParams("ridge", ridgeParams, n, p)
			}
		}
	}
	return c
}

// logisticParams are the parameters the reference trainer
// (containers/trainer) accepts for algorithm logistic; it rejects any other
// name at run time.
var logisticParams = []string{"l2", "max_iter", "tol"}

// maxIter is the largest max_iter the reference trainer accepts.
const maxIter = 1_000_000

// checkLogisticParams checks the params mapping n of a logistic train step
// as the reference trainer does (see parseLogisticParams in
// containers/trainer): only l2 (>= 0), max_iter (a whole number from 1 to
// 1000000) and tol (>= 0), each a finite number. It must only be called once
// d.value has decoded n successfully, so that its problems (such as an
// unknown ${params.NAME}) are not reported again.
func (d *decoder) checkLogisticParams(n *yaml.Node, path string) {
	for _, pr := range d.pairs(n, path) {
		k, v := d.deref(pr.key), d.deref(pr.value)
		if k == nil || v == nil {
			continue
		}
		name, vpath := k.Value, joinPath(path, k.Value)
		if !contains(logisticParams, name) {
			if hint := didYouMean(name, logisticParams); hint != "" {
				d.errorf(k, vpath, "unknown parameter %q for algorithm logistic%s", name, hint)
			} else {
				d.errorf(k, vpath, "unknown parameter %q for algorithm logistic (known parameters: %s)", name, quoteList(logisticParams))
			}
			continue
		}
		s, ok := d.scalar(v, vpath, wantNumber)
		if !ok {
			continue
		}
		x, ok := d.asFloat(s, vpath)
		if !ok {
			continue
		}
		switch name {
		case "l2":
			if x < 0 {
				d.errorf(v, vpath, "l2 must not be negative, found %s%s", s.str, s.origin())
			}
		case "max_iter":
			if x < 1 || x > maxIter || x != math.Trunc(x) {
				d.errorf(v, vpath, "max_iter must be a whole number from 1 to %d, found %s%s", maxIter, s.str, s.origin())
			}
		case "tol":
			if x < 0 {
				d.errorf(v, vpath, "tol must not be negative, found %s%s", s.str, s.origin())
			}
		}
	}
}

func (d *decoder) decodeEvaluate(o *object, info *stepInfo) *EvaluateConfig {
	c := &EvaluateConfig{Threshold: 0.5}
	if n, p, ok := o.get("gate"); ok {
		if s, ok := d.scalar(n, p, "a gate expression (a string)"); ok {
			if v, ok := d.asString(s, p); ok && v != "" {
				c.Gate = v
				if d.checkGate(s, p) {
					info.gate, info.gatePath = &s, p
				}
			}
		}
	}
	if _, ok := o.keys["significance"]; ok {
		c.Significance = d.decodeSignificance(d.object(o.vals["significance"], o.keys["significance"], joinPath(o.path, "significance"), significanceKeys), info)
	}
	if o.float("threshold", &c.Threshold) && (c.Threshold <= 0 || c.Threshold >= 1) {
		n, p := o.where("threshold")
		d.errorf(n, p, "threshold must be between 0 and 1 (exclusive), found %g", c.Threshold)
	}
	if o.str("champion", &c.Champion) && !modelRefRE.MatchString(c.Champion) {
		n, p := o.where("champion")
		d.errorf(n, p, "invalid champion %q: use a registry reference such as churn@production or churn:3", c.Champion)
	}
	if o.str("holdout", &c.Holdout) {
		o.oneOf("holdout", c.Holdout, "holdout", []string{HoldoutAll, HoldoutRecent})
	}
	return c
}

// modelRefRE matches registry references: name, name:version or name@alias.
var modelRefRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[1-9][0-9]*|@[a-z][a-z0-9_-]*)?$`)

// defaultChampions points each evaluate step without a champion at the
// production alias of the model its downstream register step registers (or
// the pipeline's name), so the gate compares challenger and champion on the
// same holdout.
func defaultChampions(spec *Spec) {
	for i := range spec.Steps {
		ev := spec.Steps[i].Evaluate
		if ev == nil || ev.Champion != "" {
			continue
		}
		model := spec.Name
		for _, st := range spec.Steps {
			if st.Register != nil && slices.Contains(spec.Ancestors(st.Name), spec.Steps[i].Name) {
				model = st.Register.Model
				break
			}
		}
		ev.Champion = model + "@production"
	}
}

// checkGate parses a gate expression and checks its metric names, reporting
// problems at their column inside the expression when the scalar allows it.
// It reports whether the gate is valid.
func (d *decoder) checkGate(s scalar, path string) bool {
	expr, err := gate.Parse(s.str)
	if err != nil {
		var se *gate.SyntaxError
		if !errors.As(err, &se) {
			d.errorf(s.node, path, "invalid gate: %v", err)
			return false
		}
		d.exprError(s, path, se.Pos, "invalid gate: "+se.Msg)
		return false
	}
	ok := true
	for _, r := range expr.Refs() {
		if contains(gate.KnownMetrics, r.Metric) {
			continue
		}
		ok = false
		hint := ""
		if m := suggest(r.Metric, gate.KnownMetrics); m != "" {
			if r.Champion {
				m = gate.ChampionPrefix + m
			}
			hint = fmt.Sprintf(", did you mean %q?", m)
		}
		d.exprError(s, path, r.Pos, fmt.Sprintf("unknown metric %q in gate%s (known metrics: %s)",
			r.Name, hint, quoteList(gate.KnownMetrics)))
	}
	return ok
}

// exprError reports msg at column pos (1-based, in characters) of the gate
// or when expression held by s.
func (d *decoder) exprError(s scalar, path string, pos int, msg string) {
	line, col := d.posIn(s, pos-1)
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Path: path, Message: msg})
}

// scalarColumn maps the character offset off of a scalar's value to a
// column in the source, for plain and quoted scalars written on one line.
func (d *decoder) scalarColumn(n *yaml.Node, off int) (int, bool) {
	cols := d.columns(n)
	if off < 0 || off >= len(cols) {
		return 0, false
	}
	return cols[off], true
}

// columns returns the source column of each character offset of n's value
// (and of the end of the value), as far as they can be mapped: all of them
// for a plain scalar on one line, those before the first escape that is not
// understood for a quoted one, none otherwise. The result is cached, so
// that many problems in one long scalar cost linear time.
func (d *decoder) columns(n *yaml.Node) []int {
	if cols, ok := d.colCache[n]; ok {
		return cols
	}
	cols := d.mapColumns(n)
	if d.colCache == nil {
		d.colCache = map[*yaml.Node][]int{}
	}
	d.colCache[n] = cols
	return cols
}

func (d *decoder) mapColumns(n *yaml.Node) []int {
	text, ok := d.line(n.Line)
	if !ok || n.Column < 1 {
		return nil
	}
	raw := []rune(text)
	start := n.Column - 1
	if start > len(raw) {
		return nil
	}
	raw = raw[start:]
	value := []rune(n.Value)
	switch n.Style {
	case 0:
		if len(raw) < len(value) || string(raw[:len(value)]) != n.Value {
			return nil
		}
		cols := make([]int, len(value)+1)
		for i := range cols {
			cols[i] = n.Column + i
		}
		return cols
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		quote := '\''
		if n.Style == yaml.DoubleQuotedStyle {
			quote = '"'
		}
		if len(raw) == 0 || raw[0] != quote {
			return nil
		}
		// Walk the raw text and the value together.
		r := 1
		cols := []int{n.Column + r}
		for v := 0; v < len(value) && r < len(raw); v++ {
			switch {
			case quote == '\'' && raw[r] == '\'':
				if r+1 >= len(raw) || raw[r+1] != '\'' {
					return cols
				}
				r += 2
			case quote == '"' && raw[r] == '\\':
				if r+1 >= len(raw) || !strings.ContainsRune(`"\/nt `, raw[r+1]) {
					return cols
				}
				r += 2
			case raw[r] == value[v]:
				r++
			default:
				return cols
			}
			cols = append(cols, n.Column+r)
		}
		return cols
	}
	return nil
}

func (d *decoder) decodeRegister(o *object, pipeline string) *RegisterConfig {
	c := &RegisterConfig{Model: pipeline}
	if o.str("model", &c.Model) && !stepNameRE.MatchString(c.Model) {
		n, p := o.where("model")
		d.errorf(n, p, "invalid model name %q: use lowercase letters, digits, dashes and underscores, starting with a letter", c.Model)
	}
	if o.str("alias", &c.Alias) && !stepNameRE.MatchString(c.Alias) {
		n, p := o.where("alias")
		d.errorf(n, p, "invalid alias %q: use lowercase letters, digits, dashes and underscores, starting with a letter", c.Alias)
	}
	if o.strings("require_approval", &c.RequireApproval) {
		for _, a := range c.RequireApproval {
			if !stepNameRE.MatchString(a) {
				n, p := o.where("require_approval")
				d.errorf(n, p, "invalid alias %q in require_approval: use lowercase letters, digits, dashes and underscores, starting with a letter", a)
				break
			}
			if a == c.Alias {
				n, p := o.where("require_approval")
				d.errorf(n, p, "alias %q needs an approval, so this step cannot move it; promote the version with: kiln models promote %s VERSION --to %s", a, c.Model, a)
				break
			}
		}
	}
	return c
}

func (d *decoder) decodeScore(o *object, info *stepInfo) *ScoreConfig {
	c := &ScoreConfig{}
	info.ownInput = o.has("model")
	if o.str("model", &c.Model) {
		n, p := o.where("model")
		if !modelRefRE.MatchString(c.Model) {
			d.errorf(n, p, "invalid model %q: use a registry reference such as churn@production, churn:3 or churn (the latest version)", c.Model)
		} else {
			info.ownInputAt, info.ownInputPath = n, p
		}
	}
	if o.str("input", &c.Input) {
		d.checkLocation(o, "input", c.Input, scoreInputLocation)
	}
	if o.str("output", &c.Output) {
		d.checkLocation(o, "output", c.Output, outputLocation)
	}
	o.strings("passthrough", &c.Passthrough)
	if o.str("row_groups", &c.RowGroups) && c.RowGroups != "" && !hasRuntimeRef(c.RowGroups) {
		n, p := o.where("row_groups")
		if msg := checkRowGroups(c.RowGroups); msg != "" {
			d.errorf(n, p, "%s", msg)
		}
	}
	if o.int64("shard_rows", &c.ShardRows) && c.ShardRows < 1 {
		n, p := o.where("shard_rows")
		d.errorf(n, p, "shard_rows must be at least 1, found %d", c.ShardRows)
	}
	if o.int("max_shards", &c.MaxShards) && c.MaxShards < 1 {
		n, p := o.where("max_shards")
		d.errorf(n, p, "max_shards must be at least 1, found %d", c.MaxShards)
	}
	if o.int("parallelism", &c.Parallelism) && c.Parallelism < 1 {
		n, p := o.where("parallelism")
		d.errorf(n, p, "parallelism must be at least 1, found %d", c.Parallelism)
	}
	return c
}

var rowGroupsRE = regexp.MustCompile(`^([0-9]+)(?:-([0-9]+))?$`)

// checkRowGroups checks a score step's row_groups, "N" or "N-M", and
// returns what is wrong with it, or "".
func checkRowGroups(s string) string {
	m := rowGroupsRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Sprintf(`invalid row_groups %q: write one row group index "N" or an inclusive range "N-M" (indices start at 0), or ${item} in a foreach step`, s)
	}
	first, err1 := strconv.ParseInt(m[1], 10, 32)
	last := first
	var err2 error
	if m[2] != "" {
		last, err2 = strconv.ParseInt(m[2], 10, 32)
	}
	switch {
	case err1 != nil || err2 != nil:
		return fmt.Sprintf("row_groups %q is out of range", s)
	case first > last:
		return fmt.Sprintf("row_groups range %q is reversed: the first index must not be greater than the last", s)
	}
	return ""
}

func (d *decoder) decodeDeploy(o *object) *DeployConfig {
	c := &DeployConfig{
		Alias:                "production",
		Steps:                []int{5, 25, 50, 100},
		Interval:             Duration(30 * time.Second),
		MinRequests:          50,
		MaxErrorRateIncrease: 0.01,
		MaxWaits:             10,
		MaxIntervals:         120,
	}
	checkServer := func(key, s string) {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			n, p := o.where(key)
			d.errorf(n, p, "a model server must be an http:// or https:// URL, found %q", s)
		}
	}
	if o.str("server", &c.Server) {
		checkServer("server", c.Server)
	}
	if o.strings("servers", &c.Servers) {
		for _, s := range c.Servers {
			checkServer("servers", s)
		}
		if len(c.Servers) == 0 {
			n, p := o.where("servers")
			d.errorf(n, p, "list at least one model server, or leave servers out to use the worker's --model-server")
		}
		if c.Server != "" {
			n, p := o.where("servers")
			d.errorf(n, p, "set server or servers, not both")
		}
	}
	if o.str("alias", &c.Alias) && !stepNameRE.MatchString(c.Alias) {
		n, p := o.where("alias")
		d.errorf(n, p, "invalid alias %q: use lowercase letters, digits, dashes and underscores, starting with a letter", c.Alias)
	}
	if n, p, ok := o.get("steps"); ok {
		if steps, ok := d.canarySteps(n, p); ok {
			c.Steps = steps
		}
	}
	o.duration("interval", &c.Interval)
	if o.int("min_requests", &c.MinRequests) && c.MinRequests < 1 {
		n, p := o.where("min_requests")
		d.errorf(n, p, "min_requests must be at least 1, found %d", c.MinRequests)
	}
	if o.float("max_error_rate_increase", &c.MaxErrorRateIncrease) && (c.MaxErrorRateIncrease < 0 || c.MaxErrorRateIncrease > 1) {
		n, p := o.where("max_error_rate_increase")
		d.errorf(n, p, "max_error_rate_increase must be between 0 and 1, found %g", c.MaxErrorRateIncrease)
	}
	if o.int("max_waits", &c.MaxWaits) && c.MaxWaits < 0 {
		n, p := o.where("max_waits")
		d.errorf(n, p, "max_waits must not be negative, found %d", c.MaxWaits)
	}
	if o.int("max_intervals", &c.MaxIntervals) && c.MaxIntervals < 1 {
		n, p := o.where("max_intervals")
		d.errorf(n, p, "max_intervals must be at least 1, found %d", c.MaxIntervals)
	}
	o.bool("require_approval", &c.RequireApproval)
	if k, ok := o.keys["analysis"]; ok {
		if v := d.deref(o.vals["analysis"]); v != nil && v.Kind == yaml.ScalarNode && v.Value == "none" {
			c.NoAnalysis = true
		} else {
			c.Analysis = d.decodeCanaryAnalysis(d.object(o.vals["analysis"], k, joinPath(o.path, "analysis"), []string{"error_rate", "latency", "predictions", "live", "alpha", "power"}))
		}
	}
	if k, ok := o.keys["shadow"]; ok {
		c.Shadow = d.decodeShadow(d.object(o.vals["shadow"], k, joinPath(o.path, "shadow"), []string{"min_agreement", "min_requests", "analysis"}))
	}
	if c.NoAnalysis && c.Shadow != nil {
		n, p := o.where("shadow")
		d.errorf(n, p, "analysis: none deploys at once, with no canary for a shadow to gate: remove shadow, or declare an analysis")
	}
	return c
}

// decodeShadow reads a deploy step's shadow phase.
func (d *decoder) decodeShadow(o *object) *canary.ShadowConfig {
	c := canary.ShadowConfig{}.WithDefaults()
	c.Analysis = nil
	if o.float("min_agreement", &c.MinAgreement) && (c.MinAgreement <= 0 || c.MinAgreement >= 1) {
		n, p := o.where("min_agreement")
		d.errorf(n, p, "min_agreement is the share of rows the candidate must agree on, in (0, 1), found %g", c.MinAgreement)
	}
	if o.int("min_requests", &c.MinRequests) && c.MinRequests < 1 {
		n, p := o.where("min_requests")
		d.errorf(n, p, "min_requests must be at least 1, found %d", c.MinRequests)
	}
	if k, ok := o.keys["analysis"]; ok {
		c.Analysis = d.decodeCanaryAnalysis(d.object(o.vals["analysis"], k, joinPath(o.path, "analysis"), []string{"error_rate", "latency", "predictions", "alpha", "power"}))
	}
	return &c
}

// decodeCanaryAnalysis reads a deploy step's analysis: the metrics the
// canary is judged on, each with min_effect and margin.
func (d *decoder) decodeCanaryAnalysis(o *object) *canary.Config {
	c := &canary.Config{Alpha: 0.05, Power: 0.8}
	for _, m := range []struct {
		key string
		dst **canary.Threshold
		max float64
	}{{canary.MetricErrorRate, &c.ErrorRate, 1}, {canary.MetricLatency, &c.Latency, 0.5}, {canary.MetricPredictions, &c.Predictions, 0.5}} {
		k, ok := o.keys[m.key]
		if !ok {
			continue
		}
		t := d.object(o.vals[m.key], k, joinPath(o.path, m.key), []string{"min_effect", "margin"})
		th := &canary.Threshold{}
		t.require("min_effect")
		if t.float("min_effect", &th.MinEffect) && (th.MinEffect <= 0 || th.MinEffect > m.max) {
			n, p := t.where("min_effect")
			d.errorf(n, p, "min_effect is the smallest degradation that matters, in (0, %g], found %g", m.max, th.MinEffect)
		}
		if t.float("margin", &th.Margin) && th.MinEffect > 0 && (th.Margin < 0 || th.Margin >= th.MinEffect) {
			n, p := t.where("margin")
			d.errorf(n, p, "margin is the degradation tolerated, in [0, min_effect=%g), found %g", th.MinEffect, th.Margin)
		}
		*m.dst = th
	}
	if k, ok := o.keys["live"]; ok {
		t := d.object(o.vals["live"], k, joinPath(o.path, "live"), []string{"metric", "min_effect", "margin"})
		lt := &canary.LiveThreshold{Metric: canary.LiveAccuracy}
		t.require("min_effect")
		if t.str("metric", &lt.Metric) && lt.Metric != canary.LiveAccuracy && lt.Metric != canary.LiveAbsError {
			n, p := t.where("metric")
			d.errorf(n, p, "live metric %q: want %s or %s", lt.Metric, canary.LiveAccuracy, canary.LiveAbsError)
		}
		if t.float("min_effect", &lt.MinEffect) && lt.MinEffect <= 0 {
			n, p := t.where("min_effect")
			d.errorf(n, p, "min_effect is the smallest degradation of the live metric that matters, above 0, found %g", lt.MinEffect)
		}
		if t.float("margin", &lt.Margin) && lt.MinEffect > 0 && (lt.Margin < 0 || lt.Margin >= lt.MinEffect) {
			n, p := t.where("margin")
			d.errorf(n, p, "margin is the degradation tolerated, in [0, min_effect=%g), found %g", lt.MinEffect, lt.Margin)
		}
		c.Live = lt
	}
	if o.float("alpha", &c.Alpha) && (c.Alpha <= 0 || c.Alpha >= 0.5) {
		n, p := o.where("alpha")
		d.errorf(n, p, "alpha bounds the chance of a wrong rollback, in (0, 0.5), found %g", c.Alpha)
	}
	if o.float("power", &c.Power) && (c.Power < 0.5 || c.Power >= 1) {
		n, p := o.where("power")
		d.errorf(n, p, "power is the chance of catching a degradation of min_effect, in [0.5, 1), found %g", c.Power)
	}
	if o.ok && c.ErrorRate == nil && c.Latency == nil && c.Predictions == nil && c.Live == nil {
		d.errorf(o.at, o.path, "declare at least one of error_rate, latency, predictions and live")
	}
	return c
}

// canarySteps reads deploy steps: traffic percentages strictly increasing in
// (0, 100] and ending at 100.
func (d *decoder) canarySteps(n *yaml.Node, path string) ([]int, bool) {
	items, paths, ok := d.list(n, path, false)
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		d.errorf(n, path, "list at least one traffic percentage, ending at 100")
		return nil, false
	}
	var out []int
	good := true
	for i, item := range items {
		s, ok := d.scalar(item, paths[i], wantInt)
		if !ok {
			good = false
			continue
		}
		v, ok := d.asInt(s, paths[i])
		if !ok {
			good = false
			continue
		}
		switch {
		case v <= 0 || v > 100:
			d.errorf(item, paths[i], "a canary step is a traffic percentage in (0, 100], found %d", v)
			good = false
		case len(out) > 0 && int(v) <= out[len(out)-1]:
			d.errorf(item, paths[i], "canary steps must increase strictly: %d follows %d", v, out[len(out)-1])
			good = false
		}
		out = append(out, int(v))
	}
	if good && out[len(out)-1] != 100 {
		last := len(items) - 1
		d.errorf(items[last], paths[last], "the last canary step must be 100 (full rollout), found %d", out[len(out)-1])
		good = false
	}
	return out, good
}

func (d *decoder) decodeMonitor(o *object) *MonitorConfig {
	retrain := true
	c := &MonitorConfig{
		Interval:     Duration(time.Minute),
		PSIThreshold: 0.2,
		MinRows:      200,
		Window:       Duration(10 * time.Minute),
		Retrain:      &retrain,
		Cooldown:     Duration(time.Hour),
		DriftShare:   DefaultDatasetShare,
		MinLabels:    DefaultMinLabels,
		Drift:        ReportDrift{SmallReference: DefaultSmallReference, DatasetShare: DefaultDatasetShare},
	}
	o.duration("interval", &c.Interval)
	if o.float("psi_threshold", &c.PSIThreshold) && c.PSIThreshold <= 0 {
		n, p := o.where("psi_threshold")
		d.errorf(n, p, "psi_threshold must be greater than 0, found %g", c.PSIThreshold)
	}
	if o.int("min_rows", &c.MinRows) && c.MinRows < 1 {
		n, p := o.where("min_rows")
		d.errorf(n, p, "min_rows must be at least 1, found %d", c.MinRows)
	}
	o.duration("window", &c.Window)
	o.boolPtr("retrain", &c.Retrain)
	o.duration("cooldown", &c.Cooldown)
	if o.float("drift_share", &c.DriftShare) && (c.DriftShare <= 0 || c.DriftShare > 1) {
		n, p := o.where("drift_share")
		d.errorf(n, p, "drift_share is the share of drifted features that starts a retrain, in (0, 1], found %g", c.DriftShare)
	}
	o.strings("features", &c.Features)
	if o.int("min_labels", &c.MinLabels) && c.MinLabels < 1 {
		n, p := o.where("min_labels")
		d.errorf(n, p, "min_labels must be at least 1, found %d", c.MinLabels)
	}
	if k, ok := o.keys["metric"]; ok {
		m := d.object(o.vals["metric"], k, joinPath(o.path, "metric"), []string{"name", "threshold", "windows"})
		c.Metric = &MonitorMetric{Windows: DefaultMonitorWindows}
		m.requiredString("name", &c.Metric.Name)
		if c.Metric.Name != "" {
			m.oneOf("name", c.Metric.Name, "live metric", MonitorMetrics)
		}
		m.require("threshold")
		m.float("threshold", &c.Metric.Threshold)
		if m.int("windows", &c.Metric.Windows) && c.Metric.Windows < 1 {
			n, p := m.where("windows")
			d.errorf(n, p, "windows is how many bad windows in a row start a retrain, at least 1, found %d", c.Metric.Windows)
		}
	}
	if k, ok := o.keys["labels"]; ok {
		l := d.object(o.vals["labels"], k, joinPath(o.path, "labels"), []string{"source", "window", "delay"})
		c.Labels = &MonitorLabels{Window: DefaultLabelWindow}
		if l.str("source", &c.Labels.Source) {
			d.checkLocation(l, "source", c.Labels.Source, scoreInputLocation)
		}
		l.duration("window", &c.Labels.Window)
		l.durationFrom("delay", &c.Labels.Delay, true)
	}
	if k, ok := o.keys["drift"]; ok {
		d.decodeReportDrift(d.object(o.vals["drift"], k, joinPath(o.path, "drift"), reportDriftKeys), &c.Drift)
	}
	return c
}
