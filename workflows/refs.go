package workflows

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/expr"
	"github.com/kiln-ml/kiln/pipelines"
)

// Everything here is deterministic: it reads only the spec and the outputs
// already recorded in the run's status. encoding/json is deterministic for
// these types (map keys are sorted); workflowcheck only sees its reflection
// caches, hence the workflowcheck:ignore directives on its calls.

// outputs gives `steps.<name>.<path>` lookups over a run's recorded outputs.
type outputs struct {
	run *RunStatus
}

// lookup resolves `steps.<name>.<kind>.<field>...` against the JSON form of
// the step's artifacts (so paths are the JSON field names, e.g.
// steps.evaluate.evaluation.metrics.auc).
func (o outputs) lookup(path string) (any, bool) {
	rest, ok := strings.CutPrefix(path, "steps.")
	if !ok {
		return nil, false
	}
	name, field, _ := strings.Cut(rest, ".")
	st := o.run.Step(name)
	if st == nil || st.Status != StatusCompleted {
		return nil, false
	}
	b, err := json.Marshal(st.Artifacts) //workflowcheck:ignore
	if err != nil {
		return nil, false
	}
	var v any
	//workflowcheck:ignore
	err = json.Unmarshal(b, &v)
	if err != nil {
		return nil, false
	}
	for _, seg := range strings.Split(field, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return v, true
}

// condition evaluates a step's `when`: params.<name> and steps.<...>.
func condition(spec *pipelines.Spec, run *RunStatus, when string) (bool, error) {
	e, err := expr.Parse(when)
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", when, err)
	}
	// expr converts looked-up values with reflect, which workflowcheck
	// cannot see through; the evaluation is a pure function of its inputs.
	//workflowcheck:ignore
	ok, err := e.EvalBool(func(path string) (any, bool) {
		if name, ok := strings.CutPrefix(path, "params."); ok {
			p, found := spec.Param(name)
			return p.Value, found
		}
		return outputs{run}.lookup(path)
	})
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", when, err)
	}
	return ok, nil
}

// resolveStep substitutes `${steps....}` and `${run....}` references (and,
// with item, `${item}` and `${item.index}`) into the string fields of step's
// config.
func resolveStep(step pipelines.Step, run *RunStatus, item *activities.Item, logical *activities.LogicalRun) (pipelines.Step, error) {
	b, err := json.Marshal(step) //workflowcheck:ignore
	if err != nil {
		return step, err
	}
	if !strings.Contains(string(b), "${") {
		return step, nil
	}
	text, err := pipelines.ExpandRefs(string(b), func(ref string) (string, error) {
		var v any
		switch {
		case ref == "item" && item != nil:
			v = item.Value
		case ref == "item.index" && item != nil:
			v = strconv.Itoa(item.Index)
		case strings.HasPrefix(ref, "run."):
			got, ok := logical.Ref(strings.TrimPrefix(ref, "run."))
			if !ok {
				return "", fmt.Errorf("${%s}: unknown run reference (known: run.logical_date, run.logical_time, run.data_interval_start, run.data_interval_end, run.nominal_time, run.key, run.trigger, run.schedule)", ref)
			}
			v = got
		case strings.HasPrefix(ref, "steps.") && run != nil:
			got, ok := outputs{run}.lookup(ref)
			if !ok {
				return "", fmt.Errorf("${%s}: no such output (did the step complete?)", ref)
			}
			v = got
		default:
			return "", fmt.Errorf("${%s} cannot be resolved here", ref)
		}
		// The reference sits inside a JSON string: write the value as the
		// string's content, escaped.
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		quoted, err := json.Marshal(s) //workflowcheck:ignore
		if err != nil {
			return "", err
		}
		return string(quoted[1 : len(quoted)-1]), nil
	})
	if err != nil {
		return step, fmt.Errorf("step %q: %w", step.Name, err)
	}
	var out pipelines.Step
	//workflowcheck:ignore
	err = json.Unmarshal([]byte(text), &out)
	if err != nil {
		return step, fmt.Errorf("step %q: after substitution: %w", step.Name, err)
	}
	return out, nil
}
