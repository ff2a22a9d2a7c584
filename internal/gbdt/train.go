package gbdt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// Data is a data set: X[j][i] is feature j of row i (NaN when missing) and
// Y[i] the label of row i (0 or 1 for BinaryLogistic, a class index 0 to
// NumClass-1 for MultiSoftprob).
type Data struct {
	X [][]float64
	Y []float64
}

// Rows returns the number of rows.
func (d *Data) Rows() int { return len(d.Y) }

// Round reports one finished boosting round to Train's callback.
type Round struct {
	// Round is the 0-based round index; Rounds the number asked for.
	Round, Rounds int
	// Valid is the validation metric after this round (NaN without
	// validation rows); Best is the best so far and BestRound its round.
	Valid, Best float64
	BestRound   int
}

// rtEps is XGBoost's kRtEps: the smallest loss change that counts as a gain.
const rtEps = 1e-6

// Train fits a model to train. valid (which may be nil or empty) is scored
// after every round for early stopping and the history. onRound, if not
// nil, is called after every round. The result depends only on the data and
// p (not on p.Threads).
//
// For MultiSoftprob every round computes the softmax gradients of every
// class from the margins before the round, g = p_k - [y = k] and h =
// max(2·p_k·(1-p_k), 1e-16) as XGBoost does, and grows one tree per class
// on its class's gradients (each tree drawing its own row and column
// samples); early stopping keeps whole rounds.
func Train(ctx context.Context, train, valid *Data, p Params, onRound func(Round)) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkData("train", train, p); err != nil {
		return nil, err
	}
	n, nf := train.Rows(), len(train.X)
	if n == 0 {
		return nil, errors.New("train: no rows")
	}
	if valid == nil {
		valid = &Data{X: make([][]float64, nf)}
	}
	if len(valid.X) != nf {
		return nil, fmt.Errorf("valid: %d features, train has %d", len(valid.X), nf)
	}
	if err := checkData("valid", valid, p); err != nil {
		return nil, err
	}
	if p.EarlyStoppingRounds > 0 && valid.Rows() == 0 {
		return nil, errors.New("early_stopping_rounds needs validation rows")
	}
	threads := p.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}

	m := &Model{Objective: p.Objective, BaseScore: p.BaseScore, NumFeature: nf, NumClass: p.NumClass, Metric: "rmse"}
	switch p.Objective {
	case BinaryLogistic:
		m.Metric = "logloss"
	case MultiSoftprob:
		m.Metric = "mlogloss"
	}
	if math.IsNaN(m.BaseScore) {
		m.BaseScore = 0.5
		if p.Objective == SquaredError {
			m.BaseScore = mean(train.Y)
		}
	}
	// XGBoost stores base_score as a float32; so does the model file.
	m.BaseScore = float64(float32(m.BaseScore))
	g := &grower{p: p, threads: threads, bins: binData(train.X, p.MaxBin, threads), n: n}
	g.rng = rand.New(rand.NewPCG(p.Seed, 0x6b696c6e67626474)) // "kilngbdt"
	g.rows = make([]int32, n)
	g.gps = make([]gpair32, n)
	g.tmpRows = make([]int32, n)
	g.tmpGps = make([]gpair32, n)
	// One margin per class (one class but for MultiSoftprob), and the
	// gradients of each class.
	k := max(p.NumClass, 1)
	margins := make([][]float64, k)
	vMargins := make([][]float64, k)
	grads := make([][]gpair, k)
	base := m.BaseMargin()
	for c := range k {
		margins[c] = make([]float64, n)
		for i := range margins[c] {
			margins[c][i] = base
		}
		vMargins[c] = make([]float64, valid.Rows())
		for i := range vMargins[c] {
			vMargins[c][i] = base
		}
		grads[c] = make([]gpair, n)
	}
	best, bestRound := math.Inf(1), -1
	for round := range p.NumRound {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.multi() {
			softmaxGradients(train.Y, margins, grads)
		} else {
			g.grad = grads[0]
			g.gradients(train.Y, margins[0])
		}
		for c := range k {
			g.grad = grads[c]
			t := g.grow()
			g.update(t, margins[c])
			m.Trees = append(m.Trees, t.tree)
			if m.multi() {
				m.TreeClass = append(m.TreeClass, c)
			}
		}
		m.Rounds = round + 1
		r := Round{Round: round, Rounds: p.NumRound, Valid: math.NaN(), Best: math.NaN(), BestRound: round}
		if valid.Rows() > 0 {
			for c := range k {
				addTree(&m.Trees[round*k+c], valid.X, vMargins[c])
			}
			var v float64
			if m.multi() {
				v = mlogloss(valid.Y, vMargins)
			} else {
				v = m.metric(valid.Y, vMargins[0])
			}
			m.ValidHistory = append(m.ValidHistory, v)
			if v < best || bestRound < 0 {
				best, bestRound = v, round
			}
			r.Valid, r.Best, r.BestRound = v, best, bestRound
		}
		if onRound != nil {
			onRound(r)
		}
		if p.EarlyStoppingRounds > 0 && round-bestRound >= p.EarlyStoppingRounds {
			break
		}
	}
	if testHookMargins != nil {
		testHookMargins(margins)
	}
	m.BestRound = m.Rounds - 1
	if p.EarlyStoppingRounds > 0 {
		m.BestRound = bestRound
		m.Trees = m.Trees[:(bestRound+1)*k]
		if m.multi() {
			m.TreeClass = m.TreeClass[:(bestRound+1)*k]
		}
	}
	return m, nil
}

// testHookMargins, when set by a test, receives the final training margins
// of every class (one class but for MultiSoftprob).
var testHookMargins func([][]float64)

// checkData checks shapes, infinities and labels.
func checkData(name string, d *Data, p Params) error {
	for j, col := range d.X {
		if len(col) != len(d.Y) {
			return fmt.Errorf("%s: feature %d has %d rows, the labels %d", name, j, len(col), len(d.Y))
		}
		for i, v := range col {
			if math.IsInf(v, 0) {
				return fmt.Errorf("%s: feature %d is infinite in row %d", name, j, i)
			}
		}
	}
	for i, y := range d.Y {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return fmt.Errorf("%s: label of row %d is %v", name, i, y)
		}
		if p.Objective == BinaryLogistic && y != 0 && y != 1 {
			return fmt.Errorf("%s: label of row %d is %v; %s needs 0 or 1", name, i, y, BinaryLogistic)
		}
		if p.Objective == MultiSoftprob && (y != math.Trunc(y) || y < 0 || y >= float64(p.NumClass)) {
			return fmt.Errorf("%s: label of row %d is %v; %s with num_class %d needs a class index from 0 to %d", name, i, y, MultiSoftprob, p.NumClass, p.NumClass-1)
		}
	}
	return nil
}

// metric is the validation metric of margins z against labels y.
func (m *Model) metric(y, z []float64) float64 {
	if m.Objective == BinaryLogistic {
		p := make([]float64, len(z))
		for i, zi := range z {
			p[i] = sigmoid(zi)
		}
		return metrics.LogLoss(y, p)
	}
	var s float64
	for i, zi := range z {
		d := zi - y[i]
		s += d * d
	}
	return math.Sqrt(s / float64(len(z)))
}

// mlogLossEps is XGBoost's floor on the probability of the label in
// mlogloss.
const mlogLossEps = 1e-16

// mlogloss is XGBoost's multi-class validation metric: the mean over rows
// of -log(max(p_y, 1e-16)), p the softmax of the class margins z[k][i]
// and y the label.
func mlogloss(y []float64, z [][]float64) float64 {
	p := make([]float64, len(z))
	var s float64
	for i, yi := range y {
		for c := range z {
			p[c] = z[c][i]
		}
		xgbjson.Softmax(p)
		s -= math.Log(max(p[int(yi)], mlogLossEps))
	}
	return s / float64(len(y))
}

// softmaxGradients sets grads[k][i] to the gradient pair of class k for
// row i: p_k - [y_i = k] and max(2·p_k·(1-p_k), 1e-16), p the softmax of
// the row's margins z[·][i] (XGBoost's multi:softprob gradients).
func softmaxGradients(y []float64, z [][]float64, grads [][]gpair) {
	p := make([]float64, len(z))
	for i, yi := range y {
		for c := range z {
			p[c] = z[c][i]
		}
		xgbjson.Softmax(p)
		label := int(yi)
		for c, pc := range p {
			g := pc
			if c == label {
				g = pc - 1
			}
			grads[c][i] = gpair{g, max(2*pc*(1-pc), 1e-16)}
		}
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// gpair32 is one row's gradient and hessian as float32, as XGBoost keeps
// them: half the memory traffic of float64 when building histograms, which
// still sum in float64.
type gpair32 struct{ g, h float32 }

// gpair is a gradient and hessian (or their sums).
type gpair struct{ g, h float64 }

func (a gpair) add(b gpair) gpair { return gpair{a.g + b.g, a.h + b.h} }
func (a gpair) sub(b gpair) gpair { return gpair{a.g - b.g, a.h - b.h} }

// grower grows trees on binned training data.
type grower struct {
	p       Params
	threads int
	bins    *binned
	n       int
	rng     *rand.Rand

	grad []gpair // per row, this round

	// rows holds the sampled rows of this round, partitioned so that each
	// node's rows are rows[lo:hi] in ascending order; gps[k] is the
	// gradient pair of rows[k]. tmpRows and tmpGps are partition scratch.
	rows, tmpRows []int32
	gps, tmpGps   []gpair32
	nRows         int // len of the sampled prefix of rows
	unsampled     []int32

	free [][]gpair // histogram pool
}

// gradients sets g.grad from labels y and margins z.
func (g *grower) gradients(y, z []float64) {
	if g.p.Objective == BinaryLogistic {
		for i, zi := range z {
			p := sigmoid(zi)
			g.grad[i] = gpair{p - y[i], max(p*(1-p), 1e-16)}
		}
		return
	}
	for i, zi := range z {
		g.grad[i] = gpair{zi - y[i], 1}
	}
}

// tnode is a node while growing.
type tnode struct {
	left, right int32
	feature     int32
	bin         uint16
	cond        float32
	defaultLeft bool
	sum         gpair
	gain        float64
	lo, hi      int
}

// grown is a grown tree and how its leaves partition the sampled rows.
type grown struct {
	tree  Tree
	nodes []tnode // kept nodes, in the tree's order
}

// split is a split candidate.
type split struct {
	gain        float64
	feature     int
	bin         uint16
	defaultLeft bool
	left, right gpair
}

// level is a node being expanded with its histogram.
type level struct {
	id   int32
	hist []gpair
}

// grow grows one tree on the current gradients.
func (g *grower) grow() *grown {
	g.sample()
	feats := g.features()
	var nodes []tnode
	root := tnode{left: -1, right: -1, lo: 0, hi: g.nRows}
	for _, gp := range g.gps[:g.nRows] {
		root.sum = root.sum.add(gpair{float64(gp.g), float64(gp.h)})
	}
	nodes = append(nodes, root)
	cur := []level{{id: 0, hist: g.alloc()}}
	g.build(nodes, cur, feats)
	for depth := 0; depth < g.p.MaxDepth && len(cur) > 0; depth++ {
		// Best split of every node of the level, by (node, feature).
		cands := make([]split, len(cur)*len(feats))
		parallelFor(g.threads, len(cands), func(k int) {
			lv := cur[k/len(feats)]
			cands[k] = g.bestSplit(lv.hist, nodes[lv.id].sum, feats[k%len(feats)])
		})
		var next, small, large []level
		var parents [][]gpair
		var splitting []int
		for i, lv := range cur {
			best := split{feature: -1}
			for _, c := range cands[i*len(feats) : (i+1)*len(feats)] {
				if c.feature >= 0 && c.gain > rtEps && (best.feature < 0 || c.gain > best.gain) {
					best = c
				}
			}
			if best.feature < 0 {
				g.release(lv.hist)
				continue
			}
			nd := &nodes[lv.id]
			nd.feature, nd.bin, nd.defaultLeft, nd.gain = int32(best.feature), best.bin, best.defaultLeft, best.gain
			nd.cond = g.bins.cuts[best.feature][best.bin]
			nd.left, nd.right = int32(len(nodes)), int32(len(nodes)+1)
			nodes = append(nodes, tnode{left: -1, right: -1, sum: best.left}, tnode{left: -1, right: -1, sum: best.right})
			splitting = append(splitting, i)
		}
		// Partition the rows of the splitting nodes.
		parallelFor(g.threads, len(splitting), func(k int) {
			nd := &nodes[cur[splitting[k]].id]
			mid := g.partition(nd.lo, nd.hi, int(nd.feature), nd.bin, nd.defaultLeft)
			l, r := &nodes[nd.left], &nodes[nd.right]
			l.lo, l.hi, r.lo, r.hi = nd.lo, mid, mid, nd.hi
		})
		if depth+1 == g.p.MaxDepth {
			for _, i := range splitting {
				g.release(cur[i].hist)
			}
			break
		}
		// Histograms: build the smaller child's, subtract for the larger.
		for _, i := range splitting {
			nd := nodes[cur[i].id]
			l, r := level{id: nd.left, hist: g.alloc()}, level{id: nd.right, hist: g.alloc()}
			next = append(next, l, r)
			if nodes[l.id].hi-nodes[l.id].lo <= nodes[r.id].hi-nodes[r.id].lo {
				small, large = append(small, l), append(large, r)
			} else {
				small, large = append(small, r), append(large, l)
			}
			parents = append(parents, cur[i].hist)
		}
		g.build(nodes, small, feats)
		parallelFor(g.threads, len(large)*len(feats), func(k int) {
			i, f := k/len(feats), feats[k%len(feats)]
			lo, hi := g.bins.off[f], g.bins.off[f]+len(g.bins.cuts[f])+1
			dst, a, b := large[i].hist[lo:hi], parents[i][lo:hi], small[i].hist[lo:hi]
			for j := range dst {
				dst[j] = a[j].sub(b[j])
			}
		})
		for _, h := range parents {
			g.release(h)
		}
		cur = next
	}
	return g.finish(nodes)
}

// sample fills rows[:nRows] with this round's rows (all of them, or a
// Bernoulli sample of Subsample) and gps with their gradient pairs.
func (g *grower) sample() {
	g.unsampled = g.unsampled[:0]
	k := 0
	for i := range g.n {
		if g.p.Subsample < 1 && g.rng.Float64() >= g.p.Subsample {
			g.unsampled = append(g.unsampled, int32(i))
			continue
		}
		g.rows[k] = int32(i)
		g.gps[k] = gpair32{float32(g.grad[i].g), float32(g.grad[i].h)}
		k++
	}
	g.nRows = k
}

// features returns the features this tree may split on, ascending.
func (g *grower) features() []int {
	nf := len(g.bins.cuts)
	all := make([]int, nf)
	for i := range all {
		all[i] = i
	}
	if g.p.ColsampleByTree >= 1 {
		return all
	}
	k := max(1, int(g.p.ColsampleByTree*float64(nf)))
	g.rng.Shuffle(nf, func(i, j int) { all[i], all[j] = all[j], all[i] })
	all = all[:k]
	slices.Sort(all)
	return all
}

// featureGroup is how many features one histogram task handles: the row
// index and gradient pairs are loaded once per group, and the groups'
// independent histograms keep consecutive updates from waiting on each other.
const featureGroup = 4

// build computes the histograms of the levels' nodes over feats.
func (g *grower) build(nodes []tnode, lvs []level, feats []int) {
	groups := (len(feats) + featureGroup - 1) / featureGroup
	parallelFor(g.threads, len(lvs)*groups, func(k int) {
		lv := lvs[k/groups]
		fs := feats[(k%groups)*featureGroup : min(len(feats), (k%groups+1)*featureGroup)]
		nd := &nodes[lv.id]
		rows := g.rows[nd.lo:nd.hi]
		gps := g.gps[nd.lo:nd.hi]
		gps = gps[:len(rows)]
		hs := make([][]gpair, featureGroup)
		for i, f := range fs {
			hs[i] = lv.hist[g.bins.off[f] : g.bins.off[f]+len(g.bins.cuts[f])+1]
			clear(hs[i])
		}
		if len(fs) < featureGroup {
			for i, f := range fs {
				h, col := hs[i], g.bins.cols[f]
				for j, r := range rows {
					e := &h[col[r]]
					e.g += float64(gps[j].g)
					e.h += float64(gps[j].h)
				}
			}
			return
		}
		h0, h1, h2, h3 := hs[0], hs[1], hs[2], hs[3]
		c0, c1, c2, c3 := g.bins.cols[fs[0]], g.bins.cols[fs[1]], g.bins.cols[fs[2]], g.bins.cols[fs[3]]
		if len(rows) == g.n {
			// Every row, in order (the root without subsampling): read the
			// bins sequentially instead of through the row index.
			c0, c1, c2, c3 = c0[:len(gps)], c1[:len(gps)], c2[:len(gps)], c3[:len(gps)]
			for j, gp32 := range gps {
				gp := gpair{float64(gp32.g), float64(gp32.h)}
				e0 := &h0[c0[j]]
				e1 := &h1[c1[j]]
				e2 := &h2[c2[j]]
				e3 := &h3[c3[j]]
				e0.g += gp.g
				e0.h += gp.h
				e1.g += gp.g
				e1.h += gp.h
				e2.g += gp.g
				e2.h += gp.h
				e3.g += gp.g
				e3.h += gp.h
			}
			return
		}
		for j, r := range rows {
			gp := gpair{float64(gps[j].g), float64(gps[j].h)}
			e0 := &h0[c0[r]]
			e1 := &h1[c1[r]]
			e2 := &h2[c2[r]]
			e3 := &h3[c3[r]]
			e0.g += gp.g
			e0.h += gp.h
			e1.g += gp.g
			e1.h += gp.h
			e2.g += gp.g
			e2.h += gp.h
			e3.g += gp.g
			e3.h += gp.h
		}
	})
}

// bestSplit finds feature f's best split of a node with histogram hist and
// gradient sum sum; feature -1 means none is valid.
func (g *grower) bestSplit(hist []gpair, sum gpair, f int) split {
	best := split{feature: -1}
	nb := len(g.bins.cuts[f])
	if nb == 0 {
		return best
	}
	h := hist[g.bins.off[f] : g.bins.off[f]+nb+1]
	miss := h[nb]
	lambda, mcw := g.p.Lambda, g.p.MinChildWeight
	parent := sum.g * sum.g / (sum.h + lambda)
	try := func(left gpair, b int, defaultLeft bool) {
		right := sum.sub(left)
		if left.h < mcw || right.h < mcw || !(left.h > 0) || !(right.h > 0) {
			return
		}
		gain := left.g*left.g/(left.h+lambda) + right.g*right.g/(right.h+lambda) - parent
		if best.feature < 0 || gain > best.gain {
			best = split{gain: gain, feature: f, bin: uint16(b), defaultLeft: defaultLeft, left: left, right: right}
		}
	}
	// Missing values right: left holds bins 0..b.
	var cum gpair
	for b := range nb {
		cum = cum.add(h[b])
		if h[b].h == 0 && b < nb-1 {
			continue // the same partition as the bin before
		}
		try(cum, b, false)
	}
	// Missing values left, when the node has any.
	if miss.h > 0 {
		cum = miss
		for b := range nb - 1 {
			cum = cum.add(h[b])
			if h[b].h == 0 {
				continue
			}
			try(cum, b, true)
		}
	}
	return best
}

// partition splits rows[lo:hi] (and gps) stably into the rows going left
// and those going right, returning the boundary.
func (g *grower) partition(lo, hi, f int, bin uint16, defaultLeft bool) int {
	col := g.bins.cols[f]
	miss := g.bins.missing(f)
	l, r := lo, lo
	for k := lo; k < hi; k++ {
		row := g.rows[k]
		b := col[row]
		var left bool
		if b == miss {
			left = defaultLeft
		} else {
			left = b <= bin
		}
		if left {
			g.rows[l], g.gps[l] = row, g.gps[k]
			l++
		} else {
			g.tmpRows[r], g.tmpGps[r] = row, g.gps[k]
			r++
		}
	}
	copy(g.rows[l:hi], g.tmpRows[lo:r])
	copy(g.gps[l:hi], g.tmpGps[lo:r])
	return l
}

// finish prunes splits that gain less than Gamma (bottom up, as XGBoost's
// pruner) and lays the tree out in breadth-first order.
func (g *grower) finish(nodes []tnode) *grown {
	if g.p.Gamma > 0 {
		// Children have larger ids than their parent, so one pass in
		// decreasing id order prunes bottom up.
		for i := len(nodes) - 1; i >= 0; i-- {
			nd := &nodes[i]
			if nd.left >= 0 && nodes[nd.left].left < 0 && nodes[nd.right].left < 0 && nd.gain < g.p.Gamma {
				nd.left, nd.right = -1, -1
			}
		}
	}
	out := &grown{}
	t := &out.tree
	queue := []int32{0}
	for len(queue) > 0 {
		nd := nodes[queue[0]]
		queue = queue[1:]
		id := int32(len(out.nodes))
		_ = id
		w := g.weight(nd.sum)
		t.BaseWeight = append(t.BaseWeight, float32(w))
		t.SumHessian = append(t.SumHessian, float32(nd.sum.h))
		if nd.left < 0 {
			t.Left = append(t.Left, -1)
			t.Right = append(t.Right, -1)
			t.Feature = append(t.Feature, 0)
			t.Threshold = append(t.Threshold, float32(g.p.Eta*w))
			t.DefaultLeft = append(t.DefaultLeft, false)
			t.LossChange = append(t.LossChange, 0)
		} else {
			next := int32(len(out.nodes) + len(queue) + 1)
			t.Left = append(t.Left, next)
			t.Right = append(t.Right, next+1)
			t.Feature = append(t.Feature, nd.feature)
			t.Threshold = append(t.Threshold, nd.cond)
			t.DefaultLeft = append(t.DefaultLeft, nd.defaultLeft)
			t.LossChange = append(t.LossChange, float32(nd.gain))
			queue = append(queue, nd.left, nd.right)
		}
		out.nodes = append(out.nodes, nd)
	}
	return out
}

// weight is XGBoost's CalcWeight: -G/(H+λ), or 0 below MinChildWeight.
func (g *grower) weight(s gpair) float64 {
	if s.h < g.p.MinChildWeight || s.h <= 0 {
		return 0
	}
	return -s.g / (s.h + g.p.Lambda)
}

// update adds the tree's leaf values to the training margins: by the
// partition for the sampled rows, by walking the binned tree for the others.
func (g *grower) update(t *grown, margin []float64) {
	for i, nd := range t.nodes {
		if t.tree.Left[i] >= 0 {
			continue
		}
		v := float64(t.tree.Threshold[i])
		for _, r := range g.rows[nd.lo:nd.hi] {
			margin[r] += v
		}
	}
	for _, r := range g.unsampled {
		i := 0
		for t.tree.Left[i] >= 0 {
			nd := t.nodes[i]
			b := g.bins.cols[nd.feature][r]
			var left bool
			if b == g.bins.missing(int(nd.feature)) {
				left = nd.defaultLeft
			} else {
				left = b <= nd.bin
			}
			if left {
				i = int(t.tree.Left[i])
			} else {
				i = int(t.tree.Right[i])
			}
		}
		margin[r] += float64(t.tree.Threshold[i])
	}
}

// alloc returns a histogram from the pool.
func (g *grower) alloc() []gpair {
	if k := len(g.free); k > 0 {
		h := g.free[k-1]
		g.free = g.free[:k-1]
		return h
	}
	return make([]gpair, g.bins.total)
}

// release returns a histogram to the pool.
func (g *grower) release(h []gpair) { g.free = append(g.free, h) }
