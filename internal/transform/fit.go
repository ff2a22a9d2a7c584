package transform

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset/schema"
)

// Recipe is what Fit fits: a preprocess step's target, excluded columns
// and transforms (pipelines.PreprocessConfig.Recipe gives it).
type Recipe struct {
	// Target is the label column.
	Target string
	// Exclude lists columns that are neither features nor target.
	Exclude []string
	// Transforms run in order, fitted on the training rows only.
	Transforms []Spec
}

// Spec is one preprocessing step as a pipeline spec declares it
// (pipelines.Transform is this type). YAML is a one-key mapping, e.g.
// `- impute: {columns: [tenure], strategy: median}`. Kind is that key.
// docs/spec.md documents every kind and option.
type Spec struct {
	// Kind is "impute", "standardize", "minmax", "onehot", "ordinal",
	// "bucketize", "log1p" or "clip".
	Kind string `json:"kind"`
	// Columns the transform applies to; ["*"] means every numeric feature
	// (impute, standardize, minmax, bucketize, log1p, clip) or every string
	// feature (onehot, ordinal).
	Columns []string `json:"columns" yaml:"columns"`
	// Strategy (impute): "mean", "median", "most_frequent" ("mode" is an
	// alias) or "constant". Default "median" for numbers; string columns
	// always use "most_frequent" unless "constant".
	Strategy string `json:"strategy,omitempty" yaml:"strategy"`
	// Value (impute, strategy constant): the fill value, a number or a string.
	Value any `json:"value,omitempty" yaml:"value"`
	// MaxCategories (onehot, ordinal): most frequent categories kept; the
	// rest count as unknown. Default 50.
	MaxCategories int `json:"max_categories,omitempty" yaml:"max_categories"`
	// HandleUnknown (onehot, ordinal): what a category not seen in training
	// (or a null) becomes: "ignore" (onehot: all zeros; ordinal: -1),
	// "error" (applying fails) or "as_category" (its own extra category).
	// Empty means "ignore".
	HandleUnknown string `json:"handle_unknown,omitempty" yaml:"handle_unknown"`
	// Boundaries (bucketize): increasing cut points; x becomes the number of
	// boundaries <= x.
	Boundaries []float64 `json:"boundaries,omitempty" yaml:"boundaries"`
	// Quantiles (bucketize): fit Quantiles-1 boundaries at the training
	// quantiles instead (equal-frequency buckets). Exactly one of
	// Boundaries and Quantiles is set.
	Quantiles int `json:"quantiles,omitempty" yaml:"quantiles"`
	// OnInvalid (log1p): what a value <= -1 (where log1p is not finite)
	// does: "error" (the default, also when empty) or "clip" (it is raised
	// to the smallest training value above -1).
	OnInvalid string `json:"on_invalid,omitempty" yaml:"on_invalid"`
	// Min and Max (clip): fixed bounds; either may be omitted.
	Min *float64 `json:"min,omitempty" yaml:"min"`
	Max *float64 `json:"max,omitempty" yaml:"max"`
	// Percentiles (clip): [low, high] in [0, 100], fitted on the training
	// values instead of Min and Max.
	Percentiles []float64 `json:"percentiles,omitempty" yaml:"percentiles"`
}

// Fit fits cfg.Transforms on the training rows. The features are every
// column of sc except cfg.Target and cfg.Exclude. Numeric columns
// (float64, int64, and bool as 0/1) pass through unless transformed; string
// columns must be one-hot encoded. Transforms run in order, each fitted on
// the output of the ones before it, as a pipeline would be.
//
// Columns ["*"] means every column still numeric (impute, standardize) or
// every string column not yet encoded (onehot). String columns are imputed
// with their most frequent value unless the strategy is "constant".
func Fit(cfg Recipe, sc schema.Schema, train arrow.Record) (*Fitted, error) {
	if train == nil {
		return nil, fmt.Errorf("transform: nil training record")
	}
	inputs, err := selectInputs(cfg, sc)
	if err != nil {
		return nil, err
	}
	fr, err := extractRecord(inputs, train)
	if err != nil {
		return nil, fmt.Errorf("training rows: %w", err)
	}
	idx := make(map[string]int, len(inputs))
	for i, in := range inputs {
		idx[in.Name] = i
	}
	f := &Fitted{Inputs: inputs}
	for ti, t := range cfg.Transforms {
		names, err := resolveColumns(cfg, t, inputs, fr, idx)
		if err != nil {
			return nil, fmt.Errorf("transform: transforms[%d] (%s): %w", ti, t.Kind, err)
		}
		for _, name := range names {
			c := &fr.cols[idx[name]]
			s, err := fitStep(t, name, c)
			if err != nil {
				return nil, fmt.Errorf("transform: transforms[%d] (%s): column %s: %w", ti, t.Kind, name, err)
			}
			if err := checkStep(&s, c.kind); err != nil {
				return nil, fmt.Errorf("transform: transforms[%d] (%s): column %s: %w", ti, t.Kind, name, err)
			}
			if err := applyStep(&s, c, newCategoryLookup(&s)); err != nil {
				return nil, fmt.Errorf("transform: transforms[%d] (%s): column %s: training rows: %w", ti, t.Kind, name, err)
			}
			f.Steps = append(f.Steps, s)
		}
	}
	for i, in := range inputs {
		switch fr.cols[i].kind {
		case kindText:
			return nil, fmt.Errorf("transform: column %s is a string; add it to onehot or exclude it", in.Name)
		case kindNumeric:
			f.Features = append(f.Features, in.Name)
		case kindEncoded:
			for _, c := range fr.cols[i].cats { // includes UnknownCategory
				f.Features = append(f.Features, OnehotFeature(in.Name, c))
			}
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// selectInputs returns the feature columns of schema: all but the target and
// the excluded columns, in schema order.
func selectInputs(cfg Recipe, sc schema.Schema) ([]schema.Field, error) {
	if cfg.Target == "" {
		return nil, fmt.Errorf("transform: no target column")
	}
	if sc.Index(cfg.Target) < 0 {
		return nil, fmt.Errorf("transform: target column %q is not in the dataset (columns: %s)", cfg.Target, strings.Join(sc.Names(), ", "))
	}
	skip := map[string]bool{cfg.Target: true}
	for _, e := range cfg.Exclude {
		if sc.Index(e) < 0 {
			return nil, fmt.Errorf("transform: excluded column %q is not in the dataset", e)
		}
		if e == cfg.Target {
			return nil, fmt.Errorf("transform: column %q is both the target and excluded", e)
		}
		skip[e] = true
	}
	var inputs []schema.Field
	for _, fl := range sc.Fields {
		if skip[fl.Name] {
			continue
		}
		if !isNumeric(fl.Type) && fl.Type != schema.String {
			return nil, fmt.Errorf("transform: column %q has unknown type %q", fl.Name, fl.Type)
		}
		inputs = append(inputs, fl)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("transform: no feature columns (every column is the target or excluded)")
	}
	return inputs, nil
}

// resolveColumns expands a transform's column list against the current
// state of the columns.
func resolveColumns(cfg Recipe, t Spec, inputs []schema.Field, fr *frame, idx map[string]int) ([]string, error) {
	switch t.Kind {
	case KindImpute, KindStandardize, KindOnehot, KindMinMax, KindOrdinal, KindBucketize, KindLog1p, KindClip:
	default:
		return nil, fmt.Errorf("unknown transform %q (want impute, standardize, minmax, onehot, ordinal, bucketize, log1p or clip)", t.Kind)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("no columns")
	}
	if slices.Contains(t.Columns, "*") {
		if len(t.Columns) != 1 {
			return nil, fmt.Errorf(`"*" must be the only column`)
		}
		want := kindNumeric
		if t.Kind == KindOnehot || t.Kind == KindOrdinal {
			want = kindText
		}
		var out []string
		for i, in := range inputs {
			if fr.cols[i].kind == want {
				out = append(out, in.Name)
			}
		}
		return out, nil
	}
	seen := make(map[string]bool, len(t.Columns))
	for _, name := range t.Columns {
		if seen[name] {
			return nil, fmt.Errorf("column %s is listed twice", name)
		}
		seen[name] = true
		if _, ok := idx[name]; ok {
			continue
		}
		switch {
		case name == cfg.Target:
			return nil, fmt.Errorf("column %s is the target", name)
		case slices.Contains(cfg.Exclude, name):
			return nil, fmt.Errorf("column %s is excluded", name)
		}
		return nil, fmt.Errorf("no column %q", name)
	}
	return t.Columns, nil
}

// fitStep fits one transform on one column's training values.
func fitStep(t Spec, name string, c *column) (Step, error) {
	s := Step{Kind: t.Kind, Column: name}
	if c.kind == kindEncoded {
		return s, fmt.Errorf("column is already one-hot encoded")
	}
	switch t.Kind {
	case KindImpute:
		strategy := t.Strategy
		if strategy == StrategyMode {
			strategy = StrategyMostFrequent
		}
		switch strategy {
		case "", StrategyMean, StrategyMedian, StrategyMostFrequent, StrategyConstant:
		default:
			return s, fmt.Errorf("unknown strategy %q (want mean, median, most_frequent or constant)", strategy)
		}
		if c.kind == kindText {
			if strategy != StrategyConstant {
				strategy = StrategyMostFrequent
			}
		} else if strategy == "" {
			strategy = StrategyMedian
		}
		s.Strategy = strategy
		if c.kind == kindText {
			var v string
			if strategy == StrategyConstant {
				str, ok := t.Value.(string)
				if !ok {
					return s, fmt.Errorf("constant value %v for a string column must be a string", t.Value)
				}
				v = str
			} else {
				var ok bool
				if v, ok = mostFrequentString(c.str, c.valid); !ok {
					return s, fmt.Errorf("no non-null values in the training rows")
				}
			}
			s.Text = &v
			return s, nil
		}
		var v float64
		if strategy == StrategyConstant {
			switch x := t.Value.(type) {
			case nil:
				return s, fmt.Errorf("strategy constant needs a value")
			case bool:
				if x {
					v = 1
				}
			default:
				var ok bool
				if v, ok = toFloat(x); !ok {
					return s, fmt.Errorf("constant value %v for a numeric column must be a number", t.Value)
				}
			}
		} else {
			vals := present(c.num)
			if len(vals) == 0 {
				return s, fmt.Errorf("no non-null values in the training rows")
			}
			switch strategy {
			case StrategyMean:
				v = mean(vals)
			case StrategyMedian:
				v = median(vals)
			case StrategyMostFrequent:
				v = mostFrequent(vals)
			default:
				return s, fmt.Errorf("unknown strategy %q (want mean, median, most_frequent or constant)", strategy)
			}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return s, fmt.Errorf("fill value %v is not finite (infinite training values?)", v)
		}
		s.Number = &v
		return s, nil
	case KindStandardize:
		if c.kind != kindNumeric {
			return s, fmt.Errorf("column is a string; standardize applies to numeric columns")
		}
		vals := present(c.num)
		if len(vals) == 0 {
			return s, fmt.Errorf("no non-null values in the training rows")
		}
		m := mean(vals)
		var ss float64
		for _, x := range vals {
			d := x - m
			ss += d * d
		}
		sd := math.Sqrt(ss / float64(len(vals)))
		if math.IsNaN(m) || math.IsInf(m, 0) || math.IsInf(sd, 0) || math.IsNaN(sd) {
			return s, fmt.Errorf("mean %v or std %v is not finite (infinite training values?)", m, sd)
		}
		if sd == 0 {
			sd = 1
		}
		s.Mean, s.Std = m, sd
		return s, nil
	case KindOnehot:
		if c.kind != kindText {
			return s, fmt.Errorf("column is numeric; onehot applies to string columns: to encode its values as categories (codes such as 1, 2, 3), read it as text with the ingest step's schema: {%s: string}", name)
		}
		limit := t.MaxCategories
		if limit == 0 {
			limit = DefaultMaxCategories
		}
		if limit < 0 {
			return s, fmt.Errorf("max_categories %d must be positive", t.MaxCategories)
		}
		s.Categories = topCategories(c.str, c.valid, limit)
		if len(s.Categories) == 0 {
			return s, fmt.Errorf("no non-null values in the training rows")
		}
		s.HandleUnknown = handleUnknown(t.HandleUnknown)
		s.NumericSpellings = anyNumeric(s.Categories)
		return s, nil
	}
	if s.Kind == KindOrdinal || s.Kind == KindMinMax || s.Kind == KindBucketize || s.Kind == KindLog1p || s.Kind == KindClip {
		return fitMore(t, s, c)
	}
	return s, fmt.Errorf("unknown transform %q", t.Kind)
}

// handleUnknown normalises a handle_unknown option: "" is UnknownIgnore, which
// is stored as "" so that fitted transforms without the option keep their
// JSON.
func handleUnknown(h string) string {
	if h == UnknownIgnore {
		return ""
	}
	return h
}

// fitMore fits the transforms added after the first three: ordinal,
// minmax, bucketize, log1p and clip.
func fitMore(t Spec, s Step, c *column) (Step, error) {
	if t.Kind == KindOrdinal {
		if c.kind != kindText {
			return s, fmt.Errorf("column is numeric; ordinal applies to string columns")
		}
		limit := t.MaxCategories
		if limit == 0 {
			limit = DefaultMaxCategories
		}
		if limit < 0 {
			return s, fmt.Errorf("max_categories %d must be positive", t.MaxCategories)
		}
		// The most frequent categories, coded in lexical order.
		s.Categories = topCategories(c.str, c.valid, limit)
		if len(s.Categories) == 0 {
			return s, fmt.Errorf("no non-null values in the training rows")
		}
		sort.Strings(s.Categories)
		s.HandleUnknown = handleUnknown(t.HandleUnknown)
		s.NumericSpellings = anyNumeric(s.Categories)
		return s, nil
	}
	if c.kind != kindNumeric {
		return s, fmt.Errorf("column is a string; %s applies to numeric columns", t.Kind)
	}
	vals := present(c.num)
	if len(vals) == 0 && !(t.Kind == KindBucketize && len(t.Boundaries) > 0) && !(t.Kind == KindClip && len(t.Percentiles) == 0) {
		return s, fmt.Errorf("no non-null values in the training rows")
	}
	switch t.Kind {
	case KindMinMax:
		lo, hi := slices.Min(vals), slices.Max(vals)
		if !finite(lo, hi, hi-lo) {
			return s, fmt.Errorf("min %v or max %v is not finite (infinite training values?)", lo, hi)
		}
		s.Min, s.Range = lo, hi-lo
		if s.Range == 0 {
			s.Range = 1
		}
	case KindBucketize:
		switch {
		case len(t.Boundaries) > 0:
			s.Boundaries = slices.Clone(t.Boundaries)
		case t.Quantiles >= 2:
			sort.Float64s(vals)
			for k := 1; k < t.Quantiles; k++ {
				b := quantileSorted(vals, float64(k)/float64(t.Quantiles))
				if len(s.Boundaries) == 0 || b > s.Boundaries[len(s.Boundaries)-1] {
					s.Boundaries = append(s.Boundaries, b)
				}
			}
		default:
			return s, fmt.Errorf("bucketize needs boundaries or quantiles >= 2")
		}
	case KindLog1p:
		switch t.OnInvalid {
		case "", InvalidError:
			if m := slices.Min(vals); m <= -1 {
				return s, fmt.Errorf("training value %v is <= -1, where log1p is not finite; clip first or set on_invalid: clip", m)
			}
		case InvalidClip:
			low := math.Inf(1)
			for _, x := range vals {
				if x > -1 && x < low {
					low = x
				}
			}
			if math.IsInf(low, 1) {
				return s, fmt.Errorf("no training value above -1 to clip to")
			}
			s.OnInvalid, s.Low = InvalidClip, &low
		default:
			return s, fmt.Errorf("unknown on_invalid %q (want error or clip)", t.OnInvalid)
		}
	case KindClip:
		if len(t.Percentiles) > 0 {
			if len(t.Percentiles) != 2 || t.Percentiles[0] < 0 || t.Percentiles[1] > 100 || t.Percentiles[0] >= t.Percentiles[1] {
				return s, fmt.Errorf("percentiles %v must be [low, high] with 0 <= low < high <= 100", t.Percentiles)
			}
			sort.Float64s(vals)
			lo := quantileSorted(vals, t.Percentiles[0]/100)
			hi := quantileSorted(vals, t.Percentiles[1]/100)
			if !finite(lo, hi) {
				return s, fmt.Errorf("percentile bounds %v and %v are not finite (infinite training values?)", lo, hi)
			}
			s.Low, s.High = &lo, &hi
		} else {
			if t.Min != nil {
				v := *t.Min
				s.Low = &v
			}
			if t.Max != nil {
				v := *t.Max
				s.High = &v
			}
		}
	}
	return s, nil
}

// quantileSorted is the q-quantile of sorted xs (not empty) with linear
// interpolation between order statistics (numpy's default, "linear").
func quantileSorted(xs []float64, q float64) float64 {
	h := float64(len(xs)-1) * q
	lo := int(math.Floor(h))
	if lo >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}

// present returns the non-NaN values of xs.
func present(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if x == x {
			out = append(out, x)
		}
	}
	return out
}

// mean is the arithmetic mean of xs (not empty).
func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// median is the median of xs (not empty), the mean of the two middle values
// for an even count. It sorts xs.
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// mostFrequent is the most frequent value of xs (not empty), the smallest on
// ties. It sorts xs.
func mostFrequent(xs []float64) float64 {
	sort.Float64s(xs)
	best, bestN := xs[0], 0
	for i := 0; i < len(xs); {
		j := i
		for j < len(xs) && xs[j] == xs[i] {
			j++
		}
		if j-i > bestN {
			best, bestN = xs[i], j-i
		}
		i = j
	}
	return best
}

// countStrings counts the present values.
func countStrings(str []string, valid []bool) map[string]int {
	counts := make(map[string]int)
	for i, v := range str {
		if valid == nil || valid[i] {
			counts[v]++
		}
	}
	return counts
}

// topCategories returns at most limit values, most frequent first, ties by
// value. The strings are copied so they do not pin Arrow buffers.
func topCategories(str []string, valid []bool, limit int) []string {
	counts := countStrings(str, valid)
	cats := make([]string, 0, len(counts))
	for v := range counts {
		cats = append(cats, v)
	}
	sort.Slice(cats, func(a, b int) bool {
		if counts[cats[a]] != counts[cats[b]] {
			return counts[cats[a]] > counts[cats[b]]
		}
		return cats[a] < cats[b]
	})
	if len(cats) > limit {
		cats = cats[:limit]
	}
	for i := range cats {
		cats[i] = strings.Clone(cats[i])
	}
	return cats
}

// mostFrequentString is the most frequent present value, the smallest on ties.
func mostFrequentString(str []string, valid []bool) (string, bool) {
	cats := topCategories(str, valid, 1)
	if len(cats) == 0 {
		return "", false
	}
	return cats[0], true
}

// anyNumeric reports whether some category reads as a number: then values
// spelled otherwise ("2" for "2.0") are matched by value.
func anyNumeric(cats []string) bool {
	for _, c := range cats {
		if _, ok := numericCategory(c); ok {
			return true
		}
	}
	return false
}
