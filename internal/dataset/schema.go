// Package dataset reads and writes Kiln's tabular data: CSV ingestion with
// type inference, Parquet files (github.com/parquet-go/parquet-go) exchanged as
// Arrow records (github.com/apache/arrow/go/v17), content hashes and column
// profiles.
package dataset

import "github.com/kiln-ml/kiln/internal/dataset/schema"

// Type is a column's logical type (schema.Type). Every column is nullable.
type Type = schema.Type

// Column types.
const (
	Float64 = schema.Float64
	Int64   = schema.Int64
	String  = schema.String
	Bool    = schema.Bool
)

// Field is one named, typed column (schema.Field).
type Field = schema.Field

// Schema is an ordered list of fields (schema.Schema).
type Schema = schema.Schema

// Profile summarises a dataset's columns (schema.Profile).
type Profile = schema.Profile

// ColumnProfile describes one column (schema.ColumnProfile).
type ColumnProfile = schema.ColumnProfile

// QuantileLevels are the levels at which ColumnProfile.Quantiles are taken.
var QuantileLevels = schema.QuantileLevels

// MaxCategories is the most categories a ColumnProfile keeps.
const MaxCategories = schema.MaxCategories

// IsNullToken reports whether a CSV field (after trimming spaces) denotes a
// missing value (schema.IsNullToken).
func IsNullToken(s string) bool { return schema.IsNullToken(s) }
