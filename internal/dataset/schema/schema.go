// Package schema holds the column types, schemas and training profiles that
// datasets, model bundles and transforms share. It imports Arrow but not
// Parquet, so that a model bundle's types can be linked without the Parquet
// reader and writer (package dataset, which aliases these names): an
// exported lite predictor (kiln export --lite) does not carry them.
package schema

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
)

// Type is a column's logical type. Every column is nullable.
type Type string

// Column types.
const (
	Float64 Type = "float64"
	Int64   Type = "int64"
	String  Type = "string"
	Bool    Type = "bool"
)

// Field is one named, typed column.
type Field struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Schema is an ordered list of fields.
type Schema struct {
	Fields []Field `json:"fields"`
}

// Index returns the position of the named field, or -1.
func (s Schema) Index(name string) int {
	for i, f := range s.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Names returns the field names in order.
func (s Schema) Names() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// Valid reports whether t is one of the column types Float64, Int64, String
// and Bool.
func (t Type) Valid() bool {
	switch t {
	case Float64, Int64, String, Bool:
		return true
	}
	return false
}

// Numeric reports whether t is Float64 or Int64.
func (t Type) Numeric() bool { return t == Float64 || t == Int64 }

// ArrowType returns the Arrow data type of t, or nil for an invalid type.
func (t Type) ArrowType() arrow.DataType {
	switch t {
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case String:
		return arrow.BinaryTypes.String
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	return nil
}

// Validate checks that every field has a non-empty, unique name and a valid
// type.
func (s Schema) Validate() error {
	seen := make(map[string]int, len(s.Fields))
	for i, f := range s.Fields {
		if f.Name == "" {
			return fmt.Errorf("schema field %d has an empty name", i+1)
		}
		if j, dup := seen[f.Name]; dup {
			return fmt.Errorf("schema fields %d and %d are both named %q", j+1, i+1, f.Name)
		}
		seen[f.Name] = i
		if !f.Type.Valid() {
			return fmt.Errorf("schema field %q has invalid type %q", f.Name, f.Type)
		}
	}
	return nil
}

// Arrow returns the Arrow schema of s: Float64 maps to float64, Int64 to
// int64, String to utf8 and Bool to boolean, all nullable. Fields of an
// invalid type (see Schema.Validate) map to Arrow's null type.
func (s Schema) Arrow() *arrow.Schema {
	fields := make([]arrow.Field, len(s.Fields))
	for i, f := range s.Fields {
		dt := f.Type.ArrowType()
		if dt == nil {
			dt = arrow.Null
		}
		fields[i] = arrow.Field{Name: f.Name, Type: dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Profile summarises a dataset's columns: the training reference that drift
// monitoring compares served traffic against. It is stored in the model bundle.
type Profile struct {
	// Rows is the number of rows profiled.
	Rows int64 `json:"rows"`
	// Columns are in schema order.
	Columns []ColumnProfile `json:"columns"`
}

// ColumnProfile describes one column. Numeric columns (Float64, Int64) fill the
// numeric fields; String and Bool columns fill the categorical fields.
type ColumnProfile struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Count is the number of non-null values; Nulls the number of nulls.
	// In numeric columns NaN, +Inf and -Inf count as nulls (CSV "Inf" reads
	// as +Inf), so that the statistics below are finite.
	Count int64 `json:"count"`
	Nulls int64 `json:"nulls"`

	// Min, Max, Mean and Std (population) of the non-null values.
	Min  float64 `json:"min,omitempty"`
	Max  float64 `json:"max,omitempty"`
	Mean float64 `json:"mean,omitempty"`
	Std  float64 `json:"std,omitempty"`
	// Quantiles at QuantileLevels, exact (linear interpolation, as numpy's default).
	Quantiles []float64 `json:"quantiles,omitempty"`
	// Edges are the inner bin cut points, increasing and distinct (at most
	// bins-1 of them, taken from the training quantiles). A value v falls in
	// bin sort.SearchFloat64s(Edges, v): bin i holds Edges[i-1] < v <= Edges[i].
	Edges []float64 `json:"edges,omitempty"`
	// Fractions has len(Edges)+1 entries: the share of non-null values per bin.
	Fractions []float64 `json:"fractions,omitempty"`

	// Categories are the most frequent values (at most MaxCategories), most
	// frequent first, ties by value; bools are "true"/"false".
	Categories []string `json:"categories,omitempty"`
	// CategoryFractions are the shares of non-null values per category.
	CategoryFractions []float64 `json:"category_fractions,omitempty"`
	// OtherFraction is the share of non-null values outside Categories.
	OtherFraction float64 `json:"other_fraction,omitempty"`
}

// QuantileLevels are the levels at which ColumnProfile.Quantiles are taken.
var QuantileLevels = []float64{0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1}

// MaxCategories is the most categories a ColumnProfile keeps.
const MaxCategories = 50

// IsNullToken reports whether a CSV field (after trimming spaces) denotes a
// missing value: "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None" or "?".
func IsNullToken(s string) bool {
	switch s {
	case "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?":
		return true
	}
	return false
}
