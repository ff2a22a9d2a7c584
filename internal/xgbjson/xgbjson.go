// Package xgbjson reads and writes tree ensembles in XGBoost's JSON model
// format: the file Booster.save_model("m.json") writes in XGBoost 1.7.
//
// Only what Kiln scores is supported: a gbtree booster with numerical
// splits and scalar leaves, with one output (objective binary:logistic or
// reg:squarederror) or one output per class (multi:softprob, and
// multi:softmax read as multi:softprob). gblinear and dart boosters,
// multi-target models, vector leaves and categorical splits are rejected
// with an error saying so.
//
// Semantics follow XGBoost's CPU predictor: features are float32, a split
// node sends x left when float32(x) < condition, a missing value (NaN) goes
// the node's default direction, and the margin is the base margin plus the
// sum of one leaf value per tree, accumulated in float32 in tree order. The
// base margin is logit(base_score) for binary:logistic and base_score for
// regression; the probability is sigmoid(margin).
//
// A multi-class model (learner_model_param.num_class K >= 2) has K margins
// per row: tree i adds its leaf value to the margin of class tree_info[i]
// (XGBoost grows K trees a round, classes 0..K-1 in order, and predicts
// with whole rounds only: a file whose trees are not whole rounds is
// refused), each margin
// accumulated in float32 in tree order from base_score itself (XGBoost 1.7
// adds base_score to every class margin untransformed; it cancels in the
// softmax). The class probabilities are the softmax of the K margins,
// computed as XGBoost does (subtract the largest margin, exponentiate,
// divide by the sum) but in float64 from the float32 margins, as the
// sigmoid of a binary model is.
package xgbjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/internal/detmath"
)

// Objectives Kiln scores.
const (
	// ObjectiveBinaryLogistic is binary classification; predictions are
	// probabilities sigmoid(margin).
	ObjectiveBinaryLogistic = "binary:logistic"
	// ObjectiveSquaredError is regression; predictions are the margin.
	ObjectiveSquaredError = "reg:squarederror"
	// ObjectiveMultiSoftprob is multi-class classification; predictions
	// are the softmax of the NumClass per-class margins.
	ObjectiveMultiSoftprob = "multi:softprob"
	// ObjectiveMultiSoftmax is multi-class classification whose XGBoost
	// prediction is the most probable class; Kiln reads it as
	// ObjectiveMultiSoftprob (the same trees give the probabilities).
	ObjectiveMultiSoftmax = "multi:softmax"
)

// Tree is one regression tree in XGBoost's array layout; node 0 is the root.
// All slices have one entry per node.
type Tree struct {
	// LeftChildren and RightChildren index each split node's children;
	// they are -1 for leaves.
	LeftChildren, RightChildren []int32
	// SplitIndices is the feature index of each split node (0 for leaves).
	SplitIndices []int32
	// SplitConditions is, on a split node, the threshold (go left when
	// x < cond) and, on a leaf, the leaf value.
	SplitConditions []float32
	// DefaultLeft says where a missing value (NaN) goes at each split node.
	DefaultLeft []bool
	// BaseWeights holds the node weights (the leaf value on leaves).
	BaseWeights []float32
	// SumHessian is each node's cover; optional on write (nil means zeros).
	SumHessian []float32
	// LossChanges is each split's gain; optional on write (nil means zeros).
	LossChanges []float32
}

// MaxNumClass bounds NumClass (num_class), so that a forged file cannot
// make the predictors allocate K margins per row for an absurd K.
const MaxNumClass = 1 << 16

// Booster is a gbtree model.
type Booster struct {
	// Objective is ObjectiveBinaryLogistic, ObjectiveSquaredError,
	// ObjectiveMultiSoftprob or ObjectiveMultiSoftmax.
	Objective string
	// BaseScore is base_score as XGBoost stores it: a probability for
	// binary:logistic, a value for regression, the starting margin of every
	// class for the multi-class objectives. XGBoost keeps it as a float32.
	BaseScore float64
	// NumClass is num_class: the number of classes K (at least 2) of a
	// multi-class objective; 0 (or 1) for the single-output objectives.
	NumClass int
	// TreeInfo is tree_info for a multi-class model: TreeInfo[i] is the
	// class (0..NumClass-1) whose margin tree i adds to, one entry per
	// tree. It is nil for single-output models (every tree is group 0).
	TreeInfo []int
	// NumFeature is the number of input features.
	NumFeature int
	// FeatureNames names the features in order; it may be empty (XGBoost
	// files trained from arrays carry no names). When set it has
	// NumFeature entries.
	FeatureNames []string
	// Trees are the trees, summed in order.
	Trees []Tree
}

// NumNodes returns the number of nodes of t.
func (t *Tree) NumNodes() int { return len(t.LeftChildren) }

// IsLeaf reports whether node n of t is a leaf.
func (t *Tree) IsLeaf(n int) bool { return t.LeftChildren[n] < 0 }

// Multiclass reports whether b has one output per class (NumClass >= 2).
func (b *Booster) Multiclass() bool { return b.NumClass >= 2 }

// NumOutputs returns the number of margins per row: NumClass for a
// multi-class model, 1 otherwise.
func (b *Booster) NumOutputs() int {
	if b.Multiclass() {
		return b.NumClass
	}
	return 1
}

// isMultiObjective reports whether objective is one of the multi-class
// objectives.
func isMultiObjective(objective string) bool {
	return objective == ObjectiveMultiSoftprob || objective == ObjectiveMultiSoftmax
}

// BaseMargin returns the margin every prediction starts from, as the float32
// XGBoost adds leaf values to: logit(BaseScore) for binary:logistic,
// BaseScore for regression and for every class of a multi-class model.
func (b *Booster) BaseMargin() float32 {
	bs := float32(b.BaseScore)
	if b.Objective == ObjectiveBinaryLogistic {
		// XGBoost's ProbToMargin: -logf(1/base_score - 1), in float32.
		return float32(-detmath.Log(float64(float32(1/bs - 1))))
	}
	return bs
}

// Margin returns the raw score of one row: the base margin plus the leaf
// value of every tree, accumulated in float32 as XGBoost does. x holds the
// features in order (NaN for missing); a feature index past len(x) counts
// as missing. It is the row-at-a-time reference; b must be valid. For a
// multi-class model it is the margin of class 0 (see Margins).
func (b *Booster) Margin(x []float64) float64 {
	if b.Multiclass() {
		m := make([]float64, b.NumClass)
		b.Margins(x, m)
		return m[0]
	}
	sum := b.BaseMargin()
	for i := range b.Trees {
		sum += b.Trees[i].Leaf(x)
	}
	return float64(sum)
}

// Margins writes the NumOutputs() margins of one row into out: for a
// multi-class model out[k] is the base margin plus the leaf values of the
// trees of class k, accumulated in float32 in tree order as XGBoost's CPU
// predictor does; for a single-output model out[0] is Margin(x). x is as
// for Margin; b must be valid and len(out) must be NumOutputs() (Margins
// panics otherwise).
func (b *Booster) Margins(x, out []float64) {
	if len(out) != b.NumOutputs() {
		panic(fmt.Sprintf("xgbjson: Margins: %d slots for %d outputs", len(out), b.NumOutputs()))
	}
	if !b.Multiclass() {
		out[0] = b.Margin(x)
		return
	}
	base := float64(b.BaseMargin())
	for k := range out {
		out[k] = base
	}
	for i := range b.Trees {
		// out[k] holds a float32 value exactly: this is float32
		// accumulation.
		k := b.TreeInfo[i]
		out[k] = float64(float32(out[k]) + b.Trees[i].Leaf(x))
	}
}

// PredictProba writes the class probabilities of one row of a multi-class
// model into out (len NumClass): the softmax of Margins. x is as for
// Margin; b must be a valid multi-class model and len(out) NumClass
// (PredictProba panics otherwise).
func (b *Booster) PredictProba(x, out []float64) {
	if !b.Multiclass() {
		panic(fmt.Sprintf("xgbjson: PredictProba of a %s model", b.Objective))
	}
	b.Margins(x, out)
	Softmax(out)
}

// Predict returns the prediction for one row: sigmoid(Margin) for
// binary:logistic, Margin for regression, and for a multi-class model the
// index of the most probable class (the first on ties; a NaN probability
// is not the most probable unless all are), as XGBoost's multi:softmax
// predicts.
func (b *Booster) Predict(x []float64) float64 {
	if b.Multiclass() {
		p := make([]float64, b.NumClass)
		b.PredictProba(x, p)
		best := 0
		for k, v := range p {
			if v > p[best] || p[best] != p[best] {
				best = k
			}
		}
		return float64(best)
	}
	m := b.Margin(x)
	if b.Objective == ObjectiveBinaryLogistic {
		return Sigmoid(m)
	}
	return m
}

// Softmax replaces the margins z by their softmax, as XGBoost's
// multi:softprob transform: the largest margin is subtracted first (so no
// exponential overflows), then each is exponentiated (package detmath: the
// same bits on every architecture) and divided by the sum of the
// exponentials, summed in order. It computes in float64 (XGBoost in
// float32, a difference below 1e-7).
func Softmax(z []float64) {
	if len(z) == 0 {
		return
	}
	zmax := z[0]
	for _, v := range z[1:] {
		if v > zmax {
			zmax = v
		}
	}
	var sum float64
	for k, v := range z {
		e := detmath.Exp(v - zmax)
		z[k] = e
		sum += e
	}
	for k := range z {
		z[k] /= sum
	}
}

// Sigmoid is 1/(1+e^-z), computed without overflow, the same bits on every
// architecture (package detmath).
func Sigmoid(z float64) float64 { return detmath.Sigmoid(z) }

// Leaf returns the value of the leaf row x reaches in t.
func (t *Tree) Leaf(x []float64) float32 {
	n := int32(0)
	for t.LeftChildren[n] >= 0 {
		f := int(t.SplitIndices[n])
		v := float32(math.NaN())
		if f < len(x) {
			v = float32(x[f])
		}
		switch {
		case v != v:
			if t.DefaultLeft[n] {
				n = t.LeftChildren[n]
			} else {
				n = t.RightChildren[n]
			}
		case v < t.SplitConditions[n]:
			n = t.LeftChildren[n]
		default:
			n = t.RightChildren[n]
		}
	}
	return t.SplitConditions[n]
}

// Validate checks that b is a model Kiln can score and write: a supported
// objective, a finite base score (in (0,1) for binary:logistic), a
// num_class of 2 to MaxNumClass for the multi-class objectives (0 or 1 for
// the others) with one tree_info class in range per tree and whole rounds
// of num_class trees (XGBoost ignores the trees of a partial round, so
// Kiln refuses them rather than predict otherwise), feature names
// that are distinct and one per feature when present, and valid trees.
func (b *Booster) Validate() error {
	switch b.Objective {
	case ObjectiveBinaryLogistic:
		bs := float32(b.BaseScore)
		if !(bs > 0 && bs < 1) {
			return fmt.Errorf("base_score %v is not a probability in (0, 1), as binary:logistic needs", b.BaseScore)
		}
	case ObjectiveSquaredError, ObjectiveMultiSoftprob, ObjectiveMultiSoftmax:
		if f := float32(b.BaseScore); math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("base_score %v is not a finite float32", b.BaseScore)
		}
	default:
		return unsupportedObjective(b.Objective)
	}
	if err := b.validateClasses(); err != nil {
		return err
	}
	if b.NumFeature <= 0 {
		return fmt.Errorf("num_feature is %d, want at least 1", b.NumFeature)
	}
	if len(b.FeatureNames) > 0 {
		if len(b.FeatureNames) != b.NumFeature {
			return fmt.Errorf("%d feature_names for num_feature %d", len(b.FeatureNames), b.NumFeature)
		}
		seen := make(map[string]bool, len(b.FeatureNames))
		for j, name := range b.FeatureNames {
			if name == "" {
				return fmt.Errorf("feature_names[%d] is empty", j)
			}
			if seen[name] {
				return fmt.Errorf("feature name %q is listed twice", name)
			}
			seen[name] = true
		}
	}
	for i := range b.Trees {
		if err := b.Trees[i].validate(b.NumFeature); err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return nil
}

// unsupportedObjective is the error for an objective Kiln does not score.
func unsupportedObjective(objective string) error {
	return fmt.Errorf("objective %q is not supported (want %q, %q, %q or %q)", objective,
		ObjectiveBinaryLogistic, ObjectiveSquaredError, ObjectiveMultiSoftprob, ObjectiveMultiSoftmax)
}

// validateClasses checks NumClass against the objective and TreeInfo
// against the trees.
func (b *Booster) validateClasses() error {
	if !isMultiObjective(b.Objective) {
		if b.NumClass < 0 || b.NumClass > 1 {
			return fmt.Errorf("num_class is %d but objective %q has a single output (multi-class models need %q)", b.NumClass, b.Objective, ObjectiveMultiSoftprob)
		}
		if b.TreeInfo != nil {
			if len(b.TreeInfo) != len(b.Trees) {
				return fmt.Errorf("tree_info has %d entries for %d trees", len(b.TreeInfo), len(b.Trees))
			}
			for i, k := range b.TreeInfo {
				if k != 0 {
					return fmt.Errorf("tree_info[%d] is %d but objective %q has a single output", i, k, b.Objective)
				}
			}
		}
		return nil
	}
	if b.NumClass < 2 || b.NumClass > MaxNumClass {
		return fmt.Errorf("num_class is %d: objective %q needs from 2 to %d classes", b.NumClass, b.Objective, MaxNumClass)
	}
	if len(b.TreeInfo) != len(b.Trees) {
		return fmt.Errorf("tree_info has %d entries for %d trees (a multi-class model names each tree's class)", len(b.TreeInfo), len(b.Trees))
	}
	if len(b.Trees)%b.NumClass != 0 {
		// XGBoost grows num_class trees a round and predicts with whole
		// rounds only: it would ignore the trees of a partial round.
		return fmt.Errorf("%d trees are not whole rounds of %d classes (XGBoost would ignore the last %d)", len(b.Trees), b.NumClass, len(b.Trees)%b.NumClass)
	}
	for i, k := range b.TreeInfo {
		if k < 0 || k >= b.NumClass {
			return fmt.Errorf("tree_info[%d] is %d, not a class from 0 to %d", i, k, b.NumClass-1)
		}
	}
	return nil
}

// validate checks t's arrays agree in length, children are in range, every
// node has at most one parent and the root none, there are no cycles (so
// the nodes reachable from the root form a tree; XGBoost may leave
// unreachable nodes behind after pruning), leaves have no right child,
// split features are below numFeature, and thresholds and leaf values of
// reachable nodes are finite (a NaN threshold would send every value right
// in XGBoost, an Inf is legal there but never produced; we reject NaN only).
func (t *Tree) validate(numFeature int) error {
	n := len(t.LeftChildren)
	if n == 0 {
		return fmt.Errorf("no nodes")
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("%d nodes", n)
	}
	for _, a := range []struct {
		name string
		len  int
		opt  bool
	}{
		{"right_children", len(t.RightChildren), false},
		{"split_indices", len(t.SplitIndices), false},
		{"split_conditions", len(t.SplitConditions), false},
		{"default_left", len(t.DefaultLeft), false},
		{"base_weights", len(t.BaseWeights), false},
		{"sum_hessian", len(t.SumHessian), true},
		{"loss_changes", len(t.LossChanges), true},
	} {
		if a.len != n && !(a.opt && a.len == 0) {
			return fmt.Errorf("%s has %d entries for %d nodes", a.name, a.len, n)
		}
	}
	parent := make([]int32, n)
	for i := range parent {
		parent[i] = -1
	}
	for i := 0; i < n; i++ {
		l, r := t.LeftChildren[i], t.RightChildren[i]
		if l < 0 || r < 0 {
			if l != -1 || r != -1 {
				return fmt.Errorf("node %d: left child %d and right child %d (a leaf has -1 for both)", i, l, r)
			}
			continue
		}
		if f := t.SplitIndices[i]; f < 0 || int(f) >= numFeature {
			return fmt.Errorf("node %d: split feature %d is out of range (num_feature %d)", i, f, numFeature)
		}
		if c := t.SplitConditions[i]; c != c {
			return fmt.Errorf("node %d: split condition is NaN", i)
		}
		for _, c := range [2]int32{l, r} {
			if int(c) >= n {
				return fmt.Errorf("node %d: child %d is out of range (%d nodes)", i, c, n)
			}
			if c == 0 {
				return fmt.Errorf("node %d: the root is its child", i)
			}
			if parent[c] >= 0 {
				return fmt.Errorf("node %d: node %d is a child of both %d and %d", i, c, parent[c], i)
			}
			parent[c] = int32(i)
		}
	}
	// With at most one parent per node and none for the root, a cycle can
	// only sit among nodes unreachable from the root; following parents
	// from every node must end at a node without one.
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, n)
	var path []int32
	for i := range n {
		path = path[:0]
		c := int32(i)
		for c >= 0 && state[c] == unseen {
			state[c] = onPath
			path = append(path, c)
			c = parent[c]
		}
		if c >= 0 && state[c] == onPath {
			return fmt.Errorf("node %d is in a cycle", c)
		}
		for _, p := range path {
			state[p] = done
		}
	}
	return nil
}

// firstApart returns the first split node whose right child is not at its
// left child's index + 1, or -1. XGBoost allocates children in pairs and
// its predictor relies on it (right = left + 1), so files XGBoost reads
// correctly have none.
func (t *Tree) firstApart() int {
	for n, l := range t.LeftChildren {
		if l >= 0 && t.RightChildren[n] != l+1 {
			return n
		}
	}
	return -1
}

// adjacent returns t itself when every split node's children are adjacent
// (right = left+1), and otherwise a copy renumbered breadth first from the
// root, which has that layout and drops unreachable nodes. t must be valid.
func (t *Tree) adjacent() *Tree {
	if t.firstApart() < 0 {
		return t
	}
	n := t.NumNodes()
	var c Tree
	order := make([]int32, 0, n) // order[new] = old
	order = append(order, 0)
	for k := 0; k < len(order); k++ {
		if l := t.LeftChildren[order[k]]; l >= 0 {
			order = append(order, l, t.RightChildren[order[k]])
		}
	}
	// Children are appended in pairs as their parents are visited, so the
	// k-th pair appended (at 1+2k) belongs to the k-th split node visited.
	pair := int32(1)
	for _, old := range order {
		l, r := int32(-1), int32(-1)
		if t.LeftChildren[old] >= 0 {
			l, r = pair, pair+1
			pair += 2
		}
		c.LeftChildren = append(c.LeftChildren, l)
		c.RightChildren = append(c.RightChildren, r)
		c.SplitIndices = append(c.SplitIndices, t.SplitIndices[old])
		c.SplitConditions = append(c.SplitConditions, t.SplitConditions[old])
		c.DefaultLeft = append(c.DefaultLeft, t.DefaultLeft[old])
		c.BaseWeights = append(c.BaseWeights, t.BaseWeights[old])
		if t.SumHessian != nil {
			c.SumHessian = append(c.SumHessian, t.SumHessian[old])
		}
		if t.LossChanges != nil {
			c.LossChanges = append(c.LossChanges, t.LossChanges[old])
		}
	}
	return &c
}

// Depth returns the number of edges on the longest path from the root of t
// to a leaf. t must be valid.
func (t *Tree) Depth() int {
	type item struct{ node, depth int32 }
	stack := []item{{0, 0}}
	max := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if int(it.depth) > max {
			max = int(it.depth)
		}
		if l := t.LeftChildren[it.node]; l >= 0 {
			stack = append(stack, item{l, it.depth + 1}, item{t.RightChildren[it.node], it.depth + 1})
		}
	}
	return max
}

// ----- reading -----

// fileModel mirrors the parts of XGBoost's JSON file Parse reads.
type fileModel struct {
	Version []int        `json:"version"`
	Learner *fileLearner `json:"learner"`
}

type fileLearner struct {
	Attributes        map[string]string `json:"attributes"`
	FeatureNames      []string          `json:"feature_names"`
	FeatureTypes      []string          `json:"feature_types"`
	GradientBooster   *fileGBM          `json:"gradient_booster"`
	LearnerModelParam map[string]string `json:"learner_model_param"`
	Objective         *fileObjective    `json:"objective"`
}

type fileGBM struct {
	Name  string        `json:"name"`
	Model *fileGBTModel `json:"model"`
}

type fileGBTModel struct {
	GBTreeModelParam map[string]string `json:"gbtree_model_param"`
	TreeInfo         []int             `json:"tree_info"`
	Trees            []fileTree        `json:"trees"`
}

type fileObjective struct {
	Name                   string            `json:"name"`
	SoftmaxMulticlassParam map[string]string `json:"softmax_multiclass_param"`
}

type fileTree struct {
	BaseWeights     []float32         `json:"base_weights"`
	DefaultLeft     []flag            `json:"default_left"`
	ID              int               `json:"id"`
	LeftChildren    []int32           `json:"left_children"`
	LossChanges     []float32         `json:"loss_changes"`
	Parents         []int64           `json:"parents"`
	RightChildren   []int32           `json:"right_children"`
	SplitConditions []float32         `json:"split_conditions"`
	SplitIndices    []int64           `json:"split_indices"`
	SplitType       []int             `json:"split_type"`
	SumHessian      []float32         `json:"sum_hessian"`
	TreeParam       map[string]string `json:"tree_param"`
	Categories      []int             `json:"categories"`
	CategoriesNodes []int             `json:"categories_nodes"`
}

// flag is a 0/1 number or a JSON boolean (newer XGBoost versions write
// booleans in some places).
type flag bool

// UnmarshalJSON accepts 0, 1, true and false.
func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "0", "false":
		*f = false
	case "1", "true":
		*f = true
	default:
		return fmt.Errorf("default_left value %s is not 0 or 1", b)
	}
	return nil
}

// Parse decodes and strictly validates an XGBoost JSON model (as written by
// XGBoost 1.7's save_model or by MarshalJSON).
func Parse(data []byte) (*Booster, error) {
	var f fileModel
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("xgboost model: decoding JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("xgboost model: data after the JSON object")
	}
	b, err := f.booster()
	if err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	for i := range b.Trees {
		if n := b.Trees[i].firstApart(); n >= 0 {
			t := &b.Trees[i]
			return nil, fmt.Errorf("xgboost model: tree %d: node %d: right child %d does not follow left child %d (XGBoost's predictor reads the right child at left+1)", i, n, t.RightChildren[n], t.LeftChildren[n])
		}
	}
	return b, nil
}

// booster converts the decoded file, checking the parts Validate cannot see.
func (f *fileModel) booster() (*Booster, error) {
	l := f.Learner
	if l == nil {
		return nil, errors.New(`no "learner" object (is this an XGBoost JSON model?)`)
	}
	if len(f.Version) > 0 && f.Version[0] < 1 {
		return nil, fmt.Errorf("version %v is too old (JSON models start at 1.0)", f.Version)
	}
	if l.Objective == nil || l.Objective.Name == "" {
		return nil, errors.New("learner.objective.name is missing")
	}
	if l.LearnerModelParam == nil {
		return nil, errors.New("learner.learner_model_param is missing")
	}
	b := &Booster{Objective: l.Objective.Name}
	switch b.Objective {
	case ObjectiveBinaryLogistic, ObjectiveSquaredError, ObjectiveMultiSoftprob, ObjectiveMultiSoftmax:
	default:
		return nil, unsupportedObjective(b.Objective)
	}
	p := l.LearnerModelParam
	bs, err := paramFloat32(p, "base_score", "learner_model_param")
	if err != nil {
		return nil, err
	}
	b.BaseScore = float64(bs)
	if b.NumFeature, err = paramInt(p, "num_feature", "learner_model_param", true); err != nil {
		return nil, err
	}
	if b.NumClass, err = paramInt(p, "num_class", "learner_model_param", false); err != nil {
		return nil, err
	}
	multi := isMultiObjective(b.Objective)
	if !multi && b.NumClass > 1 {
		return nil, fmt.Errorf("learner_model_param.num_class is %d but objective %q has a single output (multi-class models need %q)", b.NumClass, b.Objective, ObjectiveMultiSoftprob)
	}
	if multi && (b.NumClass < 2 || b.NumClass > MaxNumClass) {
		return nil, fmt.Errorf("learner_model_param.num_class is %d: objective %q needs from 2 to %d classes", b.NumClass, b.Objective, MaxNumClass)
	}
	if sp := l.Objective.SoftmaxMulticlassParam; multi && sp != nil {
		if nc, err := paramInt(sp, "num_class", "objective.softmax_multiclass_param", false); err != nil {
			return nil, err
		} else if _, ok := sp["num_class"]; ok && nc != b.NumClass {
			return nil, fmt.Errorf("objective.softmax_multiclass_param.num_class is %d but learner_model_param.num_class is %d", nc, b.NumClass)
		}
	}
	if nt, err := paramInt(p, "num_target", "learner_model_param", false); err != nil {
		return nil, err
	} else if nt > 1 {
		return nil, fmt.Errorf("learner_model_param.num_target is %d: multi-target models are not supported", nt)
	}
	for j, t := range l.FeatureTypes {
		switch t {
		case "float", "q", "int", "i":
		case "c":
			return nil, fmt.Errorf("feature_types[%d] is categorical (\"c\"): categorical features are not supported", j)
		default:
			return nil, fmt.Errorf("feature_types[%d] is %q (want float, q, int or i)", j, t)
		}
	}
	b.FeatureNames = l.FeatureNames

	g := l.GradientBooster
	if g == nil {
		return nil, errors.New("learner.gradient_booster is missing")
	}
	switch g.Name {
	case "gbtree":
	case "dart":
		return nil, errors.New("booster \"dart\" is not supported (train with booster=gbtree; dart's tree weights are not applied)")
	case "gblinear":
		return nil, errors.New("booster \"gblinear\" is not supported (only tree models; use a linear estimator for linear models)")
	default:
		return nil, fmt.Errorf("booster %q is not supported (want gbtree)", g.Name)
	}
	m := g.Model
	if m == nil {
		return nil, errors.New("gradient_booster.model is missing")
	}
	if nt, err := paramInt(m.GBTreeModelParam, "num_trees", "gbtree_model_param", false); err != nil {
		return nil, err
	} else if m.GBTreeModelParam != nil && nt != len(m.Trees) {
		return nil, fmt.Errorf("gbtree_model_param.num_trees is %d but there are %d trees", nt, len(m.Trees))
	}
	if sl, err := paramInt(m.GBTreeModelParam, "size_leaf_vector", "gbtree_model_param", false); err != nil {
		return nil, err
	} else if sl != 0 {
		return nil, fmt.Errorf("gbtree_model_param.size_leaf_vector is %d: vector leaves are not supported", sl)
	}
	if len(m.TreeInfo) != len(m.Trees) {
		return nil, fmt.Errorf("tree_info has %d entries for %d trees", len(m.TreeInfo), len(m.Trees))
	}
	if multi {
		b.TreeInfo = append([]int{}, m.TreeInfo...)
	}
	b.Trees = make([]Tree, len(m.Trees))
	for i := range m.Trees {
		if !multi && m.TreeInfo[i] != 0 {
			return nil, fmt.Errorf("tree_info[%d] is %d but objective %q has a single output", i, m.TreeInfo[i], b.Objective)
		}
		t, err := m.Trees[i].tree()
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		b.Trees[i] = t
	}
	return b, nil
}

// tree converts one decoded tree.
func (ft *fileTree) tree() (Tree, error) {
	n := len(ft.LeftChildren)
	if nn, err := paramInt(ft.TreeParam, "num_nodes", "tree_param", false); err != nil {
		return Tree{}, err
	} else if ft.TreeParam != nil && nn != n {
		return Tree{}, fmt.Errorf("tree_param.num_nodes is %d but left_children has %d entries", nn, n)
	}
	if sl, err := paramInt(ft.TreeParam, "size_leaf_vector", "tree_param", false); err != nil {
		return Tree{}, err
	} else if sl != 0 {
		return Tree{}, fmt.Errorf("tree_param.size_leaf_vector is %d: vector leaves are not supported", sl)
	}
	for i, s := range ft.SplitType {
		if s != 0 {
			return Tree{}, fmt.Errorf("node %d: split_type %d (categorical splits are not supported)", i, s)
		}
	}
	if len(ft.CategoriesNodes) > 0 || len(ft.Categories) > 0 {
		return Tree{}, errors.New("categorical splits are not supported")
	}
	t := Tree{
		LeftChildren:    ft.LeftChildren,
		RightChildren:   ft.RightChildren,
		SplitConditions: ft.SplitConditions,
		BaseWeights:     ft.BaseWeights,
		SumHessian:      ft.SumHessian,
		LossChanges:     ft.LossChanges,
		SplitIndices:    make([]int32, len(ft.SplitIndices)),
		DefaultLeft:     make([]bool, len(ft.DefaultLeft)),
	}
	for i, d := range ft.DefaultLeft {
		t.DefaultLeft[i] = bool(d)
	}
	for i, s := range ft.SplitIndices {
		// Leaves (and nodes XGBoost deleted when pruning) may carry any
		// index; only split nodes' indices are checked, by validate.
		if s < 0 || s > math.MaxInt32 {
			if i < n && ft.LeftChildren[i] >= 0 {
				return Tree{}, fmt.Errorf("node %d: split feature %d is out of range", i, s)
			}
			s = 0
		}
		t.SplitIndices[i] = int32(s)
	}
	return t, nil
}

// paramString returns p[key]; XGBoost stores parameters as strings.
func paramString(p map[string]string, key, where string, required bool) (string, bool, error) {
	s, ok := p[key]
	if !ok && required {
		return "", false, fmt.Errorf("%s.%s is missing", where, key)
	}
	return s, ok, nil
}

// paramInt parses the integer parameter p[key] (0 when absent and not
// required).
func paramInt(p map[string]string, key, where string, required bool) (int, error) {
	s, ok, err := paramString(p, key, where, required)
	if err != nil || !ok {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s.%s is %q, not a non-negative integer", where, key, s)
	}
	return v, nil
}

// paramFloat32 parses the required float parameter p[key] as a float32, as
// XGBoost does.
func paramFloat32(p map[string]string, key, where string) (float32, error) {
	s, _, err := paramString(p, key, where, true)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
	if err != nil {
		return 0, fmt.Errorf("%s.%s is %q, not a number", where, key, s)
	}
	return float32(v), nil
}

// ----- writing -----

// MarshalJSON writes b as an XGBoost 1.7 JSON model, loadable by
// xgb.Booster(model_file=...): the full learner structure with version,
// learner_model_param (num_class included), the gbtree model with its
// params, tree_info (TreeInfo for a multi-class model, zeros otherwise) and
// every tree's arrays and tree_param, attributes, the objective with its
// parameters (softmax_multiclass_param for the multi-class objectives), and
// feature names and types when known. b must be valid;
// non-finite node values are an error. XGBoost's predictor reads a split
// node's right child at left+1: trees laid out otherwise are written
// renumbered breadth first (same predictions, unreachable nodes dropped),
// so callers may number nodes as they like.
func (b *Booster) MarshalJSON() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	var w jsonWriter
	w.s(`{"learner":{"attributes":{},"feature_names":[`)
	for j, name := range b.FeatureNames {
		w.comma(j)
		w.str(name)
	}
	w.s(`],"feature_types":[`)
	for j := range b.FeatureNames {
		w.comma(j)
		w.s(`"float"`)
	}
	w.s(`],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":`)
	w.str(strconv.Itoa(len(b.Trees)))
	w.s(`,"size_leaf_vector":"0"},"tree_info":[`)
	for i := range b.Trees {
		w.comma(i)
		if b.Multiclass() {
			w.buf = strconv.AppendInt(w.buf, int64(b.TreeInfo[i]), 10)
		} else {
			w.s("0")
		}
	}
	w.s(`],"trees":[`)
	for i := range b.Trees {
		w.comma(i)
		if err := w.tree(b.Trees[i].adjacent(), i, b.NumFeature); err != nil {
			return nil, fmt.Errorf("xgboost model: tree %d: %w", i, err)
		}
	}
	w.s(`]},"name":"gbtree"},"learner_model_param":{"base_score":`)
	w.str(fmtFloat32(float32(b.BaseScore)))
	w.s(`,"boost_from_average":"1","num_class":`)
	w.str(strconv.Itoa(b.NumClass))
	w.s(`,"num_feature":`)
	w.str(strconv.Itoa(b.NumFeature))
	w.s(`,"num_target":"1"},"objective":{"name":`)
	w.str(b.Objective)
	if isMultiObjective(b.Objective) {
		w.s(`,"softmax_multiclass_param":{"num_class":`)
		w.str(strconv.Itoa(b.NumClass))
		w.s(`}}},"version":[1,7,4]}`)
	} else {
		w.s(`,"reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,4]}`)
	}
	return w.buf, nil
}

// jsonWriter appends JSON text.
type jsonWriter struct{ buf []byte }

func (w *jsonWriter) s(s string) { w.buf = append(w.buf, s...) }

func (w *jsonWriter) comma(i int) {
	if i > 0 {
		w.buf = append(w.buf, ',')
	}
}

func (w *jsonWriter) str(s string) {
	q, _ := json.Marshal(s) // A string always encodes.
	w.buf = append(w.buf, q...)
}

func (w *jsonWriter) floats(name string, v []float32, n int) error {
	w.s(`"` + name + `":[`)
	for i := 0; i < n; i++ {
		w.comma(i)
		x := float32(0)
		if v != nil {
			x = v[i]
		}
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%s[%d] is %v", name, i, x)
		}
		w.s(fmtFloat32(x))
	}
	w.s("],")
	return nil
}

func (w *jsonWriter) ints(name string, n int, at func(i int) int64) {
	w.s(`"` + name + `":[`)
	for i := 0; i < n; i++ {
		w.comma(i)
		w.buf = strconv.AppendInt(w.buf, at(i), 10)
	}
	w.s("],")
}

// tree writes one tree object with every field XGBoost 1.7's RegTree
// loader reads.
func (w *jsonWriter) tree(t *Tree, id, numFeature int) error {
	n := t.NumNodes()
	parents := make([]int64, n)
	parents[0] = math.MaxInt32 // XGBoost's "no parent".
	for i := 0; i < n; i++ {
		if l := t.LeftChildren[i]; l >= 0 {
			parents[l] = int64(i)
			parents[t.RightChildren[i]] = int64(i)
		}
	}
	w.s("{")
	if err := w.floats("base_weights", t.BaseWeights, n); err != nil {
		return err
	}
	w.s(`"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],`)
	w.ints("default_left", n, func(i int) int64 {
		if t.DefaultLeft[i] {
			return 1
		}
		return 0
	})
	w.s(`"id":`)
	w.buf = strconv.AppendInt(w.buf, int64(id), 10)
	w.s(",")
	w.ints("left_children", n, func(i int) int64 { return int64(t.LeftChildren[i]) })
	if err := w.floats("loss_changes", t.LossChanges, n); err != nil {
		return err
	}
	w.ints("parents", n, func(i int) int64 { return parents[i] })
	w.ints("right_children", n, func(i int) int64 { return int64(t.RightChildren[i]) })
	if err := w.floats("split_conditions", t.SplitConditions, n); err != nil {
		return err
	}
	w.ints("split_indices", n, func(i int) int64 { return int64(t.SplitIndices[i]) })
	w.ints("split_type", n, func(int) int64 { return 0 })
	if err := w.floats("sum_hessian", t.SumHessian, n); err != nil {
		return err
	}
	w.s(`"tree_param":{"num_deleted":"0","num_feature":`)
	w.str(strconv.Itoa(numFeature))
	w.s(`,"num_nodes":`)
	w.str(strconv.Itoa(n))
	w.s(`,"size_leaf_vector":"0"}}`)
	return nil
}

// fmtFloat32 formats f with the fewest digits that read back as f, always
// with a decimal point or exponent: XGBoost's JSON reader keeps integers
// and numbers apart and refuses "1" where it wants a float.
func fmtFloat32(f float32) string {
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
