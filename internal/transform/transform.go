// Package transform fits Kiln's preprocessing (imputation, standardisation,
// min-max scaling, one-hot and ordinal encoding, bucketizing, log1p and
// clipping) on training rows and applies it, unchanged, wherever the
// model is used. The fitted result, Fitted, is plain JSON stored in the model
// bundle, so training, batch scoring and serving all run the exact same code
// on the exact same parameters.
//
// Apply works column by column on Arrow records (batch scoring); ApplyRows
// converts decoded JSON rows (serving) into the same column form and then runs
// the same code, so both give bit-identical features for the same values.
package transform

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset/schema"
	"github.com/kiln-ml/kiln/internal/detmath"
)

// Transform kinds, as in pipelines.Transform.Kind.
const (
	KindImpute      = "impute"
	KindStandardize = "standardize"
	KindOnehot      = "onehot"
	KindMinMax      = "minmax"
	KindOrdinal     = "ordinal"
	KindBucketize   = "bucketize"
	KindLog1p       = "log1p"
	KindClip        = "clip"
)

// HandleUnknown values (onehot, ordinal), as in pipelines.Transform: what a
// category not among the fitted ones (or a null) becomes.
const (
	// UnknownIgnore (also the empty string): onehot all zeros, ordinal -1.
	UnknownIgnore = "ignore"
	// UnknownError: applying the transform fails, naming row and column.
	UnknownError = "error"
	// UnknownAsCategory: onehot sets the extra feature "column=__unknown__";
	// ordinal gives the code len(Categories).
	UnknownAsCategory = "as_category"
)

// UnknownCategory is the category name of the extra one-hot feature of
// handle_unknown: as_category.
const UnknownCategory = "__unknown__"

// OnInvalid values (log1p) for values <= -1.
const (
	// InvalidError (also the empty string): applying the transform fails.
	InvalidError = "error"
	// InvalidClip: the value is raised to Step.Low, the smallest training
	// value above -1, before log1p.
	InvalidClip = "clip"
)

// Impute strategies, as in pipelines.Transform.Strategy.
const (
	StrategyMean         = "mean"
	StrategyMedian       = "median"
	StrategyMostFrequent = "most_frequent"
	StrategyConstant     = "constant"
	// StrategyMode is an alias of StrategyMostFrequent.
	StrategyMode = "mode"
)

// DefaultMaxCategories is the number of categories onehot keeps when
// pipelines.Transform.MaxCategories is 0.
const DefaultMaxCategories = 50

// Fitted is preprocessing fitted on training rows. It is JSON-serialisable
// and stored in the model bundle's manifest.
type Fitted struct {
	// Inputs are the raw columns a request or batch must provide, in order:
	// every dataset column except the target and the excluded ones.
	Inputs []schema.Field `json:"inputs"`
	// Steps are the fitted per-column operations, in the order they run.
	Steps []Step `json:"steps"`
	// Features are the output feature names, in order: the inputs in input
	// order, each numeric input as itself and each one-hot encoded input
	// as one "column=category" feature per category.
	Features []string `json:"features"`
}

// Step is one fitted operation on one column. Which fields are set depends
// on Kind.
type Step struct {
	// Kind is KindImpute, KindStandardize or KindOnehot.
	Kind string `json:"kind"`
	// Column is the input column the step works on.
	Column string `json:"column"`

	// Strategy (impute) records how the fill value was chosen.
	Strategy string `json:"strategy,omitempty"`
	// Number (impute, numeric columns) replaces nulls and NaN.
	Number *float64 `json:"number,omitempty"`
	// Text (impute, string columns) replaces nulls.
	Text *string `json:"text,omitempty"`

	// Mean and Std (standardize): x becomes (x-Mean)/Std. Std is the
	// population standard deviation of the training values, 1 when that is 0.
	Mean float64 `json:"mean,omitempty"`
	Std  float64 `json:"std,omitempty"`

	// Categories (onehot), most frequent first: category k of Column becomes
	// the feature "Column=Categories[k]". Other values and nulls are
	// unknown and handled as HandleUnknown says (all zeros by default).
	// Categories (ordinal), in lexical order: category k becomes the number
	// k; unknown values and nulls become -1 by default.
	Categories []string `json:"categories,omitempty"`
	// HandleUnknown (onehot, ordinal): "" or UnknownIgnore, UnknownError
	// or UnknownAsCategory.
	HandleUnknown string `json:"handle_unknown,omitempty"`
	// NumericSpellings (onehot, ordinal) records that some categories read
	// as numbers ("2.0", "10"): a value that matches no category as written
	// but equals such a category as a number ("2", "2.00", or a JSON number
	// 2 sent for this string column) is that category, and is reported
	// (Matrix.Respelled). Bundles written before it read values as written.
	NumericSpellings bool `json:"numeric_spellings,omitempty"`

	// Min and Range (minmax): x becomes (x-Min)/Range. Range is max-min of
	// the training values, 1 when that is 0.
	Min   float64 `json:"min,omitempty"`
	Range float64 `json:"range,omitempty"`

	// Boundaries (bucketize), strictly increasing: x becomes the number of
	// boundaries <= x (0 .. len(Boundaries)); NaN stays NaN.
	Boundaries []float64 `json:"boundaries,omitempty"`

	// OnInvalid (log1p): "" or InvalidError, or InvalidClip.
	OnInvalid string `json:"on_invalid,omitempty"`
	// Low and High (clip): x becomes max(Low, min(High, x)); a nil bound is
	// not applied. Low (log1p with InvalidClip): values <= -1 become Low.
	Low  *float64 `json:"low,omitempty"`
	High *float64 `json:"high,omitempty"`
}

// encodedCategories returns the categories a checked onehot step encodes
// into features, including UnknownCategory for UnknownAsCategory.
func encodedCategories(s *Step) []string {
	if s.HandleUnknown == UnknownAsCategory {
		return append(slices.Clip(s.Categories), UnknownCategory)
	}
	return s.Categories
}

// Matrix is a dense, column-major feature matrix: Cols[j][i] is feature j of
// row i. NaN marks a missing numeric value that no step imputed.
type Matrix struct {
	// Rows is the number of rows; every column has this length.
	Rows int
	// Features names the columns, in order. It may share its backing array
	// with Fitted.Features and must not be modified.
	Features []string
	// Cols holds one slice per feature.
	Cols [][]float64
	// Respelled lists the values of string columns read as a
	// numeric-looking category by value (Step.NumericSpellings), per
	// column and value; nil when none.
	Respelled []Respelling
}

// FeatureIndex returns the position of the named output feature, or -1.
func (f *Fitted) FeatureIndex(name string) int {
	for i, n := range f.Features {
		if n == name {
			return i
		}
	}
	return -1
}

// OnehotFeature is the name of the feature that one-hot encodes category of
// column: "column=category".
func OnehotFeature(column, category string) string { return column + "=" + category }

// isNumeric reports whether t is fed to estimators as a number
// (bools as 0/1).
func isNumeric(t schema.Type) bool {
	return t == schema.Float64 || t == schema.Int64 || t == schema.Bool
}

// kind is a working column's state while steps run.
type kind uint8

const (
	kindNumeric kind = iota // a []float64, NaN for missing
	kindText                // strings with a validity mask
	kindEncoded             // replaced by its one-hot columns
)

// column is one input column while steps run over it.
type column struct {
	kind  kind
	num   []float64   // kindNumeric
	str   []string    // kindText
	valid []bool      // kindText; nil means every value is present
	enc   [][]float64 // kindEncoded: one column per category
	cats  []string    // kindEncoded: the categories, in enc order
	// respelled counts the values a step read as a numeric-looking
	// category by value (Step.NumericSpellings).
	respelled []Respelling
}

// Respelling is a value of a string column that matched no category as
// written and was read as the category with the same numeric value.
type Respelling struct {
	Column   string `json:"column"`
	Value    string `json:"value"`
	Category string `json:"category"`
	// Rows is how many rows of the batch held Value.
	Rows int `json:"rows"`
}

// frame holds the input columns of a batch while steps run over it.
type frame struct {
	rows int
	cols []column
}

// inputIndex maps input names to their position.
func (f *Fitted) inputIndex() map[string]int {
	idx := make(map[string]int, len(f.Inputs))
	for i, in := range f.Inputs {
		idx[in.Name] = i
	}
	return idx
}

// Validate checks that f is consistent: unique, typed inputs; steps that
// name inputs of a suitable kind in a suitable order with finite parameters;
// no string input left without one-hot encoding; and Features equal to the
// features the steps produce. Model loading calls it on decoded bundles.
func (f *Fitted) Validate() error {
	if len(f.Inputs) == 0 {
		return fmt.Errorf("transform: no inputs")
	}
	kinds := make([]kind, len(f.Inputs))
	idx := make(map[string]int, len(f.Inputs))
	for i, in := range f.Inputs {
		if in.Name == "" {
			return fmt.Errorf("transform: inputs[%d] has no name", i)
		}
		if _, dup := idx[in.Name]; dup {
			return fmt.Errorf("transform: input %q is listed twice", in.Name)
		}
		idx[in.Name] = i
		switch {
		case isNumeric(in.Type):
			kinds[i] = kindNumeric
		case in.Type == schema.String:
			kinds[i] = kindText
		default:
			return fmt.Errorf("transform: input %q has unknown type %q", in.Name, in.Type)
		}
	}
	cats := make([][]string, len(f.Inputs))
	for si := range f.Steps {
		s := &f.Steps[si]
		i, ok := idx[s.Column]
		if !ok {
			return fmt.Errorf("transform: steps[%d] (%s): no input column %q", si, s.Kind, s.Column)
		}
		if err := checkStep(s, kinds[i]); err != nil {
			return fmt.Errorf("transform: steps[%d] (%s %s): %w", si, s.Kind, s.Column, err)
		}
		kinds[i] = nextKind(s, kinds[i])
		if s.Kind == KindOnehot {
			cats[i] = encodedCategories(s)
		}
	}
	var want []string
	for i, in := range f.Inputs {
		switch kinds[i] {
		case kindText:
			return fmt.Errorf("transform: column %s is a string; add it to onehot or exclude it", in.Name)
		case kindNumeric:
			want = append(want, in.Name)
		case kindEncoded:
			for _, c := range cats[i] {
				want = append(want, OnehotFeature(in.Name, c))
			}
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("transform: no features")
	}
	seen := make(map[string]bool, len(want))
	for _, n := range want {
		if seen[n] {
			return fmt.Errorf("transform: feature name %q occurs twice (a column and a one-hot category collide)", n)
		}
		seen[n] = true
	}
	if len(want) != len(f.Features) {
		return fmt.Errorf("transform: features lists %d names but the steps produce %d", len(f.Features), len(want))
	}
	for j := range want {
		if want[j] != f.Features[j] {
			return fmt.Errorf("transform: features[%d] is %q but the steps produce %q", j, f.Features[j], want[j])
		}
	}
	return nil
}

// nextKind is the kind of a column after the checked step s ran on it.
func nextKind(s *Step, k kind) kind {
	switch s.Kind {
	case KindOnehot:
		return kindEncoded
	case KindOrdinal:
		return kindNumeric
	}
	return k
}

// finite reports whether every x is neither NaN nor ±Inf.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// checkStep checks one step against the current kind of its column.
func checkStep(s *Step, k kind) error {
	if k == kindEncoded {
		return fmt.Errorf("column is already one-hot encoded")
	}
	numeric := func() error {
		if k != kindNumeric {
			return fmt.Errorf("column is a string; %s applies to numeric columns", s.Kind)
		}
		return nil
	}
	switch s.Kind {
	case KindImpute:
		if k == kindNumeric {
			if s.Number == nil || s.Text != nil {
				return fmt.Errorf("a numeric column needs a numeric fill value")
			}
			if !finite(*s.Number) {
				return fmt.Errorf("fill value %v is not finite", *s.Number)
			}
		} else if s.Text == nil || s.Number != nil {
			return fmt.Errorf("a string column needs a string fill value")
		}
	case KindStandardize:
		if err := numeric(); err != nil {
			return err
		}
		if !finite(s.Mean, s.Std) || s.Std <= 0 {
			return fmt.Errorf("mean %v and std %v must be finite with std > 0", s.Mean, s.Std)
		}
	case KindMinMax:
		if err := numeric(); err != nil {
			return err
		}
		if !finite(s.Min, s.Range) || s.Range <= 0 {
			return fmt.Errorf("min %v and range %v must be finite with range > 0", s.Min, s.Range)
		}
	case KindBucketize:
		if err := numeric(); err != nil {
			return err
		}
		if len(s.Boundaries) == 0 {
			return fmt.Errorf("no boundaries")
		}
		for i, b := range s.Boundaries {
			if !finite(b) {
				return fmt.Errorf("boundary %v is not finite", b)
			}
			if i > 0 && b <= s.Boundaries[i-1] {
				return fmt.Errorf("boundaries are not strictly increasing: %v follows %v", b, s.Boundaries[i-1])
			}
		}
	case KindLog1p:
		if err := numeric(); err != nil {
			return err
		}
		switch s.OnInvalid {
		case "", InvalidError:
		case InvalidClip:
			if s.Low == nil || !finite(*s.Low) || *s.Low <= -1 {
				return fmt.Errorf("on_invalid clip needs a finite low bound above -1")
			}
		default:
			return fmt.Errorf("unknown on_invalid %q (want error or clip)", s.OnInvalid)
		}
	case KindClip:
		if err := numeric(); err != nil {
			return err
		}
		if s.Low == nil && s.High == nil {
			return fmt.Errorf("no bounds")
		}
		if (s.Low != nil && !finite(*s.Low)) || (s.High != nil && !finite(*s.High)) {
			return fmt.Errorf("bounds must be finite")
		}
		if s.Low != nil && s.High != nil && *s.Low > *s.High {
			return fmt.Errorf("low %v is above high %v", *s.Low, *s.High)
		}
	case KindOnehot, KindOrdinal:
		if k != kindText {
			return fmt.Errorf("column is numeric; %s applies to string columns", s.Kind)
		}
		if len(s.Categories) == 0 {
			return fmt.Errorf("no categories")
		}
		seen := make(map[string]bool, len(s.Categories))
		for _, c := range s.Categories {
			if seen[c] {
				return fmt.Errorf("category %q is listed twice", c)
			}
			seen[c] = true
		}
		switch s.HandleUnknown {
		case "", UnknownIgnore, UnknownError, UnknownAsCategory:
		default:
			return fmt.Errorf("unknown handle_unknown %q (want ignore, error or as_category)", s.HandleUnknown)
		}
	default:
		return fmt.Errorf("unknown kind %q (want impute, standardize, minmax, onehot, ordinal, bucketize, log1p or clip)", s.Kind)
	}
	return nil
}

// Apply transforms a batch into the feature matrix. rec must hold every
// input column (by name, any order; other columns are ignored) with a
// compatible type: float64 or int64 for numeric inputs, bool for bool inputs,
// utf8 for string inputs.
//
// Numeric columns are built a block of rows at a time: the block is read
// from Arrow and every step on the column runs over it while it is in cache.
func (f *Fitted) Apply(rec arrow.Record) (*Matrix, error) {
	if rec == nil {
		return nil, fmt.Errorf("transform: nil record")
	}
	ops, err := f.plan()
	if err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	fr := &frame{rows: n, cols: make([]column, len(f.Inputs))}
	for i, in := range f.Inputs {
		arr, err := inputArray(rec, in.Name)
		if err != nil {
			return nil, err
		}
		if fr.cols[i], err = arrowColumn(in, arr, n, ops[i]); err != nil {
			return nil, err
		}
	}
	return f.assemble(fr)
}

// ApplyRows transforms decoded JSON rows into the feature matrix. A value is
// float64 (or any Go integer or float type, or json.Number) for numeric
// inputs, bool for bool inputs, string for string inputs, or nil; a missing
// key means null and keys that are not inputs are ignored. A value of the
// wrong type is an error naming the row index and the column.
func (f *Fitted) ApplyRows(rows []map[string]any) (*Matrix, error) {
	ops, err := f.plan()
	if err != nil {
		return nil, err
	}
	fr := &frame{rows: len(rows), cols: make([]column, len(f.Inputs))}
	for i, in := range f.Inputs {
		if fr.cols[i], err = rowsColumn(in, rows, ops[i]); err != nil {
			return nil, err
		}
	}
	return f.assemble(fr)
}

// plan checks the steps against the inputs, in order, and groups them by
// input column. Steps on different columns are independent, so running
// each column's steps in order gives the same result as running all steps
// in order.
func (f *Fitted) plan() ([][]*Step, error) {
	idx := f.inputIndex()
	kinds := make([]kind, len(f.Inputs))
	for i, in := range f.Inputs {
		switch {
		case isNumeric(in.Type):
			kinds[i] = kindNumeric
		case in.Type == schema.String:
			kinds[i] = kindText
		default:
			return nil, fmt.Errorf("transform: input %q has unknown type %q", in.Name, in.Type)
		}
	}
	ops := make([][]*Step, len(f.Inputs))
	for si := range f.Steps {
		s := &f.Steps[si]
		i, ok := idx[s.Column]
		if !ok {
			return nil, fmt.Errorf("transform: steps[%d] (%s): no input column %q", si, s.Kind, s.Column)
		}
		if err := checkStep(s, kinds[i]); err != nil {
			return nil, fmt.Errorf("transform: steps[%d] (%s %s): %w", si, s.Kind, s.Column, err)
		}
		kinds[i] = nextKind(s, kinds[i])
		ops[i] = append(ops[i], s)
	}
	return ops, nil
}

// block is how many rows a numeric column is built in at a time.
const block = 2048

// numericColumn builds a numeric column of n rows block by block: load
// fills dst with the raw values of rows lo..lo+len(dst) (NaN for null), then
// the column's steps run over the block.
func numericColumn(name string, n int, ops []*Step, load func(dst []float64, lo int) error) (column, error) {
	out := make([]float64, n)
	for lo := 0; lo < n; lo += block {
		dst := out[lo:min(lo+block, n)]
		if err := load(dst, lo); err != nil {
			return column{}, err
		}
		for _, s := range ops {
			if err := applyNumeric(s, dst, lo); err != nil {
				return column{}, fmt.Errorf("transform: %s %s: %w", s.Kind, name, err)
			}
		}
	}
	return column{kind: kindNumeric, num: out}, nil
}

// textColumn runs the steps of a string column (impute, then onehot or
// ordinal, then numeric steps after ordinal).
func textColumn(name string, str []string, valid []bool, ops []*Step) (column, error) {
	c := column{kind: kindText, str: str, valid: valid}
	for _, s := range ops {
		if err := applyStep(s, &c, newCategoryLookup(s)); err != nil {
			return column{}, fmt.Errorf("transform: %s %s: %w", s.Kind, name, err)
		}
	}
	return c, nil
}

// categoryLookup finds the category of a value: as written, or, for a
// step with NumericSpellings, by numeric value.
type categoryLookup struct {
	exact   map[string]int
	numeric map[float64]int
}

// newCategoryLookup indexes s's categories.
func newCategoryLookup(s *Step) categoryLookup {
	l := categoryLookup{}
	if len(s.Categories) == 0 {
		return l
	}
	l.exact = make(map[string]int, len(s.Categories))
	for k, c := range s.Categories {
		l.exact[c] = k
		if !s.NumericSpellings {
			continue
		}
		if x, ok := numericCategory(c); ok {
			if l.numeric == nil {
				l.numeric = map[float64]int{}
			}
			if _, dup := l.numeric[x]; !dup {
				l.numeric[x] = k // the first (for onehot, most frequent) spelling
			}
		}
	}
	return l
}

// find returns v's category; respelled is true when v matched by value.
func (l categoryLookup) find(v string) (k int, respelled, ok bool) {
	if k, ok := l.exact[v]; ok {
		return k, false, true
	}
	if l.numeric != nil {
		if x, isNum := numericCategory(v); isNum {
			if k, ok := l.numeric[x]; ok {
				return k, true, true
			}
		}
	}
	return 0, false, false
}

// numericCategory reads a category that looks like a finite number.
func numericCategory(s string) (float64, bool) {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return x, err == nil && !math.IsInf(x, 0) && !math.IsNaN(x)
}

// countRespelling adds one row of value v read as category cat.
func (c *column) countRespelling(name, v, cat string) {
	for i := range c.respelled {
		if r := &c.respelled[i]; r.Value == v && r.Column == name {
			r.Rows++
			return
		}
	}
	c.respelled = append(c.respelled, Respelling{Column: name, Value: v, Category: cat, Rows: 1})
}

// applyNumeric runs a checked numeric step over xs in place; xs holds rows
// lo.. of the batch (for error messages, which count rows from 0).
func applyNumeric(s *Step, xs []float64, lo int) error {
	switch s.Kind {
	case KindImpute:
		fill := *s.Number
		for i, x := range xs {
			if x != x { // NaN
				xs[i] = fill
			}
		}
	case KindStandardize:
		mean, std := s.Mean, s.Std
		for i, x := range xs {
			xs[i] = (x - mean) / std
		}
	case KindMinMax:
		m, r := s.Min, s.Range
		for i, x := range xs {
			xs[i] = (x - m) / r
		}
	case KindBucketize:
		b := s.Boundaries
		for i, x := range xs {
			if x != x {
				continue
			}
			// The number of boundaries <= x.
			xs[i] = float64(sort.Search(len(b), func(k int) bool { return b[k] > x }))
		}
	case KindLog1p:
		clip := s.OnInvalid == InvalidClip
		for i, x := range xs {
			if x <= -1 {
				if !clip {
					return fmt.Errorf("row %d: value %v is <= -1, where log1p is not finite (on_invalid: error)", lo+i, x)
				}
				x = *s.Low
			}
			xs[i] = detmath.Log1p(x) // the same bits on every CPU (package detmath)
		}
	case KindClip:
		lowV, highV := math.Inf(-1), math.Inf(1)
		if s.Low != nil {
			lowV = *s.Low
		}
		if s.High != nil {
			highV = *s.High
		}
		for i, x := range xs {
			if x < lowV {
				xs[i] = lowV
			} else if x > highV {
				xs[i] = highV
			}
		}
	}
	return nil
}

// applyStep runs one checked step over c in place. Rows count from 0.
func applyStep(s *Step, c *column, cats categoryLookup) error {
	if c.kind == kindNumeric {
		return applyNumeric(s, c.num, 0)
	}
	unknown := func(i int) error {
		if c.valid != nil && !c.valid[i] {
			return fmt.Errorf("row %d: null value (handle_unknown: error; impute the column first)", i)
		}
		v := c.str[i]
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Errorf("row %d: unknown category %q (handle_unknown: error)", i, v)
	}
	switch s.Kind {
	case KindImpute:
		if c.valid != nil {
			for i, ok := range c.valid {
				if !ok {
					c.str[i] = *s.Text
				}
			}
			c.valid = nil
		}
	case KindOnehot:
		n := len(c.str)
		names := encodedCategories(s)
		backing := make([]float64, n*len(names))
		enc := make([][]float64, len(names))
		for k := range enc {
			enc[k] = backing[k*n : (k+1)*n : (k+1)*n]
		}
		for i, v := range c.str {
			k, re, ok := cats.find(v)
			if c.valid != nil && !c.valid[i] {
				ok = false
			}
			if ok {
				if re {
					c.countRespelling(s.Column, v, s.Categories[k])
				}
				enc[k][i] = 1
				continue
			}
			switch s.HandleUnknown {
			case UnknownError:
				return unknown(i)
			case UnknownAsCategory:
				enc[len(s.Categories)][i] = 1
			}
		}
		*c = column{kind: kindEncoded, enc: enc, cats: names, respelled: c.respelled}
	case KindOrdinal:
		num := make([]float64, len(c.str))
		other := -1.0
		if s.HandleUnknown == UnknownAsCategory {
			other = float64(len(s.Categories))
		}
		for i, v := range c.str {
			k, re, ok := cats.find(v)
			if c.valid != nil && !c.valid[i] {
				ok = false
			}
			if ok {
				if re {
					c.countRespelling(s.Column, v, s.Categories[k])
				}
				num[i] = float64(k)
				continue
			}
			if s.HandleUnknown == UnknownError {
				return unknown(i)
			}
			num[i] = other
		}
		*c = column{kind: kindNumeric, num: num, respelled: c.respelled}
	}
	return nil
}

// assemble collects the output columns of fr in feature order, checking them
// against f.Features.
func (f *Fitted) assemble(fr *frame) (*Matrix, error) {
	m := &Matrix{Rows: fr.rows, Features: f.Features, Cols: make([][]float64, 0, len(f.Features))}
	for i := range fr.cols {
		m.Respelled = append(m.Respelled, fr.cols[i].respelled...)
	}
	mismatch := func() error {
		return fmt.Errorf("transform: the steps do not produce the recorded features (invalid fitted transforms)")
	}
	for i, in := range f.Inputs {
		c := &fr.cols[i]
		switch c.kind {
		case kindText:
			return nil, fmt.Errorf("transform: column %s is a string; add it to onehot or exclude it", in.Name)
		case kindNumeric:
			j := len(m.Cols)
			if j >= len(f.Features) || f.Features[j] != in.Name {
				return nil, mismatch()
			}
			m.Cols = append(m.Cols, c.num)
		case kindEncoded:
			for k, col := range c.enc {
				j := len(m.Cols)
				// Compare with in.Name+"="+cats[k] without building it.
				if j >= len(f.Features) {
					return nil, mismatch()
				}
				name, cat := f.Features[j], c.cats[k]
				if len(name) != len(in.Name)+1+len(cat) || !strings.HasPrefix(name, in.Name) ||
					name[len(in.Name)] != '=' || !strings.HasSuffix(name, cat) {
					return nil, mismatch()
				}
				m.Cols = append(m.Cols, col)
			}
		}
	}
	if len(m.Cols) != len(f.Features) {
		return nil, mismatch()
	}
	return m, nil
}

// extractRecord converts the input columns of rec into a frame of raw
// values, for fitting.
func extractRecord(inputs []schema.Field, rec arrow.Record) (*frame, error) {
	n := int(rec.NumRows())
	fr := &frame{rows: n, cols: make([]column, len(inputs))}
	for i, in := range inputs {
		arr, err := inputArray(rec, in.Name)
		if err != nil {
			return nil, err
		}
		if fr.cols[i], err = arrowColumn(in, arr, n, nil); err != nil {
			return nil, err
		}
	}
	return fr, nil
}

// inputArray finds the named column of rec.
func inputArray(rec arrow.Record, name string) (arrow.Array, error) {
	ix := rec.Schema().FieldIndices(name)
	switch len(ix) {
	case 0:
		return nil, fmt.Errorf("transform: missing input column %q", name)
	case 1:
		return rec.Column(ix[0]), nil
	}
	return nil, fmt.Errorf("transform: input column %q occurs %d times", name, len(ix))
}

// arrowColumn converts an Arrow array into a working column of in's type
// and runs the column's steps over it.
func arrowColumn(in schema.Field, arr arrow.Array, n int, ops []*Step) (column, error) {
	wrong := func() (column, error) {
		return column{}, fmt.Errorf("transform: column %q has type %s, want %s", in.Name, arr.DataType(), in.Type)
	}
	var bm []byte
	off := arr.Data().Offset()
	if arr.NullN() > 0 {
		bm = arr.NullBitmapBytes()
	}
	switch in.Type {
	case schema.Float64, schema.Int64:
		switch a := arr.(type) {
		case *array.Float64:
			vals := a.Float64Values()
			return numericColumn(in.Name, n, ops, func(dst []float64, lo int) error {
				copy(dst, vals[lo:lo+len(dst)])
				markNulls(dst, bm, off+lo)
				return nil
			})
		case *array.Int64:
			vals := a.Int64Values()
			return numericColumn(in.Name, n, ops, func(dst []float64, lo int) error {
				src := vals[lo : lo+len(dst)]
				for k, v := range src {
					dst[k] = float64(v)
				}
				markNulls(dst, bm, off+lo)
				return nil
			})
		}
		return wrong()
	case schema.Bool:
		a, ok := arr.(*array.Boolean)
		if !ok {
			return wrong()
		}
		return numericColumn(in.Name, n, ops, func(dst []float64, lo int) error {
			for k := range dst {
				if a.Value(lo + k) {
					dst[k] = 1
				} else {
					dst[k] = 0
				}
			}
			markNulls(dst, bm, off+lo)
			return nil
		})
	case schema.String:
		str := make([]string, n)
		switch a := arr.(type) {
		case *array.String:
			for i := range str {
				str[i] = a.Value(i)
			}
		case *array.LargeString:
			for i := range str {
				str[i] = a.Value(i)
			}
		default:
			return wrong()
		}
		var valid []bool
		if bm != nil {
			valid = make([]bool, n)
			for i := range valid {
				valid[i] = arr.IsValid(i)
			}
		}
		return textColumn(in.Name, str, valid, ops)
	}
	return column{}, fmt.Errorf("transform: input %q has unknown type %q", in.Name, in.Type)
}

// markNulls sets dst[k] to NaN where validity bit bit0+k of bm is clear; a
// nil bm means no nulls. Whole valid bytes are skipped.
func markNulls(dst []float64, bm []byte, bit0 int) {
	if bm == nil {
		return
	}
	for k := 0; k < len(dst); {
		bit := bit0 + k
		if bit&7 == 0 && k+8 <= len(dst) && bm[bit>>3] == 0xFF {
			k += 8
			continue
		}
		if bm[bit>>3]&(1<<(bit&7)) == 0 {
			dst[k] = math.NaN()
		}
		k++
	}
}
