package gbdt

import (
	"math"

	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// Tree is one regression tree in XGBoost's array layout: node 0 is the root
// and a node's arrays hold its fields. A leaf has Left[i] == -1.
type Tree struct {
	// Left and Right are the children's node ids, -1 on leaves.
	Left, Right []int32
	// Feature is the split feature's index (0 on leaves).
	Feature []int32
	// Threshold is the split condition (go left when float32(x) <
	// Threshold) or, on a leaf, the leaf value (already scaled by eta).
	Threshold []float32
	// DefaultLeft says where a missing (NaN) value goes.
	DefaultLeft []bool
	// BaseWeight is the node's unscaled weight -G/(H+λ).
	BaseWeight []float32
	// SumHessian is the node's hessian sum on the training rows.
	SumHessian []float32
	// LossChange is the split's loss reduction (0 on leaves).
	LossChange []float32
}

// Len returns the number of nodes.
func (t *Tree) Len() int { return len(t.Left) }

// Leaf returns the value of the leaf that x falls in.
func (t *Tree) Leaf(x []float64) float32 {
	i := int32(0)
	for {
		l := t.Left[i]
		if l < 0 {
			return t.Threshold[i]
		}
		v := x[t.Feature[i]]
		switch {
		case math.IsNaN(v):
			if t.DefaultLeft[i] {
				i = l
			} else {
				i = t.Right[i]
			}
		case float32(v) < t.Threshold[i]:
			i = l
		default:
			i = t.Right[i]
		}
	}
}

// Model is a trained ensemble.
type Model struct {
	// Objective is BinaryLogistic, SquaredError or MultiSoftprob.
	Objective string
	// BaseScore is the initial prediction: a probability for BinaryLogistic
	// (XGBoost's base_score), a value for SquaredError, the initial margin
	// of every class for MultiSoftprob.
	BaseScore float64
	// NumFeature is the number of features.
	NumFeature int
	// NumClass is the number of classes K of a MultiSoftprob model, 0 for
	// the other objectives.
	NumClass int
	// Trees are the trees, one per kept round, or for MultiSoftprob K per
	// kept round (classes 0..K-1 in order).
	Trees []Tree
	// TreeClass is, for MultiSoftprob, the class whose margin each tree
	// adds to (XGBoost's tree_info); nil for the other objectives.
	TreeClass []int
	// Rounds is the number of rounds trained (>= len(Trees) when early
	// stopping dropped the rounds after the best one).
	Rounds int
	// BestRound is the 0-based round whose trees were kept last.
	BestRound int
	// Metric names the validation metric ("logloss", "mlogloss" or
	// "rmse").
	Metric string
	// ValidHistory is the validation metric after each round; empty
	// without validation rows.
	ValidHistory []float64
}

// BaseMargin is the margin every prediction starts from: logit(BaseScore)
// for BinaryLogistic, BaseScore for SquaredError and for every class of
// MultiSoftprob.
func (m *Model) BaseMargin() float64 {
	if m.Objective == BinaryLogistic {
		return math.Log(m.BaseScore / (1 - m.BaseScore))
	}
	return m.BaseScore
}

// Margin returns the raw score of one row x (len NumFeature, NaN missing):
// the base margin plus the leaf values, summed in tree order. For a
// MultiSoftprob model it is the margin of class 0 (see Margins).
func (m *Model) Margin(x []float64) float64 {
	if m.multi() {
		return m.Margins(x)[0]
	}
	s := m.BaseMargin()
	for i := range m.Trees {
		s += float64(m.Trees[i].Leaf(x))
	}
	return s
}

// Margins returns the NumClass margins of one row x of a MultiSoftprob
// model: margin k is the base margin plus the leaf values of the trees of
// class k, summed in tree order (in float64, as training does). For the
// other objectives it is []float64{Margin(x)}.
func (m *Model) Margins(x []float64) []float64 {
	if !m.multi() {
		return []float64{m.Margin(x)}
	}
	out := make([]float64, m.NumClass)
	for k := range out {
		out[k] = m.BaseMargin()
	}
	for i := range m.Trees {
		out[m.TreeClass[i]] += float64(m.Trees[i].Leaf(x))
	}
	return out
}

// Predict returns the prediction of one row: a probability for
// BinaryLogistic, a value for SquaredError, the index of the most probable
// class (the first on ties) for MultiSoftprob.
func (m *Model) Predict(x []float64) float64 {
	if m.multi() {
		return float64(argmax(m.PredictProba(x)))
	}
	return m.transform(m.Margin(x))
}

// PredictProba returns the NumClass class probabilities of one row of a
// MultiSoftprob model: the softmax of Margins. It returns nil for the
// other objectives.
func (m *Model) PredictProba(x []float64) []float64 {
	if !m.multi() {
		return nil
	}
	p := m.Margins(x)
	xgbjson.Softmax(p)
	return p
}

// PredictColumns predicts every row of the column-major matrix cols
// (cols[j][i] is feature j of row i), as Predict: for MultiSoftprob the
// index of each row's most probable class (see PredictProbaColumns).
func (m *Model) PredictColumns(cols [][]float64) []float64 {
	if m.multi() {
		p := m.PredictProbaColumns(cols)
		out := make([]float64, len(p)/m.NumClass)
		for i := range out {
			out[i] = float64(argmax(p[i*m.NumClass : (i+1)*m.NumClass]))
		}
		return out
	}
	out := m.marginColumns(cols)
	for i, z := range out {
		out[i] = m.transform(z)
	}
	return out
}

// PredictProbaColumns returns the class probabilities of every row of the
// column-major matrix cols for a MultiSoftprob model, row-major: entry
// i*NumClass+k is P(row i is class k). It returns nil for the other
// objectives.
func (m *Model) PredictProbaColumns(cols [][]float64) []float64 {
	if !m.multi() {
		return nil
	}
	z := m.classMarginColumns(cols)
	k := m.NumClass
	n := 0
	if k > 0 {
		n = len(z[0])
	}
	out := make([]float64, n*k)
	for c, zc := range z {
		for i, v := range zc {
			out[i*k+c] = v
		}
	}
	for i := range n {
		xgbjson.Softmax(out[i*k : (i+1)*k])
	}
	return out
}

// multi reports whether m is a MultiSoftprob model.
func (m *Model) multi() bool { return m.Objective == MultiSoftprob }

// argmax returns the index of the largest of p, the first on ties.
func argmax(p []float64) int {
	best := 0
	for k, v := range p {
		if v > p[best] {
			best = k
		}
	}
	return best
}

// classMarginColumns returns the margins of the rows of cols of a
// MultiSoftprob model, class by class: out[k][i] is row i's margin of
// class k.
func (m *Model) classMarginColumns(cols [][]float64) [][]float64 {
	n := 0
	if len(cols) > 0 {
		n = len(cols[0])
	}
	out := make([][]float64, m.NumClass)
	base := m.BaseMargin()
	for k := range out {
		out[k] = make([]float64, n)
		for i := range out[k] {
			out[k][i] = base
		}
	}
	for t := range m.Trees {
		addTree(&m.Trees[t], cols, out[m.TreeClass[t]])
	}
	return out
}

// marginColumns returns the margins of the rows of cols.
func (m *Model) marginColumns(cols [][]float64) []float64 {
	n := 0
	if len(cols) > 0 {
		n = len(cols[0])
	}
	out := make([]float64, n)
	base := m.BaseMargin()
	for i := range out {
		out[i] = base
	}
	for t := range m.Trees {
		addTree(&m.Trees[t], cols, out)
	}
	return out
}

// addTree adds tree t's leaf value to out[i] for every row i of cols.
func addTree(t *Tree, cols [][]float64, out []float64) {
	for r := range out {
		i := int32(0)
		for {
			l := t.Left[i]
			if l < 0 {
				out[r] += float64(t.Threshold[i])
				break
			}
			v := cols[t.Feature[i]][r]
			switch {
			case math.IsNaN(v):
				if t.DefaultLeft[i] {
					i = l
				} else {
					i = t.Right[i]
				}
			case float32(v) < t.Threshold[i]:
				i = l
			default:
				i = t.Right[i]
			}
		}
	}
}

// transform turns a margin into a prediction.
func (m *Model) transform(z float64) float64 {
	if m.Objective == BinaryLogistic {
		return sigmoid(z)
	}
	return z
}

// sigmoid is 1/(1+e^-z) without overflow.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}
