// Package gbdt trains histogram gradient-boosted decision trees, the
// algorithm of XGBoost's `hist` tree method, for Kiln's reference trainer.
//
// Training follows XGBoost: each feature is cut into at most MaxBin quantile
// bins (on float32 values, as XGBoost's predictor compares them); every round
// computes first- and second-order gradients of the objective
// (binary:logistic or reg:squarederror) and grows one tree depth-wise to
// MaxDepth. For multi:softprob (NumClass classes K) the model has one
// margin per class, every round computes XGBoost's softmax gradients of
// each class (g = p_k - [y = k], h = max(2·p_k·(1-p_k), 1e-16)) and grows
// K trees, one per class on that class's gradients. A split maximises
//
//	loss_chg = G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ)
//
// subject to both children having a hessian sum of at least MinChildWeight;
// rows whose value is missing (NaN) go to a default direction learned per
// split by trying them on the right and on the left. Leaves get
// eta·(-G/(H+λ)). After a tree is grown, splits whose loss_chg is below Gamma
// and whose children are both leaves are pruned, bottom up, as XGBoost's
// pruner does. With a validation set and EarlyStoppingRounds, training stops
// when the validation metric (logloss, mlogloss or rmse) has not improved for
// that many rounds, and the model keeps the trees up to the best round.
//
// Speed comes from the usual tricks: binned features stored column by column
// as uint16, a row index partitioned in place as nodes split (so a node's rows
// and gradients are contiguous), histograms built only for the smaller child
// of each split while the larger one is the parent's minus the smaller's, and
// histogram building spread over GOMAXPROCS goroutines by (node, feature).
//
// Determinism: every histogram bin is summed in row order by exactly one
// goroutine, split candidates are compared in feature order, and the row and
// column sampling draws from a PCG generator seeded by Params.Seed. The
// result is therefore identical for a given seed whatever the number of
// goroutines.
//
// Split thresholds are float32 bin upper edges, and a row goes left when
// float32(x) < threshold, so the trees can be written in XGBoost's JSON model
// format and predict exactly as they did in training.
package gbdt
