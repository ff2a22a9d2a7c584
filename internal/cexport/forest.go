package cexport

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// Columns of the tree walk. Each split reads a float column: a feature
// rounded to float32 with NaN replaced so that a plain x >= threshold test
// sends it the split's default direction (see forest).
const (
	colNaNLeft  = iota // NaN -> -Inf: goes left of every threshold above -Inf
	colNaNRight        // NaN -> +Inf: goes right of every threshold
	colPresent         // 0 for NaN, 1 otherwise: for default-left splits at -Inf
)

// maxPerfectDepth bounds the depth of trees stored as complete binary trees
// (model.XGBoost's bound too); deeper ones are stored node by node.
const maxPerfectDepth = 8

// lanes is how many rows the batch function walks through a tree together.
const lanes = 8

// colKey identifies a walk column.
type colKey struct{ feature, kind int }

// forest is an XGBoost ensemble as the C code walks it.
//
// Every split reads a column of floats, built per row from the features:
// (float)x with NaN replaced by -Inf for default-left splits and +Inf for
// default-right ones, so that "go right when v >= threshold" is XGBoost's
// "go left when x < threshold, NaN to the default" (thresholds are never
// NaN; a default-left split at -Inf, where -Inf would not go left, reads a
// 0/1 "present" column against 0.5 instead). Real ±Inf values compare as
// XGBoost compares them.
//
// Trees up to maxPerfectDepth deep are complete binary trees in heap order
// (the root at 1, children 2i and 2i+1; a shallow leaf is repeated over the
// bottom-level leaves below it, and the splits under it, which read column
// 0, go either way to the same value), walked in exactly depth steps
// without branches. Deeper trees are walked node by node.
type forest struct {
	base  float32
	prob  bool
	ntree int
	cols  []colKey
	// splits and leaves hold the complete trees, one after the other:
	// 2^depth splits by heap index (index 0 unused) and 2^depth leaves.
	splits []split
	leaves []float32
	// dnodes holds the deep trees' nodes, breadth first, each tree's
	// numbered from 0 with children adjacent (right = left+1).
	dnodes []dnode
	trees  []treeRef
}

// split is a split node of a complete tree: right when v[col] >= thr.
type split struct {
	thr float32
	col int
}

// dnode is a node of a deep tree: a split (left >= 0, children left and
// left+1) or a leaf (left -1, its value in thr).
type dnode struct {
	thr  float32
	col  int
	left int32
}

// treeRef locates one tree: a complete one (depth >= 0) at splits[node]
// and leaves[leaf], or a deep one (depth -1) at dnodes[node].
type treeRef struct {
	node, leaf, depth int
}

// newForest builds the C form of a booster.
func newForest(b *xgbjson.Booster) (*forest, error) {
	if b == nil {
		return nil, fmt.Errorf("no booster")
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	f := &forest{base: b.BaseMargin(), ntree: len(b.Trees)}
	switch b.Objective {
	case xgbjson.ObjectiveBinaryLogistic:
		f.prob = true
	case xgbjson.ObjectiveSquaredError:
	default:
		return nil, fmt.Errorf("objective %q is not supported by the C export (want %q or %q)", b.Objective, xgbjson.ObjectiveBinaryLogistic, xgbjson.ObjectiveSquaredError)
	}
	// The columns the splits read, ordered by feature.
	used := map[colKey]bool{}
	for ti := range b.Trees {
		t := &b.Trees[ti]
		walk(t, func(n int32, _ int) {
			if !t.IsLeaf(int(n)) {
				used[splitCol(t, n)] = true
			}
		})
	}
	colIdx := map[colKey]int{}
	for j := 0; j < b.NumFeature; j++ {
		for kind := colNaNLeft; kind <= colPresent; kind++ {
			if k := (colKey{j, kind}); used[k] {
				colIdx[k] = len(f.cols)
				f.cols = append(f.cols, k)
			}
		}
	}
	for ti := range b.Trees {
		t := &b.Trees[ti]
		depth := 0
		walk(t, func(_ int32, d int) { depth = max(depth, d) })
		if depth <= maxPerfectDepth {
			f.trees = append(f.trees, treeRef{node: len(f.splits), leaf: len(f.leaves), depth: depth})
			f.addPerfect(t, depth, colIdx)
		} else {
			f.trees = append(f.trees, treeRef{node: len(f.dnodes), depth: -1})
			f.addDeep(t, colIdx)
		}
		if len(f.splits) > math.MaxInt32 || len(f.dnodes) > math.MaxInt32 {
			return nil, fmt.Errorf("more than %d nodes", math.MaxInt32)
		}
	}
	return f, nil
}

// walk calls fn for every node reachable from t's root, with its depth
// (the root's is 0).
func walk(t *xgbjson.Tree, fn func(n int32, depth int)) {
	type item struct {
		n int32
		d int
	}
	stack := []item{{0, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(it.n, it.d)
		if t.IsLeaf(int(it.n)) {
			continue
		}
		stack = append(stack, item{t.LeftChildren[it.n], it.d + 1}, item{t.RightChildren[it.n], it.d + 1})
	}
}

// splitCol is the column split node n of t reads.
func splitCol(t *xgbjson.Tree, n int32) colKey {
	j := int(t.SplitIndices[n])
	switch {
	case !t.DefaultLeft[n]:
		return colKey{j, colNaNRight}
	case math.IsInf(float64(t.SplitConditions[n]), -1):
		return colKey{j, colPresent}
	}
	return colKey{j, colNaNLeft}
}

// splitThr is the threshold split node n of t compares its column with.
func splitThr(t *xgbjson.Tree, n int32) float32 {
	if splitCol(t, n).kind == colPresent {
		return 0.5
	}
	return t.SplitConditions[n]
}

// addPerfect appends t as a complete tree of the given depth.
func (f *forest) addPerfect(t *xgbjson.Tree, depth int, colIdx map[colKey]int) {
	splits := make([]split, 1<<depth)
	leaves := make([]float32, 1<<depth)
	var fill func(n int32, h, d int)
	fill = func(n int32, h, d int) {
		if t.IsLeaf(int(n)) {
			// Heap node h at level d covers 2^(depth-d) bottom leaves.
			w := 1 << (depth - d)
			lo := (h - 1<<d) * w
			for k := lo; k < lo+w; k++ {
				leaves[k] = t.SplitConditions[n]
			}
			return
		}
		splits[h] = split{thr: splitThr(t, n), col: colIdx[splitCol(t, n)]}
		fill(t.LeftChildren[n], 2*h, d+1)
		fill(t.RightChildren[n], 2*h+1, d+1)
	}
	fill(0, 1, 0)
	f.splits = append(f.splits, splits...)
	f.leaves = append(f.leaves, leaves...)
}

// addDeep appends t node by node, breadth first, children adjacent.
func (f *forest) addDeep(t *xgbjson.Tree, colIdx map[colKey]int) {
	base := len(f.dnodes)
	type item struct{ old, new int32 }
	f.dnodes = append(f.dnodes, dnode{})
	queue := []item{{0, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		at := base + int(it.new)
		if t.IsLeaf(int(it.old)) {
			f.dnodes[at] = dnode{thr: t.SplitConditions[it.old], left: -1}
			continue
		}
		k := int32(len(f.dnodes) - base)
		f.dnodes[at] = dnode{thr: splitThr(t, it.old), col: colIdx[splitCol(t, it.old)], left: k}
		f.dnodes = append(f.dnodes, dnode{}, dnode{})
		queue = append(queue, item{t.LeftChildren[it.old], k}, item{t.RightChildren[it.old], k + 1})
	}
}

func (f *forest) describe() string {
	obj := xgbjson.ObjectiveSquaredError
	if f.prob {
		obj = xgbjson.ObjectiveBinaryLogistic
	}
	return fmt.Sprintf("XGBoost %s, %d trees", obj, f.ntree)
}

func (f *forest) output() string {
	if f.prob {
		return model.OutputProbability
	}
	return model.OutputValue
}

// ncols is the number of walk columns, at least 1 (a dummy column when
// every tree is a single leaf), so arrays are never empty.
func (f *forest) ncols() int { return max(len(f.cols), 1) }

func (f *forest) stack(g *gen) int {
	return 8*len(g.t.Features) + 4*lanes*f.ncols() + 256
}

func (f *forest) hasPerfect() bool { return len(f.splits) > 0 }

func (f *forest) hasDeep() bool { return len(f.dnodes) > 0 }

func (f *forest) tables(g *gen, w *writer) {
	p, P := g.p, g.P
	w.l("/* The estimator: %s. */", f.describe())
	w.l("#define %s_NCOLS %d", P, f.ncols())
	w.l("#define %s_NTREES %d", P, f.ntree)
	w.l("")
	w.l("/*")
	w.l(" * Walk columns: every split reads one float column, a feature rounded to")
	w.l(" * float with NaN (missing) replaced so that \"right when v >= threshold\"")
	w.l(" * sends it the split's default direction: -INFINITY for default-left")
	w.l(" * splits, +INFINITY for default-right ones, and for a default-left split")
	w.l(" * at -INFINITY a 0 (missing) / 1 (present) column compared with 0.5.")
	w.l(" */")
	w.l("static void %s_columns(const double *f, float *v)", p)
	w.l("{")
	if len(f.cols) == 0 {
		w.l("    (void)f;")
		w.l("    v[0] = 0.0f; /* every tree is a single leaf */")
	}
	for c, k := range f.cols {
		name := comment(g.t.Features[k.feature])
		switch k.kind {
		case colNaNLeft:
			g.use("nan_left")
			w.l("    v[%d] = %s_nan_left(f[%d]); /* %s, missing goes left */", c, p, k.feature, name)
		case colNaNRight:
			g.use("nan_right")
			w.l("    v[%d] = %s_nan_right(f[%d]); /* %s, missing goes right */", c, p, k.feature, name)
		case colPresent:
			w.l("    v[%d] = f[%d] != f[%d] ? 0.0f : 1.0f; /* %s present */", c, k.feature, k.feature, name)
		}
	}
	w.l("}")
	w.l("")
	w.l("/* A tree, in summation order: complete (depth >= 0) with its splits at")
	w.l(" * %s_splits[node] and leaves at %s_leaves[leaf], or deep (depth -1) with", p, p)
	w.l(" * its nodes at %s_dnodes[node]. */", p)
	w.l("struct %s_tree {", p)
	w.l("    uint32_t node, leaf;")
	w.l("    int32_t depth;")
	w.l("};")
	w.l("")
	if f.hasPerfect() {
		w.l("/* A split of a complete tree: right when v[col] >= thr. */")
		w.l("struct %s_split {", p)
		w.l("    float thr;")
		w.l("    uint32_t col;")
		w.l("};")
		w.l("")
		w.l("/* Complete trees: 2^depth splits by heap index (root 1, children 2i and")
		w.l(" * 2i+1, index 0 unused) and the 2^depth leaf values of the bottom level. */")
		w.f("static const struct %s_split %s_splits[%d] = {", p, p, len(f.splits))
		for i, s := range f.splits {
			if i%4 == 0 {
				w.f("\n   ")
			}
			w.f(" {%s, %d},", flt(s.thr), s.col)
		}
		w.l("\n};")
		w.f("static const float %s_leaves[%d] = {", p, len(f.leaves))
		for i, x := range f.leaves {
			if i%6 == 0 {
				w.f("\n   ")
			}
			w.f(" %s,", flt(x))
		}
		w.l("\n};")
		w.l("")
	}
	if f.hasDeep() {
		w.l("/* A node of a deep tree: a split (right when v[col] >= thr) with children")
		w.l(" * left and left+1, or a leaf (left -1) of value thr. */")
		w.l("struct %s_dnode {", p)
		w.l("    float thr;")
		w.l("    uint32_t col;")
		w.l("    int32_t left;")
		w.l("};")
		w.l("")
		w.l("/* Deep trees node by node, breadth first, nodes numbered from each tree's first. */")
		w.f("static const struct %s_dnode %s_dnodes[%d] = {", p, p, len(f.dnodes))
		for i, n := range f.dnodes {
			if i%3 == 0 {
				w.f("\n   ")
			}
			w.f(" {%s, %d, %d},", flt(n.thr), n.col, n.left)
		}
		w.l("\n};")
		w.l("")
	}
	w.f("static const struct %s_tree %s_trees[%s_NTREES] = {", p, p, P)
	for i, t := range f.trees {
		if i%4 == 0 {
			w.f("\n   ")
		}
		w.f(" {%d, %d, %d},", t.node, t.leaf, t.depth)
	}
	w.l("\n};")
	w.l("")
	if f.hasDeep() {
		w.l("/* The leaf value row v reaches in the deep tree whose first node is n0. */")
		w.l("static float %s_deep(uint32_t n0, const float *v)", p)
		w.l("{")
		w.l("    const struct %s_dnode *nd = %s_dnodes + n0;", p, p)
		w.l("    int32_t i = 0;")
		w.l("    while (nd[i].left >= 0) {")
		w.l("        i = nd[i].left + (v[nd[i].col] >= nd[i].thr);")
		w.l("    }")
		w.l("    return nd[i].thr;")
		w.l("}")
		w.l("")
	}
	f.marginFunc(g, w)
	f.margin8Func(g, w)
}

// marginFunc writes <prefix>_margin, the margin of one row. Four complete
// trees of the same depth are walked together (their loads overlap);
// their leaves are still added in tree order.
func (f *forest) marginFunc(g *gen, w *writer) {
	p, P := g.p, g.P
	w.l("/* The margin of one row (its walk columns v): the base margin plus every")
	w.l(" * tree's leaf, summed in float in tree order, as XGBoost does. */")
	w.l("static float %s_margin(const float *v)", p)
	w.l("{")
	w.l("    float acc = %s; /* base margin */", flt(f.base))
	w.l("    uint32_t t = 0;")
	w.l("    while (t < %s_NTREES) {", P)
	w.l("        const struct %s_tree *tr = &%s_trees[t];", p, p)
	if f.hasPerfect() {
		w.l("        if (t + 4 <= %s_NTREES && tr[0].depth > 0 && tr[1].depth == tr[0].depth &&", P)
		w.l("            tr[2].depth == tr[0].depth && tr[3].depth == tr[0].depth) {")
		for k := range 4 {
			w.l("            const struct %s_split *s%d = %s_splits + tr[%d].node;", p, k, p, k)
		}
		w.l("            uint32_t i0 = 1, i1 = 1, i2 = 1, i3 = 1, bottom = (uint32_t)1 << tr[0].depth;")
		w.l("            int32_t d;")
		w.l("            for (d = 0; d < tr[0].depth; d++) {")
		for k := range 4 {
			w.l("                i%d = 2 * i%d + (v[s%d[i%d].col] >= s%d[i%d].thr);", k, k, k, k, k, k)
		}
		w.l("            }")
		for k := range 4 {
			w.l("            acc += %s_leaves[tr[%d].leaf + i%d - bottom];", p, k, k)
		}
		w.l("            t += 4;")
		w.l("            continue;")
		w.l("        }")
	}
	if f.hasDeep() {
		w.l("        if (tr->depth < 0) {")
		w.l("            acc += %s_deep(tr->node, v);", p)
		w.l("            t++;")
		w.l("            continue;")
		w.l("        }")
	}
	if f.hasPerfect() {
		w.l("        {")
		w.l("            const struct %s_split *s = %s_splits + tr->node;", p, p)
		w.l("            uint32_t i = 1;")
		w.l("            int32_t d;")
		w.l("            for (d = 0; d < tr->depth; d++) {")
		w.l("                i = 2 * i + (v[s[i].col] >= s[i].thr);")
		w.l("            }")
		w.l("            acc += %s_leaves[tr->leaf + i - ((uint32_t)1 << tr->depth)];", p)
		w.l("        }")
	}
	w.l("        t++;")
	w.l("    }")
	w.l("    return acc;")
	w.l("}")
	w.l("")
}

// margin8Func writes <prefix>_margin8, the margins of lanes rows, which
// walk each tree together.
func (f *forest) margin8Func(g *gen, w *writer) {
	p, P := g.p, g.P
	w.l("/* The margins of %d rows (their walk columns at v, %s_NCOLS apart) into acc,", lanes, P)
	w.l(" * the rows walking each tree together; every row sums as %s_margin does. */", p)
	w.l("static void %s_margin%d(const float *v, float *acc)", p, lanes)
	w.l("{")
	w.l("    uint32_t t;")
	w.l("    int r;")
	w.l("    for (r = 0; r < %d; r++) {", lanes)
	w.l("        acc[r] = %s;", flt(f.base))
	w.l("    }")
	w.l("    for (t = 0; t < %s_NTREES; t++) {", P)
	w.l("        const struct %s_tree *tr = &%s_trees[t];", p, p)
	if f.hasDeep() {
		w.l("        if (tr->depth < 0) {")
		w.l("            for (r = 0; r < %d; r++) {", lanes)
		w.l("                acc[r] += %s_deep(tr->node, v + r * %s_NCOLS);", p, P)
		w.l("            }")
		w.l("            continue;")
		w.l("        }")
	}
	if f.hasPerfect() {
		w.l("        {")
		w.l("            const struct %s_split *s = %s_splits + tr->node;", p, p)
		w.l("            const float *leaf = %s_leaves + tr->leaf;", p)
		for r := range lanes {
			w.l("            const float *v%d = v + %d * %s_NCOLS;", r, r, P)
		}
		w.f("            uint32_t")
		for r := range lanes {
			w.f(" i%d = 1,", r)
		}
		w.l(" bottom = (uint32_t)1 << tr->depth;")
		w.l("            int32_t d;")
		w.l("            for (d = 0; d < tr->depth; d++) {")
		for r := range lanes {
			w.l("                i%d = 2 * i%d + (v%d[s[i%d].col] >= s[i%d].thr);", r, r, r, r, r)
		}
		w.l("            }")
		for r := range lanes {
			w.l("            acc[%d] += leaf[i%d - bottom];", r, r)
		}
		w.l("        }")
	}
	w.l("    }")
	w.l("}")
}

// out is the C expression of the prediction from the float margin m.
func (f *forest) out(g *gen, m string) string {
	if f.prob {
		g.use("sigmoid")
		return fmt.Sprintf("%s_sigmoid((double)%s)", g.p, m)
	}
	return fmt.Sprintf("(double)%s", m)
}

func (f *forest) predict(g *gen, w *writer) {
	p, P := g.p, g.P
	w.l("int %s_predict(const struct %s_row *row, double *out)", p, p)
	w.l("{")
	w.l("    double f[%s_NUM_FEATURES];", P)
	w.l("    float v[%s_NCOLS];", P)
	w.l("    int rc;")
	w.l("    if (out == NULL) {")
	w.l("        return %s_EBAD_ARGUMENT;", P)
	w.l("    }")
	w.l("    rc = %s_features(row, f);", p)
	w.l("    if (rc != %s_OK) {", P)
	w.l("        *out = NAN;")
	w.l("        return rc;")
	w.l("    }")
	w.l("    %s_columns(f, v);", p)
	w.l("    *out = %s;", f.out(g, p+"_margin(v)"))
	w.l("    return %s_OK;", P)
	w.l("}")
	w.l("")
	g.batchHead(w)
	w.l("    double f[%s_NUM_FEATURES];", P)
	w.l("    float v[%d * %s_NCOLS];", lanes, P)
	w.l("    float acc[%d];", lanes)
	w.l("    int ok[%d];", lanes)
	w.l("    for (i = 0; i < n; i += %d) {", lanes)
	w.l("        size_t r, m = n - i < %d ? n - i : %d;", lanes, lanes)
	w.l("        for (r = 0; r < %d; r++) {", lanes)
	w.l("            int rc = %s_EBAD_ARGUMENT;", P)
	w.l("            if (r < m) {")
	w.l("                rc = %s_features(&rows[i + r], f);", p)
	w.l("                if (rc != %s_OK && first == %s_OK) {", P, P)
	w.l("                    first = rc;")
	w.l("                    at = i + r;")
	w.l("                }")
	w.l("            }")
	w.l("            ok[r] = rc == %s_OK;", P)
	w.l("            if (ok[r]) {")
	w.l("                %s_columns(f, v + r * %s_NCOLS);", p, P)
	w.l("            } else { /* padding or a failed row: walked, not reported */")
	w.l("                size_t c;")
	w.l("                for (c = 0; c < %s_NCOLS; c++) {", P)
	w.l("                    v[r * %s_NCOLS + c] = 0.0f;", P)
	w.l("                }")
	w.l("            }")
	w.l("        }")
	w.l("        %s_margin%d(v, acc);", p, lanes)
	w.l("        for (r = 0; r < m; r++) {")
	w.l("            out[i + r] = ok[r] ? %s : (double)NAN;", f.out(g, "acc[r]"))
	w.l("        }")
	w.l("    }")
	g.batchTail(w)
}
