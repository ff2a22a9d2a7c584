package pipelines

import (
	"fmt"
	"strings"
)

// Upstream maps each step type to the step type it reads its input from: a
// step must have an ancestor (through needs) of that type, and the nearest
// one (see NearestAncestor) is its input, which must not be a foreach step.
// Approval and noop steps have no input. Two steps may bring their own
// input instead (see RequiredUpstream): a score step with with.model (a
// registry reference), which then must not have a register step upstream,
// and a report step with with.input.
var Upstream = map[StepType]StepType{
	StepPreprocess: StepIngest,
	StepTrain:      StepPreprocess,
	StepEvaluate:   StepTrain,
	StepRegister:   StepTrain,
	StepScore:      StepRegister,
	StepReport:     StepScore,
	StepDeploy:     StepRegister,
	StepMonitor:    StepDeploy,
}

// RequiredUpstream returns the step type st must have upstream (Upstream),
// or false when it needs none: approval and noop steps, a score step with
// with.model and a report step with with.input.
func RequiredUpstream(st *Step) (StepType, bool) {
	switch {
	case st.Score != nil && st.Score.Model != "":
		return "", false
	case st.Report != nil && st.Report.Input != "":
		return "", false
	}
	t, ok := Upstream[st.Uses]
	return t, ok
}

// Step returns the step called name, or nil.
func (s *Spec) Step(name string) *Step {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	return nil
}

// Param returns the param called name.
func (s *Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// graph returns the steps' needs as indices: edges[i] lists the steps step i
// needs, in needs order, ignoring unknown names and repeats.
func (s *Spec) graph() (map[string]int, [][]int) {
	index := make(map[string]int, len(s.Steps))
	for i, st := range s.Steps {
		if _, dup := index[st.Name]; !dup {
			index[st.Name] = i
		}
	}
	edges := make([][]int, len(s.Steps))
	for i, st := range s.Steps {
		for _, need := range st.Needs {
			if j, ok := index[need]; ok && j != i && !contains(edges[i], j) {
				edges[i] = append(edges[i], j)
			}
		}
	}
	return index, edges
}

// Order returns the step names in a topological order: every step comes after
// the steps it needs, and among steps that are ready at the same time spec
// order is kept. (Steps on a cycle, which a validated spec never has, come
// last in spec order.)
func (s *Spec) Order() []string {
	_, edges := s.graph()
	done := make([]bool, len(s.Steps))
	out := make([]string, 0, len(s.Steps))
	for len(out) < len(s.Steps) {
		next := -1
		for i := range s.Steps {
			if done[i] {
				continue
			}
			ready := true
			for _, j := range edges[i] {
				ready = ready && done[j]
			}
			if ready {
				next = i
				break
			}
		}
		if next < 0 {
			for i, st := range s.Steps {
				if !done[i] {
					out = append(out, st.Name)
				}
			}
			break
		}
		done[next] = true
		out = append(out, s.Steps[next].Name)
	}
	return out
}

// Ancestors returns every step name reaches through needs, transitively:
// nearest first (breadth-first), ties in needs order, without duplicates.
// It returns nil for an unknown step.
func (s *Spec) Ancestors(name string) []string {
	index, edges := s.graph()
	i, ok := index[name]
	if !ok {
		return nil
	}
	var out []string
	for _, level := range levels(i, edges) {
		for _, j := range level {
			out = append(out, s.Steps[j].Name)
		}
	}
	return out
}

// NearestAncestor returns the first step of type t in Ancestors(name), or "".
func (s *Spec) NearestAncestor(name string, t StepType) string {
	for _, a := range s.Ancestors(name) {
		if s.Step(a).Uses == t {
			return a
		}
	}
	return ""
}

// levels returns the ancestors of start grouped by distance, breadth-first:
// levels[0] are the steps start needs, levels[1] theirs, and so on.
func levels(start int, edges [][]int) [][]int {
	seen := map[int]bool{start: true}
	var out [][]int
	frontier := []int{start}
	for len(frontier) > 0 {
		var next []int
		for _, i := range frontier {
			for _, j := range edges[i] {
				if !seen[j] {
					seen[j] = true
					next = append(next, j)
				}
			}
		}
		if len(next) > 0 {
			out = append(out, next)
		}
		frontier = next
	}
	return out
}

// edge is one valid needs entry: step to, named by needs entry k.
type edge struct{ to, k int }

// validateGraph checks step names, needs, cycles, upstream requirements and
// references to step outputs.
func (d *decoder) validateGraph(spec *Spec, infos []*stepInfo) {
	index := map[string]int{}
	var names []string
	for i, info := range infos {
		if info.nameNode == nil {
			continue
		}
		name := spec.Steps[i].Name
		if j, dup := index[name]; dup {
			d.errorf(info.nameNode, joinPath(info.path, "name"), "duplicate step name %q (first defined at line %d)", name, infos[j].nameNode.Line)
			continue
		}
		index[name] = i
		names = append(names, name)
	}

	edges := make([][]edge, len(infos))
	badNeeds := make([]bool, len(infos))
	for i, info := range infos {
		seen := map[string]bool{}
		for k, need := range info.needs {
			node, path := info.needNodes[k], info.needPaths[k]
			j, known := index[need]
			switch {
			case info.nameNode != nil && need == spec.Steps[i].Name:
				d.errorf(node, path, "step %q cannot need itself", need)
			case seen[need]:
				d.errorf(node, path, "%q is listed twice in needs", need)
				continue
			case !known:
				d.errorf(node, path, "unknown step %q in needs%s (steps: %s)", need, didYouMean(need, names), quoteList(names))
			default:
				edges[i] = append(edges[i], edge{to: j, k: k})
				seen[need] = true
				continue
			}
			seen[need] = true
			badNeeds[i] = true
		}
	}

	if d.reportCycles(spec, infos, edges) {
		return
	}
	plain := make([][]int, len(edges))
	for i, es := range edges {
		for _, e := range es {
			plain[i] = append(plain[i], e.to)
		}
	}
	for i, info := range infos {
		st := spec.Steps[i]
		want, ok := Upstream[st.Uses]
		if !ok || info.nameNode == nil || badNeeds[i] {
			continue
		}
		var found []string
		var foundAt []int
		unsure := info.unsure
		for _, level := range levels(i, plain) {
			for _, j := range level {
				unsure = unsure || infos[j].unsure
				if spec.Steps[j].Uses == want {
					found = append(found, fmt.Sprintf("%q", spec.Steps[j].Name))
					foundAt = append(foundAt, j)
				}
			}
			if len(found) > 0 {
				break
			}
		}
		if info.ownInput {
			if st.Uses == StepScore && len(found) > 0 && info.ownInputAt != nil {
				d.errorf(info.ownInputAt, info.ownInputPath, "step %q has both with.model and an upstream register step (%s), and would not know which model to score with: remove model to score the version the register step registers, or take the register step out of its needs",
					st.Name, strings.Join(found, ", "))
			}
			continue
		}
		switch {
		case len(found) == 0 && !unsure && st.Uses == StepScore:
			d.errorf(info.needsAt, info.needsPath, "step %q (uses: score) needs a model: set with.model to a registry reference (e.g. churn@production), or add an upstream register step to needs", st.Name)
		case len(found) == 0 && !unsure && st.Uses == StepReport:
			d.errorf(info.needsAt, info.needsPath, "step %q (uses: report) needs a scored output: set with.input, or add an upstream score step to needs", st.Name)
		case len(found) == 0 && !unsure:
			d.errorf(info.needsAt, info.needsPath, "step %q (uses: %s) needs an upstream %s step; add it to needs", st.Name, st.Uses, want)
		case len(found) > 1:
			d.errorf(info.needsAt, info.needsPath, "step %q (uses: %s) has %d upstream %s steps at the same distance (%s) and cannot tell which one is its input; make the one it should use its nearest",
				st.Name, st.Uses, len(found), want, strings.Join(found, ", "))
		case len(found) == 1 && spec.Steps[foundAt[0]].Foreach != nil:
			d.errorf(info.needsAt, info.needsPath, "step %q (uses: %s) would read its input from %s, a foreach step: its per-item outputs are not one input",
				st.Name, st.Uses, found[0])
		}
	}
	d.checkRowGroupsSource(spec, infos, plain, badNeeds)
	d.checkOutputRefs(spec, infos, index, names, plain, badNeeds)
	d.checkAliases(spec, infos, plain)
	d.checkTasks(spec, infos, plain, badNeeds)
}

// checkRowGroupsSource checks that each foreach step over row groups has an
// upstream ingest step, not itself a foreach step, whose dataset's row
// groups are its items.
func (d *decoder) checkRowGroupsSource(spec *Spec, infos []*stepInfo, edges [][]int, badNeeds []bool) {
	for i, info := range infos {
		fe := spec.Steps[i].Foreach
		if fe == nil || !fe.RowGroups || badNeeds[i] || info.rowGroupsAt == nil {
			continue
		}
		nearest := -1
		unsure := info.unsure
		for _, level := range levels(i, edges) {
			for _, j := range level {
				unsure = unsure || infos[j].unsure
				if nearest < 0 && spec.Steps[j].Uses == StepIngest {
					nearest = j
				}
			}
			if nearest >= 0 {
				break
			}
		}
		switch {
		case nearest < 0 && !unsure:
			d.errorf(info.rowGroupsAt, info.rowGroupsPath, "foreach row_groups needs an upstream ingest step, whose dataset's row groups are the items; add it to needs")
		case nearest >= 0 && spec.Steps[nearest].Foreach != nil:
			d.errorf(info.rowGroupsAt, info.rowGroupsPath, "foreach row_groups reads the row groups of the nearest upstream ingest step %q, which is a foreach step: its per-item outputs are not one dataset", spec.Steps[nearest].Name)
		}
	}
}

// checkAliases rejects a register step that sets the alias a downstream
// deploy step promotes: the new version would be that alias's before the
// canary, which would then find it "already stable" and skip the analysis.
func (d *decoder) checkAliases(spec *Spec, infos []*stepInfo, edges [][]int) {
	for i, st := range spec.Steps {
		if st.Deploy == nil || infos[i].nameNode == nil {
			continue
		}
		for _, level := range levels(i, edges) {
			for _, j := range level {
				reg := spec.Steps[j].Register
				if reg == nil || reg.Alias == "" || reg.Alias != st.Deploy.Alias {
					continue
				}
				d.errorf(infos[j].node, infos[j].path+".with.alias",
					"alias %q is the one deploy step %q promotes after its canary; registering into it would skip the canary; use another alias (e.g. staging)", reg.Alias, st.Name)
			}
		}
	}
}

// reportCycles finds the strongly connected components of the needs graph
// and reports one shortest cycle through each, at the needs entry that
// starts it. It reports whether there was any cycle.
func (d *decoder) reportCycles(spec *Spec, infos []*stepInfo, edges [][]edge) bool {
	n := len(edges)
	idx, low := make([]int, n), make([]int, n)
	onStack := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var comps [][]int
	counter := 0
	var strong func(v int)
	strong = func(v int) {
		idx[v], low[v] = counter, counter
		counter++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range edges[v] {
			switch {
			case idx[e.to] < 0:
				strong(e.to)
				low[v] = min(low[v], low[e.to])
			case onStack[e.to]:
				low[v] = min(low[v], idx[e.to])
			}
		}
		if low[v] == idx[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 {
				comps = append(comps, comp)
			}
		}
	}
	for v := range edges {
		if idx[v] < 0 {
			strong(v)
		}
	}
	for _, comp := range comps {
		in := map[int]bool{}
		start := comp[0]
		for _, v := range comp {
			in[v] = true
			start = min(start, v)
		}
		// Breadth-first search from start, within the component, for the
		// shortest way back to start.
		parent := map[int]int{start: -1}
		queue := []int{start}
		last := -1
		for len(queue) > 0 && last < 0 {
			v := queue[0]
			queue = queue[1:]
			for _, e := range edges[v] {
				if e.to == start {
					last = v
					break
				}
				if _, seen := parent[e.to]; !seen && in[e.to] {
					parent[e.to] = v
					queue = append(queue, e.to)
				}
			}
		}
		var cycle []int
		for v := last; v >= 0; v = parent[v] {
			cycle = append([]int{v}, cycle...)
		}
		names := make([]string, 0, len(cycle)+1)
		for _, v := range cycle {
			names = append(names, spec.Steps[v].Name)
		}
		names = append(names, spec.Steps[start].Name)
		// Point at start's needs entry naming the second step of the cycle.
		node, path := infos[start].needsAt, infos[start].needsPath
		next := start
		if len(cycle) > 1 {
			next = cycle[1]
		}
		for _, e := range edges[start] {
			if e.to == next {
				node, path = infos[start].needNodes[e.k], infos[start].needPaths[e.k]
				break
			}
		}
		d.errorf(node, path, "cycle: %s", strings.Join(names, " → "))
	}
	return len(comps) > 0
}
