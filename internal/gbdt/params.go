package gbdt

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// Objectives.
const (
	// BinaryLogistic is logistic regression for 0/1 labels; the model's
	// margin is the log-odds.
	BinaryLogistic = "binary:logistic"
	// SquaredError is regression with squared loss; the margin is the value.
	SquaredError = "reg:squarederror"
	// MultiSoftprob is multi-class classification for labels 0..NumClass-1:
	// the model has one margin per class and the class probabilities are
	// their softmax. Each round grows one tree per class.
	MultiSoftprob = "multi:softprob"
)

// Params are the training parameters. The zero value is not valid: start
// from DefaultParams.
type Params struct {
	// Objective is BinaryLogistic, SquaredError or MultiSoftprob.
	Objective string
	// NumClass is the number of classes K for MultiSoftprob, 2 to
	// xgbjson.MaxNumClass; it must be 0 for the other objectives.
	// DefaultParams leaves it 0: multi-class training must set it.
	NumClass int
	// NumRound is the number of boosting rounds (trees). Default 100.
	NumRound int
	// Eta is the learning rate (shrinkage), in (0, 1]. Default 0.3.
	Eta float64
	// MaxDepth is the maximum tree depth, 1 to 31. Default 6.
	MaxDepth int
	// Lambda is the L2 regularisation of leaf weights, >= 0. Default 1.
	Lambda float64
	// Gamma is the minimum loss reduction a split must bring, >= 0. Default 0.
	Gamma float64
	// MinChildWeight is the minimum hessian sum of a child, >= 0. Default 1.
	MinChildWeight float64
	// Subsample is the fraction of rows each tree is grown on, in (0, 1].
	// Default 1.
	Subsample float64
	// ColsampleByTree is the fraction of features each tree may split on,
	// in (0, 1]. Default 1.
	ColsampleByTree float64
	// MaxBin is the maximum number of bins per feature, 2 to 65535. Default 256.
	MaxBin int
	// BaseScore is the initial prediction: a probability in (0, 1) for
	// BinaryLogistic, a value for SquaredError, the initial margin of every
	// class for MultiSoftprob (it cancels in the softmax). NaN means the
	// default: 0.5 for BinaryLogistic and MultiSoftprob, the mean label for
	// SquaredError. It is rounded to float32, as XGBoost stores it.
	BaseScore float64
	// EarlyStoppingRounds stops training when the validation metric has not
	// improved for this many rounds; 0 disables early stopping. It needs
	// validation rows.
	EarlyStoppingRounds int
	// Seed drives row and column sampling.
	Seed uint64
	// Threads is the number of goroutines; 0 means GOMAXPROCS. The result
	// does not depend on it.
	Threads int
}

// DefaultParams returns XGBoost's defaults for objective. For
// MultiSoftprob set NumClass too.
func DefaultParams(objective string) Params {
	return Params{
		Objective:       objective,
		NumRound:        100,
		Eta:             0.3,
		MaxDepth:        6,
		Lambda:          1,
		MinChildWeight:  1,
		Subsample:       1,
		ColsampleByTree: 1,
		MaxBin:          256,
		BaseScore:       math.NaN(),
	}
}

// Validate reports the first invalid parameter, naming it as in params.json.
func (p *Params) Validate() error {
	switch {
	case p.Objective != BinaryLogistic && p.Objective != SquaredError && p.Objective != MultiSoftprob:
		return fmt.Errorf("objective %q is not supported (want %q, %q or %q)", p.Objective, BinaryLogistic, SquaredError, MultiSoftprob)
	case p.Objective == MultiSoftprob && (p.NumClass < 2 || p.NumClass > xgbjson.MaxNumClass):
		return fmt.Errorf("num_class must be from 2 to %d for %s, got %d", xgbjson.MaxNumClass, MultiSoftprob, p.NumClass)
	case p.Objective != MultiSoftprob && p.NumClass != 0:
		return fmt.Errorf("num_class is for %s only, got %d for %s", MultiSoftprob, p.NumClass, p.Objective)
	case p.NumRound < 1:
		return fmt.Errorf("n_estimators must be at least 1, got %d", p.NumRound)
	case !(p.Eta > 0 && p.Eta <= 1):
		return fmt.Errorf("learning_rate must be in (0, 1], got %v", p.Eta)
	case p.MaxDepth < 1 || p.MaxDepth > 31:
		return fmt.Errorf("max_depth must be from 1 to 31, got %d", p.MaxDepth)
	case !(p.Lambda >= 0) || math.IsInf(p.Lambda, 0):
		return fmt.Errorf("lambda must be a finite number >= 0, got %v", p.Lambda)
	case !(p.Gamma >= 0) || math.IsInf(p.Gamma, 0):
		return fmt.Errorf("gamma must be a finite number >= 0, got %v", p.Gamma)
	case !(p.MinChildWeight >= 0) || math.IsInf(p.MinChildWeight, 0):
		return fmt.Errorf("min_child_weight must be a finite number >= 0, got %v", p.MinChildWeight)
	case !(p.Subsample > 0 && p.Subsample <= 1):
		return fmt.Errorf("subsample must be in (0, 1], got %v", p.Subsample)
	case !(p.ColsampleByTree > 0 && p.ColsampleByTree <= 1):
		return fmt.Errorf("colsample_bytree must be in (0, 1], got %v", p.ColsampleByTree)
	case p.MaxBin < 2 || p.MaxBin > 65535:
		return fmt.Errorf("max_bin must be from 2 to 65535, got %d", p.MaxBin)
	case p.EarlyStoppingRounds < 0:
		return fmt.Errorf("early_stopping_rounds must be >= 0, got %d", p.EarlyStoppingRounds)
	case p.Threads < 0:
		return fmt.Errorf("threads must be >= 0, got %d", p.Threads)
	case math.IsInf(p.BaseScore, 0):
		return fmt.Errorf("base_score must be finite, got %v", p.BaseScore)
	case p.Objective == BinaryLogistic && !math.IsNaN(p.BaseScore) && !(p.BaseScore > 0 && p.BaseScore < 1):
		return fmt.Errorf("base_score must be a probability in (0, 1) for %s, got %v", BinaryLogistic, p.BaseScore)
	}
	return nil
}
