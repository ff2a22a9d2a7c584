package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// gbdtParamSpecs lists the gbdt parameters with their XGBoost names (and
// the scikit-learn style aliases) for params.json.
func gbdtParamSpecs(p *gbdt.Params) []paramSpec {
	inf := math.Inf(1)
	return []paramSpec{
		{name: "n_estimators", aliases: []string{"num_round", "trees"}, whole: true, lo: 1, hi: 100000, set: func(x float64) { p.NumRound = int(x) }},
		{name: "learning_rate", aliases: []string{"eta"}, lo: 0, hi: 1, loOpen: true, set: func(x float64) { p.Eta = x }},
		{name: "max_depth", whole: true, lo: 1, hi: 31, set: func(x float64) { p.MaxDepth = int(x) }},
		{name: "lambda", aliases: []string{"reg_lambda"}, lo: 0, hi: inf, set: func(x float64) { p.Lambda = x }},
		{name: "gamma", aliases: []string{"min_split_loss"}, lo: 0, hi: inf, set: func(x float64) { p.Gamma = x }},
		{name: "min_child_weight", lo: 0, hi: inf, set: func(x float64) { p.MinChildWeight = x }},
		{name: "subsample", lo: 0, hi: 1, loOpen: true, set: func(x float64) { p.Subsample = x }},
		{name: "colsample_bytree", lo: 0, hi: 1, loOpen: true, set: func(x float64) { p.ColsampleByTree = x }},
		{name: "max_bin", whole: true, lo: 2, hi: 65535, set: func(x float64) { p.MaxBin = int(x) }},
		{name: "base_score", lo: -math.MaxFloat32, hi: math.MaxFloat32, set: func(x float64) { p.BaseScore = x }},
		{name: "early_stopping_rounds", whole: true, lo: 0, hi: 100000, set: func(x float64) { p.EarlyStoppingRounds = int(x) }},
	}
}

// objectiveFor maps a task to its gbdt objective.
var objectiveFor = map[string]string{taskBinary: gbdt.BinaryLogistic, taskRegression: gbdt.SquaredError, taskMulticlass: gbdt.MultiSoftprob}

// parseGBDTParams reads the gbdt parameters, applying XGBoost's defaults:
// objective (default from the task: binary:logistic, reg:squarederror or
// multi:softprob), n_estimators 100, learning_rate 0.3, max_depth 6,
// lambda 1, gamma 0, min_child_weight 1, subsample 1, colsample_bytree 1,
// max_bin 256, base_score 0.5 (binary, multiclass) or the mean target
// (regression), early_stopping_rounds 0 (off). multi:softprob's num_class
// is not a parameter: fit takes it from schema.json's classes.
func parseGBDTParams(raw map[string]any, seed int64, task string) (gbdt.Params, error) {
	objective := objectiveFor[task]
	p := gbdt.DefaultParams(objective)
	p.Seed = uint64(seed)
	err := parseParams("gbdt", raw, gbdtParamSpecs(&p), map[string]func(string) error{
		"objective": func(s string) error {
			if s != gbdt.BinaryLogistic && s != gbdt.SquaredError && s != gbdt.MultiSoftprob {
				return badInput("%s: params.objective %q is not supported (want %q, %q or %q)", paramsFile, s, gbdt.BinaryLogistic, gbdt.SquaredError, gbdt.MultiSoftprob)
			}
			if objective != "" && s != objective {
				return badInput("%s: params.objective %q does not fit task %q (want %q)", paramsFile, s, task, objective)
			}
			p.Objective = s
			return nil
		},
	})
	if err != nil {
		return p, err
	}
	check := p
	if check.Objective == gbdt.MultiSoftprob {
		// num_class comes from schema.json's classes when fitting; any
		// valid count checks the rest.
		check.NumClass = 2
	}
	if err := check.Validate(); err != nil {
		return p, badInput("%s: params: %w", paramsFile, err)
	}
	return p, nil
}

// gbdtAlgo is histogram gradient boosting (internal/gbdt).
type gbdtAlgo struct{ params gbdt.Params }

func (a *gbdtAlgo) tasks() []string { return []string{taskBinary, taskMulticlass, taskRegression} }
func (a *gbdtAlgo) missingOK() bool { return true }
func (a *gbdtAlgo) describe() string {
	p := a.params
	return fmt.Sprintf("gbdt %s (n_estimators=%d learning_rate=%g max_depth=%d lambda=%g gamma=%g min_child_weight=%g subsample=%g colsample_bytree=%g max_bin=%d early_stopping_rounds=%d seed=%d)",
		p.Objective, p.NumRound, p.Eta, p.MaxDepth, p.Lambda, p.Gamma, p.MinChildWeight, p.Subsample, p.ColsampleByTree, p.MaxBin, p.EarlyStoppingRounds, p.Seed)
}

// fit trains on train; for a multiclass task with num_class =
// len(schema.Classes), its predictions being the class probabilities.
func (a *gbdtAlgo) fit(ctx context.Context, schema schemaSpec, train, valid *data, p *progress, log io.Writer) (*fitResult, error) {
	if a.params.EarlyStoppingRounds > 0 && valid.rows == 0 {
		return nil, badInput("%s: params.early_stopping_rounds needs validation rows, and %s has none", paramsFile, validFile)
	}
	params := a.params
	if params.Objective == gbdt.MultiSoftprob {
		params.NumClass = len(schema.Classes)
		fmt.Fprintf(log, "num_class=%d (the classes of %s), %d trees a round\n", params.NumClass, schemaFile, params.NumClass)
	}
	m, err := gbdt.Train(ctx, &gbdt.Data{X: train.x, Y: train.y}, &gbdt.Data{X: valid.x, Y: valid.y}, params, func(r gbdt.Round) {
		if math.IsNaN(r.Valid) {
			fmt.Fprintf(log, "round %d/%d\n", r.Round+1, r.Rounds)
		} else {
			fmt.Fprintf(log, "round %d/%d: valid %s %.6g (best %.6g at round %d)\n", r.Round+1, r.Rounds, metricName(a.params.Objective), r.Valid, r.Best, r.BestRound+1)
		}
		p.report(10+80*(r.Round+1)/r.Rounds, fmt.Sprintf("tree %d/%d", r.Round+1, r.Rounds))
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, badInput("%w", err)
	}
	if a.params.EarlyStoppingRounds > 0 {
		fmt.Fprintf(log, "early stopping: kept %d trees (best round %d of %d)\n", len(m.Trees), m.BestRound+1, m.Rounds)
	}
	b := m.Booster(schema.Features)
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("the trained model is invalid: %w", err)
	}
	best := m.BestRound
	return &fitResult{
		predict:       func(d *data) []float64 { return predictBooster(b, d) },
		model:         b.MarshalJSON,
		iterations:    m.Rounds,
		bestIteration: &best,
	}, nil
}

// metricName is the validation metric of an objective.
func metricName(objective string) string {
	switch objective {
	case gbdt.BinaryLogistic:
		return "logloss"
	case gbdt.MultiSoftprob:
		return "mlogloss"
	}
	return "rmse"
}

// predictBooster predicts every row of d as the model file does: one
// prediction per row (a probability or a value), or for a multi-class
// model its NumClass class probabilities per row, row-major.
func predictBooster(b *xgbjson.Booster, d *data) []float64 {
	k := b.NumOutputs()
	out := make([]float64, d.rows*k)
	row := make([]float64, len(d.x))
	for i := range d.rows {
		for j, col := range d.x {
			row[j] = col[i]
		}
		if b.Multiclass() {
			b.PredictProba(row, out[i*k:(i+1)*k])
		} else {
			out[i] = b.Predict(row)
		}
	}
	return out
}
