package gbdt

import "github.com/kiln-ml/kiln/internal/xgbjson"

// Booster converts m to XGBoost's JSON model (the file Kiln's trainer
// writes), naming its features. A MultiSoftprob model gets num_class and
// tree_info (each tree's class).
func (m *Model) Booster(features []string) *xgbjson.Booster {
	b := &xgbjson.Booster{Objective: m.Objective, BaseScore: m.BaseScore, NumFeature: m.NumFeature, FeatureNames: features}
	if m.multi() {
		b.NumClass = m.NumClass
		b.TreeInfo = append([]int(nil), m.TreeClass...)
	}
	for _, t := range m.Trees {
		b.Trees = append(b.Trees, xgbjson.Tree{
			LeftChildren: t.Left, RightChildren: t.Right, SplitIndices: t.Feature,
			SplitConditions: t.Threshold, DefaultLeft: t.DefaultLeft,
			BaseWeights: t.BaseWeight, SumHessian: t.SumHessian, LossChanges: t.LossChange,
		})
	}
	return b
}
