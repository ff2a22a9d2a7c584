// Package dataset reads and writes Kiln's tabular data: CSV ingestion with
// type inference, Parquet files (github.com/parquet-go/parquet-go) exchanged as
// Arrow records (github.com/apache/arrow/go/v17), content hashes and column
// profiles.
package dataset

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
