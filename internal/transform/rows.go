package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/kiln-ml/kiln/internal/dataset/schema"
)

// rowsColumn converts one input column of decoded JSON rows into a working
// column and runs the column's steps over it, with the same code as Apply.
func rowsColumn(in schema.Field, rows []map[string]any, ops []*Step) (column, error) {
	switch in.Type {
	case schema.Float64, schema.Int64, schema.Bool:
		return numericColumn(in.Name, len(rows), ops, func(dst []float64, lo int) error {
			for k := range dst {
				x, err := rowNumber(in.Type, rows[lo+k][in.Name])
				if err != nil {
					return fmt.Errorf("transform: row %d: column %q: %w", lo+k, in.Name, err)
				}
				dst[k] = x
			}
			return nil
		})
	case schema.String:
		str := make([]string, len(rows))
		var valid []bool
		for i, row := range rows {
			switch v := row[in.Name].(type) {
			case string:
				str[i] = v
				if valid != nil {
					valid[i] = true
				}
			case nil:
				if valid == nil {
					valid = make([]bool, len(rows))
					for k := range i {
						valid[k] = true
					}
				}
			case float64:
				// A JSON number for a string column whose categories read
				// as numbers is matched by value (Step.NumericSpellings).
				if !numericSpelled(ops) {
					return column{}, fmt.Errorf("transform: row %d: column %q: want a string, got %s", i, in.Name, describe(v))
				}
				str[i] = strconv.FormatFloat(v, 'g', -1, 64)
				if valid != nil {
					valid[i] = true
				}
			default:
				return column{}, fmt.Errorf("transform: row %d: column %q: want a string, got %s", i, in.Name, describe(v))
			}
		}
		return textColumn(in.Name, str, valid, ops)
	}
	return column{}, fmt.Errorf("transform: input %q has unknown type %q", in.Name, in.Type)
}

// rowNumber converts one JSON value of a numeric or bool input to a float64
// (NaN for null), matching what Apply reads from Arrow.
func rowNumber(t schema.Type, v any) (float64, error) {
	if v == nil {
		return math.NaN(), nil
	}
	if t == schema.Bool {
		b, ok := v.(bool)
		if !ok {
			return 0, fmt.Errorf("want a bool, got %s", describe(v))
		}
		if b {
			return 1, nil
		}
		return 0, nil
	}
	x, ok := toFloat(v)
	if !ok {
		return 0, fmt.Errorf("want a number, got %s", describe(v))
	}
	return x, nil
}

// toFloat converts Go and JSON numbers to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// describe names a JSON value's type for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	if f, ok := toFloat(v); ok {
		return fmt.Sprintf("number %v", f)
	}
	return fmt.Sprintf("%T", v)
}

// numericSpelled reports whether the first encoding step of a string
// column matches numeric-looking categories by value.
func numericSpelled(ops []*Step) bool {
	for _, s := range ops {
		if s.Kind == KindOnehot || s.Kind == KindOrdinal {
			return s.NumericSpellings
		}
	}
	return false
}
