package pipelines

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/internal/expr"
)

// outputKinds maps each step type to the kind its outputs are under in
// references (steps.<step>.<kind>...) and in the workflow's artifacts.
var outputKinds = map[StepType]string{
	StepIngest:     "dataset",
	StepPreprocess: "prepared",
	StepTrain:      "bundle",
	StepEvaluate:   "evaluation",
	StepRegister:   "model",
	StepScore:      "scored",
	StepReport:     "report",
	StepDeploy:     "deployment",
	StepApproval:   "approval",
}

// ForeachKind is the output kind of every foreach step.
const ForeachKind = "foreach"

// OutputKind returns the kind a step's outputs are under: "foreach" for a
// foreach step, else by type "dataset" (ingest), "prepared" (preprocess),
// "bundle" (train), "evaluation" (evaluate), "model" (register), "scored"
// (score), "report" (report), "deployment" (deploy) or "approval"
// (approval); "" for steps that produce nothing (noop, monitor). A `when`
// or a ${steps.STEP.KIND.FIELD} reference reads steps.<name>.<OutputKind>.
func OutputKind(s *Step) string {
	if s.Foreach != nil {
		return ForeachKind
	}
	return outputKinds[s.Uses]
}

// ExpandRefs replaces every ${steps.STEP.KIND.FIELD...}, ${item},
// ${item.index} and ${run.NAME} (NAME one of RunRefs) in s by resolve of the
// text inside the braces (such as "steps.ingest.dataset.uri", "item" or
// "run.logical_date") and returns the result; the first error of resolve is
// returned as is. Other text, including any other ${...}, is left alone, and
// resolved values are not expanded again. The decoder keeps exactly these
// references in the string fields of a step's with; the workflow calls
// ExpandRefs on them before running the step.
func ExpandRefs(s string, resolve func(ref string) (string, error)) (string, error) {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		inner := rest[i+2 : i+j]
		b.WriteString(rest[:i])
		if isRuntimeRef(inner) {
			v, err := resolve(inner)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		} else {
			b.WriteString(rest[i : i+j+1])
		}
		rest = rest[i+j+1:]
	}
	b.WriteString(rest)
	return b.String(), nil
}

// isItemRef reports whether the text inside ${...} names the foreach item.
func isItemRef(inner string) bool { return inner == "item" || inner == "item.index" }

// RunRefs are the names of the ${run.NAME} references: what the run is
// about in time (see internal/schedule and docs/spec.md). Every run has
// them, scheduled or not:
//
//   - logical_date: the local date of the data interval's start, "2026-12-02"
//   - logical_time: the interval's start, RFC 3339 with the schedule's offset
//   - data_interval_start, data_interval_end: the interval [start, end), RFC 3339 UTC
//   - nominal_time: when the schedule fired (the interval's end for other runs), RFC 3339 UTC
//   - key: the run key, the logical date or, for schedules firing more than once a day, "2026-12-02T1430"
//   - trigger: "schedule", "backfill", "trigger" (kiln schedules trigger) or "cli"
//   - schedule: the schedule's name, "" for runs not started by a schedule
var RunRefs = []string{"logical_date", "logical_time", "data_interval_start", "data_interval_end", "nominal_time", "key", "trigger", "schedule"}

// isRunRef reports whether the text inside ${...} is a run reference.
func isRunRef(inner string) bool {
	name, ok := strings.CutPrefix(inner, "run.")
	return ok && contains(RunRefs, name)
}

// isRuntimeRef reports whether the text inside ${...} is a reference the
// workflow substitutes: an item, a step output or a run reference.
func isRuntimeRef(inner string) bool {
	return isItemRef(inner) || strings.HasPrefix(inner, "steps.") || isRunRef(inner)
}

// hasRuntimeRef reports whether ExpandRefs would substitute anything in s.
func hasRuntimeRef(s string) bool {
	found := false
	_, _ = ExpandRefs(s, func(string) (string, error) {
		found = true
		return "", nil
	})
	return found
}

// segmentRE matches one part of a dotted reference path.
var segmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// outputRef is a reference to an earlier step's outputs, in a when
// expression (steps.STEP.KIND...) or a with string (${steps.STEP.KIND.FIELD}),
// checked against the graph once every step is decoded.
type outputRef struct {
	// text is the reference without ${ }: "steps.ingest.dataset.uri".
	text string
	// step and kind are its second and third parts.
	step, kind string
	// s holds it, at character offset off; the position in the source is
	// only worked out for a message.
	s    scalar
	off  int
	path string
}

// posIn returns the position of the character at offset off (in
// characters) of the value of s, or the scalar's own position when the
// value is not the source text (substituted, or not on one line).
func (d *decoder) posIn(s scalar, off int) (line, col int) {
	line, col = s.node.Line, s.node.Column
	if s.param == "" && !s.interpolated {
		if c, ok := d.scalarColumn(s.node, off); ok {
			col = c
		}
	}
	return line, col
}

// refError reports msg about the reference at character offset off of s.str.
func (d *decoder) refError(s scalar, path string, off int, msg string) {
	line, col := d.posIn(s, off)
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Path: path, Message: msg})
}

// checkItemRef checks ${item} or ${item.index} (ref) at character offset
// off of s: it is only defined in the with of a foreach step.
func (d *decoder) checkItemRef(s scalar, path string, off int, ref string) bool {
	switch {
	case d.cur == nil || !d.cur.foreach:
		d.refError(s, path, off, fmt.Sprintf("%s is only defined in foreach steps", ref))
	case !d.inWith:
		d.refError(s, path, off, fmt.Sprintf("%s is only defined in the with of a foreach step", ref))
	default:
		return true
	}
	return false
}

// checkRunRef checks ${run.NAME} (ref) at character offset off of s: a
// known name, in a step's with.
func (d *decoder) checkRunRef(s scalar, path string, off int, ref string) bool {
	inner := ref[2 : len(ref)-1]
	name, _ := strings.CutPrefix(inner, "run.")
	switch {
	case !d.inWith || d.cur == nil:
		d.refError(s, path, off, fmt.Sprintf("%s: run references are only allowed in the string fields of a step's with", ref))
	case !contains(RunRefs, name):
		hint := ""
		if m := suggest(name, RunRefs); m != "" {
			hint = fmt.Sprintf(`, did you mean "${run.%s}"?`, m)
		}
		names := make([]string, len(RunRefs))
		for i, n := range RunRefs {
			names[i] = "run." + n
		}
		d.refError(s, path, off, fmt.Sprintf("unknown run reference %q%s (known: %s)", ref, hint, quoteList(names)))
	default:
		return true
	}
	return false
}

// checkStepRef checks the form of ${steps....} (ref) at character offset
// off of s and records it for the graph checks.
func (d *decoder) checkStepRef(s scalar, path string, off int, ref string) bool {
	inner := ref[2 : len(ref)-1]
	switch {
	case d.inWhen:
		d.refError(s, path, off, fmt.Sprintf("in when, write %s without \"${\" and \"}\"", inner))
		return false
	case !d.inWith || d.cur == nil:
		d.refError(s, path, off, fmt.Sprintf("%s: references to step outputs are only allowed in the string fields of a step's with", ref))
		return false
	}
	parts := strings.Split(inner, ".")
	good := len(parts) >= 4
	for _, part := range parts {
		good = good && segmentRE.MatchString(part)
	}
	if !good {
		d.refError(s, path, off, fmt.Sprintf("invalid reference %q: write ${steps.STEP.KIND.FIELD}, e.g. ${steps.ingest.dataset.uri}", ref))
		return false
	}
	d.cur.refs = append(d.cur.refs, outputRef{text: inner, step: parts[1], kind: parts[2], s: s, off: off, path: path})
	return true
}

// wantCondition describes a when value, for type errors.
const wantCondition = "a condition (a string such as params.deploy)"

// decodeWhen reads a step's when: an expression (see internal/expr) over
// params.NAME and steps.STEP.KIND.FIELD. It reports syntax errors, unknown
// params, malformed references and type errors now, and leaves the step
// references for the graph checks.
func (d *decoder) decodeWhen(o *object, st *Step) {
	n, p, ok := o.get("when")
	if !ok {
		return
	}
	d.inWhen = true
	s, ok := d.scalar(n, p, wantCondition)
	d.inWhen = false
	if !ok {
		return
	}
	var text string
	switch s.tag {
	case "!!str":
		text = s.str
	case "!!bool":
		text = strconv.FormatBool(s.b)
	default:
		d.typeError(s, p, wantCondition)
		return
	}
	if strings.TrimSpace(text) == "" {
		return
	}
	e, err := expr.Parse(text)
	if err != nil {
		var se *expr.SyntaxError
		if !errors.As(err, &se) {
			d.errorf(s.node, p, "invalid when: %v", err)
			return
		}
		d.exprError(s, p, se.Pos, "invalid when: "+se.Msg)
		return
	}
	good := true
	for _, id := range e.Idents() {
		good = d.checkWhenIdent(s, p, id) && good
	}
	if !good {
		return
	}
	typ, err := e.Check(func(path string) expr.Type {
		name, ok := strings.CutPrefix(path, "params.")
		if !ok || d.params[name] == nil {
			return expr.Unknown
		}
		switch d.params[name].Type {
		case ParamInt, ParamFloat:
			return expr.Number
		case ParamString:
			return expr.String
		case ParamBool:
			return expr.Bool
		}
		return expr.Unknown
	})
	var se *expr.SyntaxError
	switch {
	case errors.As(err, &se):
		d.exprError(s, p, se.Pos, "invalid when: "+se.Msg)
	case err != nil:
		d.errorf(s.node, p, "invalid when: %v", err)
	case typ != expr.Unknown && typ != expr.Bool:
		d.exprError(s, p, 1, fmt.Sprintf("when must be a condition (true or false), found a %s expression; compare it, e.g. %s > 0", typ, strings.TrimSpace(text)))
	default:
		st.When = strings.TrimSpace(text)
	}
}

// checkWhenIdent checks one identifier of a when expression: params.NAME
// of a declared param, or steps.STEP.KIND[.FIELD...], recorded for the
// graph checks.
func (d *decoder) checkWhenIdent(s scalar, path string, id expr.Ident) bool {
	parts := strings.Split(id.Path, ".")
	report := func(msg string) bool {
		d.exprError(s, path, id.Pos, msg)
		return false
	}
	switch parts[0] {
	case "params":
		if len(parts) == 1 {
			return report(`incomplete reference "params" in when: write params.NAME`)
		}
		name := parts[1]
		if d.params[name] == nil {
			msg := fmt.Sprintf("unknown param %q in when", name)
			if before, _, ok := strings.Cut(name, "-"); ok && d.params[before] != nil {
				msg += fmt.Sprintf(`; to subtract, put spaces around "-": params.%s - ...`, before)
			} else {
				msg += d.knownParams(name)
			}
			return report(msg)
		}
		if len(parts) > 2 {
			return report(fmt.Sprintf("params.%s has no fields: a param is a single value, write params.%s", name, name))
		}
		return true
	case "steps":
		if len(parts) < 3 {
			return report(fmt.Sprintf("incomplete reference %q in when: write steps.STEP.KIND[.FIELD...], e.g. steps.evaluate.evaluation.metrics.auc", id.Path))
		}
		d.cur.refs = append(d.cur.refs, outputRef{text: id.Path, step: parts[1], kind: parts[2], s: s, off: id.Pos - 1, path: path})
		return true
	}
	return report(fmt.Sprintf("unknown identifier %q in when: write params.NAME or steps.STEP.KIND.FIELD", id.Path))
}

// checkOutputRefs checks every recorded reference to step outputs: the step
// exists, is an ancestor of the referring step (so its outputs exist when
// that step runs) and produces outputs of the named kind. edges are the
// needs as indices; badNeeds marks steps whose needs have problems already
// reported.
func (d *decoder) checkOutputRefs(spec *Spec, infos []*stepInfo, index map[string]int, names []string, edges [][]int, badNeeds []bool) {
	for i, info := range infos {
		if len(info.refs) == 0 {
			continue
		}
		ancestors := map[int]bool{}
		for _, level := range levels(i, edges) {
			for _, j := range level {
				ancestors[j] = true
			}
		}
		for _, r := range info.refs {
			report := func(format string, args ...any) {
				line, col := d.posIn(r.s, r.off)
				d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Path: r.path, Message: fmt.Sprintf(format, args...)})
			}
			j, known := index[r.step]
			switch {
			case !known:
				report("unknown step %q in %s%s (steps: %s)", r.step, r.text, didYouMean(r.step, names), quoteList(names))
				continue
			case j == i:
				report("step %q cannot refer to its own outputs", r.step)
				continue
			}
			target := &spec.Steps[j]
			if contains(StepTypes, target.Uses) {
				switch kind := OutputKind(target); {
				case kind == "":
					report("step %q (uses: %s) has no outputs to refer to", r.step, target.Uses)
				case kind != r.kind && target.Foreach != nil:
					report("wrong output kind %q in %s: step %q runs foreach, so its outputs are under steps.%s.%s", r.kind, r.text, r.step, r.step, kind)
				case kind != r.kind:
					report("wrong output kind %q in %s: the outputs of step %q (uses: %s) are under steps.%s.%s", r.kind, r.text, r.step, target.Uses, r.step, kind)
				}
			}
			if !ancestors[j] && !info.unsure && !badNeeds[i] && info.nameNode != nil {
				report("steps.%s is not upstream of step %q; add it to needs", r.step, spec.Steps[i].Name)
			}
		}
	}
}
