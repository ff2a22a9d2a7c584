package gbdt

import "math"

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
	// Objective is BinaryLogistic or SquaredError.
	Objective string
	// BaseScore is the initial prediction: a probability for BinaryLogistic
	// (XGBoost's base_score), a value for SquaredError.
	BaseScore float64
	// NumFeature is the number of features.
	NumFeature int
	// Trees are the trees, one per kept round.
	Trees []Tree
	// Rounds is the number of rounds trained (>= len(Trees) when early
	// stopping dropped the rounds after the best one).
	Rounds int
	// BestRound is the 0-based round whose trees were kept last.
	BestRound int
	// Metric names the validation metric ("logloss" or "rmse").
	Metric string
	// ValidHistory is the validation metric after each round; empty
	// without validation rows.
	ValidHistory []float64
}

// BaseMargin is the margin every prediction starts from: logit(BaseScore)
// for BinaryLogistic, BaseScore for SquaredError.
func (m *Model) BaseMargin() float64 {
	if m.Objective == BinaryLogistic {
		return math.Log(m.BaseScore / (1 - m.BaseScore))
	}
	return m.BaseScore
}

// Margin returns the raw score of one row x (len NumFeature, NaN missing):
// the base margin plus the leaf values, summed in tree order.
func (m *Model) Margin(x []float64) float64 {
	s := m.BaseMargin()
	for i := range m.Trees {
		s += float64(m.Trees[i].Leaf(x))
	}
	return s
}

// Predict returns the prediction of one row: a probability for
// BinaryLogistic, a value for SquaredError.
func (m *Model) Predict(x []float64) float64 {
	return m.transform(m.Margin(x))
}

// PredictColumns predicts every row of the column-major matrix cols
// (cols[j][i] is feature j of row i).
func (m *Model) PredictColumns(cols [][]float64) []float64 {
	out := m.marginColumns(cols)
	for i, z := range out {
		out[i] = m.transform(z)
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
