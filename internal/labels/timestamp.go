package labels

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// timestampColumn reads a Parquet TIMESTAMP column (what pandas and
// pyarrow write for datetimes), which internal/dataset leaves out, as Unix
// milliseconds. Timestamps not adjusted to UTC ("naive" ones) are read as
// UTC.
type timestampColumn struct {
	file   *os.File
	pf     *parquet.File
	leaf   int
	factor int64 // stored units per millisecond
}

// openTimestampColumn opens the top-level column name of the Parquet file
// at path if it is an INT64 TIMESTAMP column, and returns nil otherwise.
func openTimestampColumn(path, name string) (c *timestampColumn, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: corrupt parquet file: %v", path, p)
		}
		if c == nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	col := pf.Root().Column(name)
	if col == nil || !col.Leaf() || col.Repeated() || col.Type().Kind() != parquet.Int64 {
		return nil, nil
	}
	lt := col.Type().LogicalType()
	if lt == nil {
		return nil, nil
	}
	ts, ok := lt.Value.(*format.TimestampType)
	if !ok || ts.Unit.Value == nil {
		return nil, nil
	}
	unit := ts.Unit.Value.Duration()
	if unit <= 0 || unit > time.Millisecond {
		return nil, nil
	}
	return &timestampColumn{file: f, pf: pf, leaf: col.Index(), factor: int64(time.Millisecond / unit)}, nil
}

func (c *timestampColumn) Close() error { return c.file.Close() }

// rowGroup reads the column's values in row group g: milliseconds and
// validity.
func (c *timestampColumn) rowGroup(g int) (ms []int64, valid []bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt timestamp column: %v", p)
		}
	}()
	rg := c.pf.RowGroups()[g]
	pages := rg.ColumnChunks()[c.leaf].Pages()
	defer pages.Close()
	n := int(rg.NumRows())
	ms, valid = make([]int64, 0, n), make([]bool, 0, n)
	var vals []parquet.Value
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		vals = append(vals[:0], make([]parquet.Value, p.NumValues())...)
		k, err := p.Values().ReadValues(vals)
		parquet.Release(p)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, err
		}
		for _, v := range vals[:k] {
			if v.IsNull() {
				ms, valid = append(ms, 0), append(valid, false)
				continue
			}
			x := v.Int64()
			q := x / c.factor
			if x%c.factor < 0 {
				q-- // floor: an instant belongs to the millisecond it falls in
			}
			ms, valid = append(ms, q), append(valid, true)
		}
	}
	if len(ms) != n {
		return nil, nil, fmt.Errorf("timestamp column holds %d values, row group %d has %d rows", len(ms), g, n)
	}
	return ms, valid, nil
}
