package pipelines

import (
	"math"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// trainParam is one numeric parameter the reference trainer
// (containers/trainer) accepts, with the range it accepts.
type trainParam struct {
	name    string
	aliases []string
	whole   bool    // a whole number
	lo, hi  float64 // bounds, inclusive unless loOpen
	loOpen  bool
}

// describe says what values p accepts, in the trainer's words.
func (p trainParam) describe() string {
	num := "a number"
	if p.whole {
		num = "a whole number"
	}
	switch {
	case math.IsInf(p.hi, 1):
		return num + " >= " + fmtFloat(p.lo)
	case p.loOpen:
		return num + " in (" + fmtFloat(p.lo) + ", " + fmtFloat(p.hi) + "]"
	default:
		return num + " from " + fmtFloat(p.lo) + " to " + fmtFloat(p.hi)
	}
}

// gbdtParams are the parameters of algorithm gbdt (XGBoost's names, with
// aliases), as parseGBDTParams in containers/trainer checks them.
var gbdtParams = []trainParam{
	{name: "n_estimators", aliases: []string{"num_round", "trees"}, whole: true, lo: 1, hi: 100000},
	{name: "learning_rate", aliases: []string{"eta"}, lo: 0, hi: 1, loOpen: true},
	{name: "max_depth", whole: true, lo: 1, hi: 31},
	{name: "lambda", aliases: []string{"reg_lambda"}, lo: 0, hi: math.Inf(1)},
	{name: "gamma", aliases: []string{"min_split_loss"}, lo: 0, hi: math.Inf(1)},
	{name: "min_child_weight", lo: 0, hi: math.Inf(1)},
	{name: "subsample", lo: 0, hi: 1, loOpen: true},
	{name: "colsample_bytree", lo: 0, hi: 1, loOpen: true},
	{name: "max_bin", whole: true, lo: 2, hi: 65535},
	{name: "base_score", lo: -math.MaxFloat32, hi: math.MaxFloat32},
	{name: "early_stopping_rounds", whole: true, lo: 0, hi: 100000},
}

// gbdtObjectives are the objectives algorithm gbdt trains.
var gbdtObjectives = []string{"binary:logistic", "multi:softprob", "reg:squarederror"}

// ridgeParams are the parameters of algorithm ridge.
var ridgeParams = []trainParam{{name: "l2", lo: 0, hi: math.Inf(1)}}

// checkTrainParams checks the params mapping n of a train step of algorithm
// algo against table (and, for gbdt, the string parameter objective) as the
// reference trainer does: known names only, each given once (a name or one
// of its aliases), finite numbers in range. It must only be called once
// d.value has decoded n successfully.
func (d *decoder) checkTrainParams(algo string, table []trainParam, n *yaml.Node, path string) {
	byName := map[string]trainParam{}
	var known []string
	for _, p := range table {
		known = append(known, p.name)
		byName[p.name] = p
		for _, a := range p.aliases {
			byName[a] = p
		}
	}
	if algo == "gbdt" {
		known = append(known, "objective")
	}
	all := make([]string, 0, len(byName)+1)
	for name := range byName {
		all = append(all, name)
	}
	if algo == "gbdt" {
		all = append(all, "objective")
	}
	sort.Strings(all)
	seen := map[string]string{}
	for _, pr := range d.pairs(n, path) {
		k, v := d.deref(pr.key), d.deref(pr.value)
		if k == nil || v == nil {
			continue
		}
		name, vpath := k.Value, joinPath(path, k.Value)
		if algo == "gbdt" && name == "objective" {
			if s, ok := d.scalar(v, vpath, wantString); ok {
				if obj, ok := d.asString(s, vpath); ok && !contains(gbdtObjectives, obj) {
					d.errorf(v, vpath, "unsupported objective %q%s (supported: %s)", obj, didYouMean(obj, gbdtObjectives), quoteList(gbdtObjectives))
				}
			}
			continue
		}
		p, ok := byName[name]
		if !ok {
			if hint := didYouMean(name, all); hint != "" {
				d.errorf(k, vpath, "unknown parameter %q for algorithm %s%s", name, algo, hint)
			} else {
				d.errorf(k, vpath, "unknown parameter %q for algorithm %s (known parameters: %s)", name, algo, quoteList(known))
			}
			continue
		}
		if other, dup := seen[p.name]; dup {
			d.errorf(k, vpath, "%s and %s are the same parameter; give one", other, name)
			continue
		}
		seen[p.name] = name
		s, ok := d.scalar(v, vpath, wantNumber)
		if !ok {
			continue
		}
		x, ok := d.asFloat(s, vpath)
		if !ok {
			continue
		}
		if x < p.lo || x > p.hi || (p.loOpen && x == p.lo) || (p.whole && x != math.Trunc(x)) {
			d.errorf(v, vpath, "%s must be %s, found %s%s", name, p.describe(), s.str, s.origin())
		}
	}
}

// fmtFloat formats x as the shortest decimal.
func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
