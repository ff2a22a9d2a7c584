package dataset

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Expectations are data checks run over a dataset (see CheckExpectations).
type Expectations struct {
	// MinRows is the fewest rows accepted; 0 means no check.
	MinRows int64 `json:"min_rows,omitempty"`
	// Columns must be present.
	Columns []string `json:"columns,omitempty"`
	// NotNull columns must hold no null (nor NaN).
	NotNull []string `json:"not_null,omitempty"`
	// Ranges bound numeric columns inclusively; nulls and NaN are skipped.
	Ranges map[string]Range `json:"ranges,omitempty"`
	// Allowed lists the values a column may hold; nulls are skipped.
	Allowed map[string][]string `json:"allowed,omitempty"`
	// Unique columns must not repeat a non-null value.
	Unique []string `json:"unique,omitempty"`
}

// Range is an inclusive interval; a nil bound is not checked.
type Range struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// MaxExamples is how many offending rows a check records.
const MaxExamples = 5

// Check is the result of one expectation.
type Check struct {
	// Check is "min_rows", "columns", "not_null", "range", "allowed" or "unique".
	Check string `json:"check"`
	// Column is the column checked ("" for min_rows).
	Column string `json:"column,omitempty"`
	// Expect describes the expectation, e.g. "in [0, 120]".
	Expect string `json:"expect"`
	// Passed is true when no row failed.
	Passed bool `json:"passed"`
	// Failures counts the failing rows (1 for a dataset-level failure).
	Failures int64 `json:"failures,omitempty"`
	// Rows are the first failing rows, 1-based data rows (the header is
	// not a row), at most MaxExamples.
	Rows []int64 `json:"rows,omitempty"`
	// Values are the failing values of Rows, as text.
	Values []string `json:"values,omitempty"`
	// Message explains a dataset-level failure (a missing column, too few rows).
	Message string `json:"message,omitempty"`
}

// Report is the result of CheckExpectations: every check with its outcome.
type Report struct {
	// Dataset names what was checked (for messages).
	Dataset string `json:"dataset"`
	// Rows is the number of rows checked.
	Rows int64 `json:"rows"`
	// Passed is true when every check passed.
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c)
		}
	}
	return out
}

// String summarises the failed checks, one per line, e.g.
// "not_null id: 3 rows fail (rows 4, 9, 12)".
func (r *Report) String() string {
	failed := r.Failed()
	if len(failed) == 0 {
		return fmt.Sprintf("%s: all %d expectations passed on %d rows", r.Dataset, len(r.Checks), r.Rows)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d expectations failed on %d rows:", r.Dataset, len(failed), len(r.Checks), r.Rows)
	for _, c := range failed {
		b.WriteString("\n  ")
		b.WriteString(c.Check)
		if c.Column != "" {
			b.WriteString(" " + c.Column)
		}
		b.WriteString(" (" + c.Expect + "): ")
		if c.Message != "" {
			b.WriteString(c.Message)
			continue
		}
		fmt.Fprintf(&b, "%d rows fail; first", c.Failures)
		for i, row := range c.Rows {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(&b, "%s row %d", sep, row)
			if i < len(c.Values) {
				fmt.Fprintf(&b, " = %s", c.Values[i])
			}
		}
	}
	return b.String()
}

// checker is one running column check.
type checker struct {
	check *Check
	col   string
	// fail reports whether row i of arr fails and the value shown for it.
	fail func(arr arrow.Array, i int) (bool, string)
}

func (c *checker) record(row int64, val string) {
	c.check.Failures++
	c.check.Passed = false
	if len(c.check.Rows) < MaxExamples {
		c.check.Rows = append(c.check.Rows, row)
		c.check.Values = append(c.check.Values, val)
	}
}

// CheckExpectations checks exp against the Parquet file at path in one
// pass, a row group at a time, so memory is bounded by a row group plus,
// for unique checks, one 64-bit hash per distinct value. (Values are
// compared by that hash: for n values a false duplicate has probability
// about n²/2^65, 1e-7 for 2 million.) Every check runs; the report holds
// all failures. name labels the report.
func CheckExpectations(ctx context.Context, path, name string, exp Expectations) (*Report, error) {
	r, err := OpenParquet(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	schema := r.Schema()
	rep := &Report{Dataset: name, Rows: r.NumRows(), Passed: true}
	add := func(c Check) *Check {
		c.Passed = true
		rep.Checks = append(rep.Checks, c)
		return &rep.Checks[len(rep.Checks)-1]
	}
	var checks []checker
	type spec struct {
		c      Check
		col    string
		makeFn func(t Type) (func(arrow.Array, int) (bool, string), string)
	}
	var specs []spec
	if exp.MinRows > 0 {
		c := Check{Check: "min_rows", Expect: fmt.Sprintf(">= %d rows", exp.MinRows)}
		if rep.Rows < exp.MinRows {
			c.Failures = 1
			c.Message = fmt.Sprintf("has %d rows, expected at least %d", rep.Rows, exp.MinRows)
		}
		specs = append(specs, spec{c: c})
	}
	for _, col := range exp.Columns {
		c := Check{Check: "columns", Column: col, Expect: "present"}
		if schema.Index(col) < 0 {
			c.Failures = 1
			c.Message = "no such column (columns: " + strings.Join(schema.Names(), ", ") + ")"
		}
		specs = append(specs, spec{c: c})
	}
	for _, col := range exp.NotNull {
		specs = append(specs, spec{c: Check{Check: "not_null", Column: col, Expect: "no nulls"}, col: col,
			makeFn: func(t Type) (func(arrow.Array, int) (bool, string), string) {
				return func(a arrow.Array, i int) (bool, string) {
					if a.IsNull(i) {
						return true, "null"
					}
					if f, ok := a.(*array.Float64); ok && math.IsNaN(f.Value(i)) {
						return true, "NaN"
					}
					return false, ""
				}, ""
			}})
	}
	for _, col := range sortedKeys(exp.Ranges) {
		rg := exp.Ranges[col]
		lo, hi := math.Inf(-1), math.Inf(1)
		if rg.Min != nil {
			lo = *rg.Min
		}
		if rg.Max != nil {
			hi = *rg.Max
		}
		specs = append(specs, spec{c: Check{Check: "range", Column: col, Expect: rangeText(rg)}, col: col,
			makeFn: func(t Type) (func(arrow.Array, int) (bool, string), string) {
				switch t {
				case Float64:
					return func(a arrow.Array, i int) (bool, string) {
						x := a.(*array.Float64).Value(i)
						if a.IsNull(i) || x != x || (x >= lo && x <= hi) {
							return false, ""
						}
						return true, strconv.FormatFloat(x, 'g', -1, 64)
					}, ""
				case Int64:
					return func(a arrow.Array, i int) (bool, string) {
						v := a.(*array.Int64).Value(i)
						if x := float64(v); a.IsNull(i) || (x >= lo && x <= hi) {
							return false, ""
						}
						return true, strconv.FormatInt(v, 10)
					}, ""
				}
				return nil, "column is " + string(t) + ", not numeric"
			}})
	}
	for _, col := range sortedKeys(exp.Allowed) {
		allowed := exp.Allowed[col]
		set := make(map[string]bool, len(allowed))
		for _, v := range allowed {
			set[v] = true
		}
		specs = append(specs, spec{c: Check{Check: "allowed", Column: col, Expect: "one of " + strings.Join(allowed, ", ")}, col: col,
			makeFn: func(t Type) (func(arrow.Array, int) (bool, string), string) {
				return func(a arrow.Array, i int) (bool, string) {
					if a.IsNull(i) {
						return false, ""
					}
					v := valueText(a, i)
					if set[v] {
						return false, ""
					}
					return true, strconv.Quote(v)
				}, ""
			}})
	}
	for _, col := range exp.Unique {
		seed := maphash.MakeSeed()
		seen := map[uint64]struct{}{}
		specs = append(specs, spec{c: Check{Check: "unique", Column: col, Expect: "no repeated values"}, col: col,
			makeFn: func(t Type) (func(arrow.Array, int) (bool, string), string) {
				return func(a arrow.Array, i int) (bool, string) {
					if a.IsNull(i) {
						return false, ""
					}
					v := valueText(a, i)
					h := maphash.String(seed, v)
					if _, dup := seen[h]; dup {
						return true, strconv.Quote(v)
					}
					seen[h] = struct{}{}
					return false, ""
				}, ""
			}})
	}
	// Build the checks now that rep.Checks no longer reallocates.
	rep.Checks = make([]Check, 0, len(specs))
	need := map[string]bool{}
	for _, s := range specs {
		c := add(s.c)
		if c.Failures > 0 {
			c.Passed = false
		}
		if s.makeFn == nil {
			continue
		}
		k := schema.Index(s.col)
		if k < 0 {
			c.Passed, c.Failures, c.Message = false, 1, "no such column"
			continue
		}
		fn, msg := s.makeFn(schema.Fields[k].Type)
		if fn == nil {
			c.Passed, c.Failures, c.Message = false, 1, msg
			continue
		}
		checks = append(checks, checker{check: c, col: s.col, fail: fn})
		need[s.col] = true
	}
	if len(checks) > 0 {
		cols := make([]string, 0, len(need))
		for _, f := range schema.Fields {
			if need[f.Name] {
				cols = append(cols, f.Name)
			}
		}
		var base int64
		for g := 0; g < r.NumRowGroups(); g++ {
			rec, err := r.ReadRowGroup(ctx, g, cols)
			if err != nil {
				return nil, err
			}
			n := int(rec.NumRows())
			for k := range checks {
				c := &checks[k]
				arr := rec.Column(slices.Index(cols, c.col))
				for i := 0; i < n; i++ {
					if bad, v := c.fail(arr, i); bad {
						c.record(base+int64(i)+1, v)
					}
				}
			}
			rec.Release()
			base += int64(n)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range rep.Checks {
		if !c.Passed {
			rep.Passed = false
		}
	}
	return rep, nil
}

// valueText is the text of a non-null value, as the allowed and unique
// checks compare it.
func valueText(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(c.Value(i))
	}
	return a.ValueStr(i)
}

func rangeText(r Range) string {
	lo, hi := "-inf", "+inf"
	if r.Min != nil {
		lo = strconv.FormatFloat(*r.Min, 'g', -1, 64)
	}
	if r.Max != nil {
		hi = strconv.FormatFloat(*r.Max, 'g', -1, 64)
	}
	return "in [" + lo + ", " + hi + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
