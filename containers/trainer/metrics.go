package main

import (
	"math"
	"sort"
)

// logLossEps bounds probabilities away from 0 and 1 in logLoss.
const logLossEps = 1e-15

// logLoss is the mean binary cross-entropy of probabilities p for 0/1
// labels y, with p clipped to [eps, 1-eps].
func logLoss(y, p []float64) float64 {
	var s float64
	for i, pi := range p {
		pi = math.Min(math.Max(pi, logLossEps), 1-logLossEps)
		if y[i] == 1 {
			s -= math.Log(pi)
		} else {
			s -= math.Log1p(-pi)
		}
	}
	return s / float64(len(p))
}

// rocAUC is the area under the ROC curve of scores p for 0/1 labels y: the
// probability that a random positive scores above a random negative, ties
// counting one half (the Mann-Whitney statistic with average ranks). ok is
// false when y has a single class.
func rocAUC(y, p []float64) (auc float64, ok bool) {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && p[idx[j]] == p[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if y[idx[k]] == 1 {
				pos++
				rankSum += avg
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg), true
}
