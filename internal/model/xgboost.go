package model

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// EstimatorXGBoost is the estimator type of XGBoost: a tree ensemble in
// XGBoost's JSON model format (see internal/xgbjson), whether trained by
// XGBoost or by Kiln's trainer.
const EstimatorXGBoost = "xgboost"

// xgbBlock is how many rows XGBoost.PredictMatrix scores at a time: the
// block's features, converted to float32 (for the node walk column-major,
// one extra all-zero column for leaves: (features+1)·xgbBlock·4 bytes; for
// complete trees see perfectForest), stay in L1/L2 cache while every tree
// walks every row of the block.
const xgbBlock = 128

// xgbInterleave is how many rows walk a tree together; their walks are
// independent, so the CPU overlaps their memory loads.
const xgbInterleave = 8

// xgbMaxLockstepDepth bounds the depth of trees walked in lock step (every
// row takes exactly depth steps; leaves loop onto themselves). Deeper trees,
// which XGBoost grows with lossguide, are walked row by row to their leaf.
const xgbMaxLockstepDepth = 16

// flatNode is one node of XGBoost's flattened trees.
type flatNode struct {
	// thr is the split threshold: go left when float32(x) < thr. Leaves
	// have +Inf and read the all-zero column, so they always "go left".
	thr float32
	// col is the feature's offset in the block (feature·xgbBlock); its top
	// bit is set when a missing value goes right.
	col uint32
	// left is the index of the left child in XGBoost.nodes; the right
	// child is left+1. A leaf's left is its own index.
	left int32
}

// defaultRight marks flatNode.col for nodes that send missing values right.
const defaultRight = 1 << 31

// XGBoost is a tree ensemble predictor over column-major feature matrices.
// It predicts exactly what XGBoost's CPU predictor does: features are
// compared as float32 (x < threshold goes left), missing values (NaN) take
// each split's default direction, and the margin is the base margin plus
// the trees' leaf values, summed in float32 in tree order. Predictions are
// sigmoid(margin) for binary:logistic and the margin for reg:squarederror.
//
// A multi-class booster (multi:softprob or multi:softmax, NumClass K >= 2)
// makes a MultiPredictor: each class's margin sums the trees of that class
// (tree_info) in tree order from base_score, the probabilities are their
// softmax (xgbjson.Softmax), and PredictMatrix writes the most probable
// class's index. Each class is scored by a single-output predictor over
// its own trees, so by the same code paths as the other objectives, one
// pass over the rows per class (simple and exact rather than fused: the
// feature blocks are converted K times).
//
// Ensembles of trees up to xgbMaxPerfectDepth deep (XGBoost's usual ones)
// are scored as complete trees, 8 rows per walk with no branches and no
// missing-value tests (see perfectForest); others by walking the flattened
// nodes.
type XGBoost struct {
	booster  *xgbjson.Booster
	features []string
	nodes    []flatNode
	leaf     []float32 // leaf value by node index (0 on split nodes)
	roots    []int32
	depths   []int32
	base     float32
	prob     bool
	// perfect is the same ensemble as complete trees over NaN-free
	// blocks; nil when a tree is deeper than xgbMaxPerfectDepth or a split
	// rules it out (see newPerfectForest), and then nodes/leaf are walked.
	perfect *perfectForest
	// classes holds, for a multi-class booster, one single-output
	// predictor per class over the trees of that class, each returning
	// the class's margin; nil otherwise (and then the fields above are
	// used). A multi-class predictor has no nodes of its own.
	classes []*XGBoost
}

// ParseXGBoost decodes an XGBoost JSON model and builds its predictor.
// features names the matrix columns the model reads (the bundle's
// transform outputs); see NewXGBoost.
func ParseXGBoost(data []byte, features []string) (*XGBoost, error) {
	b, err := xgbjson.Parse(data)
	if err != nil {
		return nil, err
	}
	return NewXGBoost(b, features)
}

// NewXGBoost builds the predictor of a valid booster. When the booster
// names its features (XGBoost does when trained from a DataFrame or with
// feature_names; Kiln's trainer always does) those names are the
// predictor's FeatureNames. Files without names get features instead,
// which must have NumFeature entries: column j of the matrix is XGBoost's
// feature j.
func NewXGBoost(b *xgbjson.Booster, features []string) (*XGBoost, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	names := b.FeatureNames
	if len(names) == 0 {
		if len(features) != b.NumFeature {
			return nil, fmt.Errorf("xgboost model: it has no feature names and %d features, but the transforms produce %d", b.NumFeature, len(features))
		}
		names = features
	}
	if b.Multiclass() {
		return newMulticlassXGBoost(b, names)
	}
	p := &XGBoost{
		booster:  b,
		features: names,
		base:     b.BaseMargin(),
		prob:     b.Objective == xgbjson.ObjectiveBinaryLogistic,
		roots:    make([]int32, len(b.Trees)),
		depths:   make([]int32, len(b.Trees)),
	}
	leafCol := uint32(b.NumFeature) * xgbBlock
	type item struct{ old, new, depth int32 }
	var queue []item
	for ti := range b.Trees {
		t := &b.Trees[ti]
		root := len(p.nodes)
		if root+t.NumNodes() > math.MaxInt32 {
			return nil, fmt.Errorf("xgboost model: more than %d nodes", math.MaxInt32)
		}
		p.roots[ti] = int32(root)
		p.nodes = append(p.nodes, flatNode{})
		p.leaf = append(p.leaf, 0)
		queue = append(queue[:0], item{0, int32(root), 0})
		// Breadth first, so the two children of a node are adjacent and
		// the top levels, which every row visits, share cache lines.
		for len(queue) > 0 {
			it := queue[0]
			queue = queue[1:]
			p.depths[ti] = max(p.depths[ti], it.depth)
			l := t.LeftChildren[it.old]
			if l < 0 {
				p.nodes[it.new] = flatNode{thr: float32(math.Inf(1)), col: leafCol, left: it.new}
				p.leaf[it.new] = t.SplitConditions[it.old]
				continue
			}
			k := int32(len(p.nodes))
			col := uint32(t.SplitIndices[it.old]) * xgbBlock
			if !t.DefaultLeft[it.old] {
				col |= defaultRight
			}
			p.nodes[it.new] = flatNode{thr: t.SplitConditions[it.old], col: col, left: k}
			p.nodes = append(p.nodes, flatNode{}, flatNode{})
			p.leaf = append(p.leaf, 0, 0)
			queue = append(queue, item{l, k, it.depth + 1}, item{t.RightChildren[it.old], k + 1, it.depth + 1})
		}
	}
	p.perfect = newPerfectForest(b, p.depths)
	return p, nil
}

// XGBoost gives class probabilities when its booster is multi-class.
var _ MultiPredictor = (*XGBoost)(nil)

// newMulticlassXGBoost builds the predictor of a valid multi-class booster
// reading the features names: one single-output predictor per class, over
// the trees of the class in tree order, starting from the booster's base
// margin (base_score, for every class).
func newMulticlassXGBoost(b *xgbjson.Booster, names []string) (*XGBoost, error) {
	perClass := make([][]xgbjson.Tree, b.NumClass)
	for i, k := range b.TreeInfo {
		perClass[k] = append(perClass[k], b.Trees[i])
	}
	p := &XGBoost{booster: b, features: names, base: b.BaseMargin()}
	for k, trees := range perClass {
		// reg:squarederror's base margin is base_score itself, as every
		// class's is.
		sub := &xgbjson.Booster{Objective: xgbjson.ObjectiveSquaredError, BaseScore: b.BaseScore,
			NumFeature: b.NumFeature, FeatureNames: b.FeatureNames, Trees: trees}
		c, err := NewXGBoost(sub, names)
		if err != nil {
			return nil, fmt.Errorf("xgboost model: class %d: %w", k, err)
		}
		p.classes = append(p.classes, c)
	}
	return p, nil
}

// FeatureNames returns the features the model reads, in order.
func (p *XGBoost) FeatureNames() []string { return p.features }

// NumClass returns the number of classes K of a multi-class model, 0 for a
// binary:logistic or reg:squarederror one (which have no class
// probabilities).
func (p *XGBoost) NumClass() int { return len(p.classes) }

// PredictProba writes the class probabilities of row i of x into
// out[i*K : (i+1)*K] (K = NumClass()): the softmax of the class margins,
// as XGBoost's multi:softprob predicts. NaN features are missing values.
// It is an error for a single-output model.
func (p *XGBoost) PredictProba(x *transform.Matrix, out []float64) error {
	k := len(p.classes)
	if k == 0 {
		return fmt.Errorf("model: an xgboost %s model has no class probabilities", p.booster.Objective)
	}
	if x == nil {
		return fmt.Errorf("model: nil feature matrix")
	}
	margin := make([]float64, x.Rows)
	if err := checkMatrix(p.features, x, margin); err != nil {
		return err
	}
	if len(out) != x.Rows*k {
		return fmt.Errorf("model: %d probability slots for %d rows of %d classes", len(out), x.Rows, k)
	}
	for c, cp := range p.classes {
		if err := cp.PredictMatrix(x, margin); err != nil {
			return fmt.Errorf("model: class %d: %w", c, err)
		}
		for i, m := range margin {
			out[i*k+c] = m
		}
	}
	for i := range x.Rows {
		xgbjson.Softmax(out[i*k : (i+1)*k : (i+1)*k])
	}
	return nil
}

// Booster returns the parsed model.
func (p *XGBoost) Booster() *xgbjson.Booster { return p.booster }

// Objective returns the model's objective (xgbjson.ObjectiveBinaryLogistic,
// xgbjson.ObjectiveSquaredError, xgbjson.ObjectiveMultiSoftprob or
// xgbjson.ObjectiveMultiSoftmax).
func (p *XGBoost) Objective() string { return p.booster.Objective }

// PredictMatrix writes the prediction of row i of x into out[i]: the
// probability for binary:logistic, the value for reg:squarederror, the
// index of the most probable class for a multi-class model (see
// PredictProba and Argmax). NaN features are missing values, as in
// XGBoost. It allocates one block buffer per call, nothing per row (a
// multi-class model allocates its probabilities too).
func (p *XGBoost) PredictMatrix(x *transform.Matrix, out []float64) error {
	if err := checkMatrix(p.features, x, out); err != nil {
		return err
	}
	if k := len(p.classes); k > 0 {
		proba := make([]float64, x.Rows*k)
		if err := p.PredictProba(x, proba); err != nil {
			return err
		}
		Argmax(proba, k, out)
		return nil
	}
	if p.perfect != nil {
		p.perfect.predict(x, out, p.base, p.prob)
		return nil
	}
	nf := len(p.features)
	// Column j of the block holds feature j's values as float32; column nf
	// is all zeros, the "feature" leaves read.
	blk := make([]float32, (nf+1)*xgbBlock)
	var acc [xgbBlock]float32
	for lo := 0; lo < x.Rows; lo += xgbBlock {
		n := min(xgbBlock, x.Rows-lo)
		for j, c := range x.Cols {
			dst := blk[j*xgbBlock : j*xgbBlock+n]
			for i, v := range c[lo : lo+n] {
				dst[i] = float32(v)
			}
		}
		for i := range acc[:n] {
			acc[i] = p.base
		}
		p.addTrees(blk, acc[:n])
		for i, m := range acc[:n] {
			if p.prob {
				out[lo+i] = sigmoid(float64(m))
			} else {
				out[lo+i] = float64(m)
			}
		}
	}
	return nil
}

// step moves from node n one level down for row r of the block. nodes
// points at XGBoost.nodes[0] and blk at the block's first value; the
// indices are in range by construction (NewXGBoost only makes node indices
// below len(nodes) and column offsets below (features+1)·xgbBlock, and r <
// xgbBlock), which lets the hot loop skip bounds checks.
func step(nodes *flatNode, blk *float32, n int32, r int) int32 {
	nd := (*flatNode)(unsafe.Add(unsafe.Pointer(nodes), uintptr(n)*unsafe.Sizeof(flatNode{})))
	v := *(*float32)(unsafe.Add(unsafe.Pointer(blk), (uintptr(nd.col&^defaultRight)+uintptr(r))*4))
	// Right when !(v < thr); for a missing v (where v < thr is false) only
	// when the node's default is right.
	right := int32(0)
	if !(v < nd.thr) {
		right = 1
	}
	if v != v {
		right = int32(nd.col >> 31)
	}
	return nd.left + right
}

// addTrees adds every tree's leaf value to acc[r] for the rows of the block.
func (p *XGBoost) addTrees(block []float32, acc []float32) {
	if len(acc) > xgbBlock || len(block) != (len(p.features)+1)*xgbBlock {
		panic("model: addTrees: bad block") // Unreachable: PredictMatrix sizes both.
	}
	nodes, blk, leaf := &p.nodes[0], &block[0], p.leaf
	n := len(acc)
	for t, root := range p.roots {
		depth := p.depths[t]
		if depth > xgbMaxLockstepDepth {
			for r := range acc {
				i := root
				for p.nodes[i].left != i {
					i = step(nodes, blk, i, r)
				}
				acc[r] += leaf[i]
			}
			continue
		}
		r := 0
		for ; r+xgbInterleave <= n; r += xgbInterleave {
			i0, i1, i2, i3, i4, i5, i6, i7 := root, root, root, root, root, root, root, root
			for d := int32(0); d < depth; d++ {
				i0 = step(nodes, blk, i0, r)
				i1 = step(nodes, blk, i1, r+1)
				i2 = step(nodes, blk, i2, r+2)
				i3 = step(nodes, blk, i3, r+3)
				i4 = step(nodes, blk, i4, r+4)
				i5 = step(nodes, blk, i5, r+5)
				i6 = step(nodes, blk, i6, r+6)
				i7 = step(nodes, blk, i7, r+7)
			}
			a := acc[r : r+xgbInterleave : r+xgbInterleave]
			a[0] += leaf[i0]
			a[1] += leaf[i1]
			a[2] += leaf[i2]
			a[3] += leaf[i3]
			a[4] += leaf[i4]
			a[5] += leaf[i5]
			a[6] += leaf[i6]
			a[7] += leaf[i7]
		}
		for ; r < n; r++ {
			i := root
			for d := int32(0); d < depth; d++ {
				i = step(nodes, blk, i, r)
			}
			acc[r] += leaf[i]
		}
	}
}

// xgbMaxPerfectDepth bounds the depth of trees stored as complete binary
// trees (2^depth-1 split nodes and 2^depth leaves each, shallow leaves
// padded: 12·2^depth bytes a tree). XGBoost's default max_depth is 6.
const xgbMaxPerfectDepth = 8

// xgbGroup is how many rows walk a complete tree together (interleaved
// walks, see perfectForest.add); a block stores its rows in groups of
// xgbGroup, each group's column c at byte offset c·xgbGroup·4.
const xgbGroup = 8

// perfectForest is an ensemble of complete binary trees in heap order: the
// children of split node i (the root is 1) are 2i and 2i+1, so a walk is
// i = 2i+right with no child pointers, and every row reaches the leaf
// level after exactly depth steps, at a heap index in [2^depth,
// 2^(depth+1)). A shallow leaf of the original tree becomes the
// 2^(depth-d) leaves below it, all with its value, so the padding splits
// under it may go either way.
//
// Missing values need no test in the walk: a split goes right when
// !(x < thr), so +Inf always goes right and -Inf goes left (for thresholds
// above -Inf). The block holds one column per (feature, default direction)
// used by the splits, with NaN replaced by +Inf in the default-right column
// and by -Inf in the default-left one, and each split reads the column of
// its direction. Real ±Inf values compare as they are, as in XGBoost.
type perfectForest struct {
	// thr holds the trees one after the other, each by heap index
	// (2^(depth+1) entries, the first unused): the thresholds of its
	// splits, then the values of its leaves. Split i goes right when
	// !(x < thr[i]).
	thr []float32
	// off holds the splits' column offsets, each tree by heap index (2^depth
	// entries, the first unused): split i reads x at byte offset off[i] of
	// the row group.
	off   []uint32
	trees []perfectTree
	cols  []perfectCol // the block's columns
}

// perfectTree locates a tree in perfectForest.thr and .off.
type perfectTree struct {
	thr, off int
	depth    int
}

// perfectCol is a block column: feature's values as float32, NaN replaced
// by nan.
type perfectCol struct {
	feature int
	nan     float32
}

// newPerfectForest builds the complete-tree form of b, whose trees have
// the given depths, or returns nil when a tree is deeper than
// xgbMaxPerfectDepth or a default-left split has the threshold -Inf (where
// -Inf would not go left).
func newPerfectForest(b *xgbjson.Booster, depths []int32) *perfectForest {
	// Which (feature, direction) columns the splits read.
	colOf := make([][2]int, b.NumFeature) // [feature][0: left, 1: right] → column+1
	for ti := range b.Trees {
		if depths[ti] > xgbMaxPerfectDepth {
			return nil
		}
		t := &b.Trees[ti]
		for n := range t.NumNodes() {
			if t.IsLeaf(n) {
				continue
			}
			dir := 1
			if t.DefaultLeft[n] {
				dir = 0
				if math.IsInf(float64(t.SplitConditions[n]), -1) {
					return nil
				}
			}
			colOf[t.SplitIndices[n]][dir] = 1
		}
	}
	f := &perfectForest{trees: make([]perfectTree, len(b.Trees))}
	for j := range colOf {
		for dir, nan := range [2]float32{float32(math.Inf(-1)), float32(math.Inf(1))} {
			if colOf[j][dir] != 0 {
				f.cols = append(f.cols, perfectCol{feature: j, nan: nan})
				colOf[j][dir] = len(f.cols)
			}
		}
	}
	for ti := range b.Trees {
		t := &b.Trees[ti]
		depth := int(depths[ti])
		pt := perfectTree{thr: len(f.thr), off: len(f.off), depth: depth}
		f.trees[ti] = pt
		// Padding splits (under shallow leaves) keep the zero value:
		// threshold 0 on column 0, which exists whenever depth > 0.
		f.thr = append(f.thr, make([]float32, 2<<depth)...)
		f.off = append(f.off, make([]uint32, 1<<depth)...)
		thr, off := f.thr[pt.thr:], f.off[pt.off:]
		leaves := thr[1<<depth:]
		var fill func(old int32, h, d int)
		fill = func(old int32, h, d int) {
			if t.IsLeaf(int(old)) {
				// Heap node h at level d covers 2^(depth-d) leaves.
				w := 1 << (depth - d)
				lo := (h - 1<<d) * w
				for k := lo; k < lo+w; k++ {
					leaves[k] = t.SplitConditions[old]
				}
				return
			}
			dir := 1
			if t.DefaultLeft[old] {
				dir = 0
			}
			col := colOf[t.SplitIndices[old]][dir] - 1
			thr[h], off[h] = t.SplitConditions[old], uint32(col*xgbGroup*4)
			fill(t.LeftChildren[old], 2*h, d+1)
			fill(t.RightChildren[old], 2*h+1, d+1)
		}
		fill(0, 1, 0)
	}
	return f
}

// predict writes the predictions of x's rows into out (as
// XGBoost.PredictMatrix, which checked the shapes).
func (f *perfectForest) predict(x *transform.Matrix, out []float64, base float32, prob bool) {
	if x.Rows < xgbRowWalk {
		f.predictRows(x, out, base, prob)
		return
	}
	nc := max(len(f.cols), 1)
	// A block of min(rows, xgbBlock) rows, in whole groups.
	blk := make([]float32, nc*min(xgbBlock, (x.Rows+xgbGroup-1)/xgbGroup*xgbGroup))
	var acc [xgbBlock]float32
	for lo := 0; lo < x.Rows; lo += xgbBlock {
		n := min(xgbBlock, x.Rows-lo)
		groups := (n + xgbGroup - 1) / xgbGroup
		for c, col := range f.cols {
			src := x.Cols[col.feature][lo : lo+n]
			g := 0
			for ; (g+1)*xgbGroup <= n; g++ {
				s := (*[xgbGroup]float64)(src[g*xgbGroup:])
				d := (*[xgbGroup]float32)(blk[(g*nc+c)*xgbGroup:])
				for k, v := range s {
					v := float32(v)
					if v != v {
						v = col.nan
					}
					d[k] = v
				}
			}
			if g < groups {
				// The last group's rows past n are walked and ignored.
				d := (*[xgbGroup]float32)(blk[(g*nc+c)*xgbGroup:])
				for k := range d {
					v := float32(0)
					if g*xgbGroup+k < n {
						v = float32(src[g*xgbGroup+k])
					}
					if v != v {
						v = col.nan
					}
					d[k] = v
				}
			}
		}
		a := acc[:groups*xgbGroup]
		for i := range a {
			a[i] = base
		}
		f.add(blk, a)
		for i, m := range acc[:n] {
			if prob {
				out[lo+i] = sigmoid(float64(m))
			} else {
				out[lo+i] = float64(m)
			}
		}
	}
}

// xgbRowWalk is the number of rows below which perfectForest.predict walks
// the trees row by row (predictRows) instead of in groups of xgbGroup rows,
// most of whose lanes would be padding: a request of one row, as a model
// server scores them, walks each tree once instead of eight times.
const xgbRowWalk = xgbGroup / 2

// predictRows is predict for a few rows (fewer than xgbRowWalk), one at a
// time: it computes the same sums in the same order, so the predictions
// are bit-identical.
func (f *perfectForest) predictRows(x *transform.Matrix, out []float64, base float32, prob bool) {
	// The row's block columns, as predict converts them; the splits'
	// offsets address groups of xgbGroup values, so column c of a single
	// row is at offset/xgbGroup.
	var small [64]float32
	row := small[:]
	if len(f.cols) > len(small) {
		row = make([]float32, len(f.cols))
	}
	row = row[:max(len(f.cols), 1)]
	for i := range x.Rows {
		for c, col := range f.cols {
			v := float32(x.Cols[col.feature][i])
			if v != v {
				v = col.nan
			}
			row[c] = v
		}
		acc := base
		r := unsafe.Pointer(&row[0])
		trees := f.trees
		for len(trees) > 0 {
			t := trees[0]
			if len(trees) >= 4 && t.depth > 0 && trees[1].depth == t.depth && trees[2].depth == t.depth && trees[3].depth == t.depth {
				// Four trees of the same depth walk together (their
				// loads overlap); their leaves are added in tree order.
				l0, l1, l2, l3 := perfectWalkRow4(f, trees[:4], r, t.depth)
				acc += l0
				acc += l1
				acc += l2
				acc += l3
				trees = trees[4:]
				continue
			}
			trees = trees[1:]
			if t.depth == 0 {
				acc += f.thr[t.thr+1]
				continue
			}
			// In range: the tree's thr has 2^(depth+1) entries and off
			// 2^depth; offsets name columns of the block.
			acc += perfectWalkRow(unsafe.Pointer(&f.thr[t.thr]), unsafe.Pointer(&f.off[t.off]), r, t.depth)
		}
		if prob {
			out[i] = sigmoid(float64(acc))
		} else {
			out[i] = float64(acc)
		}
	}
}

// perfectWalkRow walks one row (its block columns at row) down the depth
// levels of the tree whose thresholds and leaves are at nodes and column
// offsets at offs, and returns the leaf's value. depth is at least 1.
func perfectWalkRow(nodes, offs, row unsafe.Pointer, depth int) float32 {
	i := uintptr(1)
	for range depth {
		i = rowStep(nodes, offs, row, i)
	}
	return *(*float32)(unsafe.Add(nodes, i*4))
}

// rowStep is perfectStep for a single row, whose block columns are at row:
// the offsets address groups of xgbGroup values, so a column's value is at
// offset/xgbGroup.
func rowStep(nodes, offs, row unsafe.Pointer, i uintptr) uintptr {
	thr := *(*float32)(unsafe.Add(nodes, i*4))
	off := *(*uint32)(unsafe.Add(offs, i*4))
	v := *(*float32)(unsafe.Add(row, uintptr(off)/xgbGroup))
	right := uintptr(0)
	if v >= thr {
		right = 1
	}
	return 2*i + right
}

// perfectWalkRow4 is perfectWalkRow for the four trees ts, all of the
// given depth (at least 1), walked in lock step.
func perfectWalkRow4(f *perfectForest, ts []perfectTree, row unsafe.Pointer, depth int) (l0, l1, l2, l3 float32) {
	n0, o0 := unsafe.Pointer(&f.thr[ts[0].thr]), unsafe.Pointer(&f.off[ts[0].off])
	n1, o1 := unsafe.Pointer(&f.thr[ts[1].thr]), unsafe.Pointer(&f.off[ts[1].off])
	n2, o2 := unsafe.Pointer(&f.thr[ts[2].thr]), unsafe.Pointer(&f.off[ts[2].off])
	n3, o3 := unsafe.Pointer(&f.thr[ts[3].thr]), unsafe.Pointer(&f.off[ts[3].off])
	i0, i1, i2, i3 := uintptr(1), uintptr(1), uintptr(1), uintptr(1)
	for range depth {
		i0 = rowStep(n0, o0, row, i0)
		i1 = rowStep(n1, o1, row, i1)
		i2 = rowStep(n2, o2, row, i2)
		i3 = rowStep(n3, o3, row, i3)
	}
	return *(*float32)(unsafe.Add(n0, i0*4)), *(*float32)(unsafe.Add(n1, i1*4)),
		*(*float32)(unsafe.Add(n2, i2*4)), *(*float32)(unsafe.Add(n3, i3*4))
}

// perfectStep moves from split i of the tree at nodes one level down for
// row k of the row group at grp and returns the next heap index. Heap
// indices start at 1 (the root), so the children of i are 2i and 2i+1. The
// offsets are in range by construction: 1 <= i < 2^depth, node offsets name
// columns of the block and k < xgbGroup. Block values and thresholds are
// never NaN, so x >= thr is !(x < thr).
func perfectStep(nodes, offs, grp unsafe.Pointer, i, k uintptr) uintptr {
	// The thresholds, then the offsets: 4-byte elements, which the
	// compiler loads with scaled-index addressing.
	thr := *(*float32)(unsafe.Add(nodes, i*4))
	off := *(*uint32)(unsafe.Add(offs, i*4))
	v := *(*float32)(unsafe.Add(grp, uintptr(off)+k*4))
	right := uintptr(0)
	if v >= thr {
		right = 1
	}
	return 2*i + right
}

// rootStep is perfectStep from the root (heap index 1) for value v.
// (Written as perfectStep is, which the compiler makes branch free.)
func rootStep(v, thr float32) uintptr {
	right := uintptr(0)
	if v >= thr {
		right = 1
	}
	return 2 + right
}

// perfectWalk walks the xgbGroup rows of the group at grp down the depth
// levels of the tree whose thresholds and leaves are at nodes and column
// offsets at offs, and adds the leaves' values to acc. depth is at least 1.
//
//go:noinline
func perfectWalk(nodes, offs, grp unsafe.Pointer, acc *[xgbGroup]float32, depth int) {
	// The root is the same split for every row: read it once.
	thr := *(*float32)(unsafe.Add(nodes, 4))
	x := (*[xgbGroup]float32)(unsafe.Add(grp, uintptr(*(*uint32)(unsafe.Add(offs, 4)))))
	i0, i1, i2, i3, i4, i5, i6, i7 := rootStep(x[0], thr), rootStep(x[1], thr), rootStep(x[2], thr), rootStep(x[3], thr),
		rootStep(x[4], thr), rootStep(x[5], thr), rootStep(x[6], thr), rootStep(x[7], thr)
	for d := depth - 1; d > 0; d-- {
		i0 = perfectStep(nodes, offs, grp, i0, 0)
		i1 = perfectStep(nodes, offs, grp, i1, 1)
		i2 = perfectStep(nodes, offs, grp, i2, 2)
		i3 = perfectStep(nodes, offs, grp, i3, 3)
		i4 = perfectStep(nodes, offs, grp, i4, 4)
		i5 = perfectStep(nodes, offs, grp, i5, 5)
		i6 = perfectStep(nodes, offs, grp, i6, 6)
		i7 = perfectStep(nodes, offs, grp, i7, 7)
	}
	acc[0] += *(*float32)(unsafe.Add(nodes, i0*4))
	acc[1] += *(*float32)(unsafe.Add(nodes, i1*4))
	acc[2] += *(*float32)(unsafe.Add(nodes, i2*4))
	acc[3] += *(*float32)(unsafe.Add(nodes, i3*4))
	acc[4] += *(*float32)(unsafe.Add(nodes, i4*4))
	acc[5] += *(*float32)(unsafe.Add(nodes, i5*4))
	acc[6] += *(*float32)(unsafe.Add(nodes, i6*4))
	acc[7] += *(*float32)(unsafe.Add(nodes, i7*4))
}

// add adds every tree's leaf values to acc, one entry per block row; len(acc)
// is a multiple of xgbGroup and the block holds len(acc) rows.
func (f *perfectForest) add(block []float32, acc []float32) {
	nc := max(len(f.cols), 1)
	groupBytes := uintptr(nc * xgbGroup * 4)
	if len(acc)%xgbGroup != 0 || len(acc)*nc > len(block) {
		panic("model: perfectForest.add: bad block") // Unreachable: predict sizes both.
	}
	blk := unsafe.Pointer(&block[0])
	for _, t := range f.trees {
		if t.depth == 0 {
			v := f.thr[t.thr+1]
			for r := range acc {
				acc[r] += v
			}
			continue
		}
		// In range: the tree's thr has 2^(depth+1) entries and off 2^depth.
		nodes := unsafe.Pointer(&f.thr[t.thr])
		offs := unsafe.Pointer(&f.off[t.off])
		for g := 0; g+xgbGroup <= len(acc); g += xgbGroup {
			grp := unsafe.Add(blk, uintptr(g/xgbGroup)*groupBytes)
			perfectWalk(nodes, offs, grp, (*[xgbGroup]float32)(acc[g:]), t.depth)
		}
	}
}
