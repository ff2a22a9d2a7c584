package model

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// EstimatorXGBoost is the estimator type of XGBoost: a tree ensemble in
// XGBoost's JSON model format (see internal/xgbjson), whether trained by
// XGBoost or by Kiln's trainer.
const EstimatorXGBoost = "xgboost"

// xgbBlock is how many rows XGBoost.PredictMatrix scores at a time: the
// block's features, converted to float32 (column-major, one extra all-zero
// column for leaves), take (features+1)·xgbBlock·4 bytes and stay in L1/L2
// cache while every tree walks every row of the block.
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
type XGBoost struct {
	booster  *xgbjson.Booster
	features []string
	nodes    []flatNode
	leaf     []float32 // leaf value by node index (0 on split nodes)
	roots    []int32
	depths   []int32
	base     float32
	prob     bool
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
	return p, nil
}

// FeatureNames returns the features the model reads, in order.
func (p *XGBoost) FeatureNames() []string { return p.features }

// Booster returns the parsed model.
func (p *XGBoost) Booster() *xgbjson.Booster { return p.booster }

// Objective returns the model's objective (xgbjson.ObjectiveBinaryLogistic
// or xgbjson.ObjectiveSquaredError).
func (p *XGBoost) Objective() string { return p.booster.Objective }

// PredictMatrix writes the prediction of row i of x into out[i]: the
// probability for binary:logistic, the value for reg:squarederror. NaN
// features are missing values, as in XGBoost. It allocates one block
// buffer per call, nothing per row.
func (p *XGBoost) PredictMatrix(x *transform.Matrix, out []float64) error {
	if err := checkMatrix(p.features, x, out); err != nil {
		return err
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

// step moves from node n one level down for the row whose feature values
// start at blk[r].
func step(nodes []flatNode, blk []float32, n int32, r int) int32 {
	nd := &nodes[n]
	v := blk[int(nd.col&^defaultRight)+r]
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
func (p *XGBoost) addTrees(blk []float32, acc []float32) {
	nodes, leaf := p.nodes, p.leaf
	n := len(acc)
	for t, root := range p.roots {
		depth := p.depths[t]
		if depth > xgbMaxLockstepDepth {
			for r := range acc {
				i := root
				for nodes[i].left != i {
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
