package dataset

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
