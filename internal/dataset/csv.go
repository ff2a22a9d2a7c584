package dataset

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// CSVOptions configures CSVToParquet.
type CSVOptions struct {
	// Types overrides the inferred type of the named columns.
	Types map[string]Type
	// BatchRows is the number of rows per Parquet row group (default 65536).
	// A String column may hold at most 2 GiB of text per batch (Arrow's
	// 32-bit offsets); more is an error asking for fewer rows.
	BatchRows int
	// Delimiter separates fields (default ',').
	Delimiter rune
}

// DefaultBatchRows is the default CSVOptions.BatchRows.
const DefaultBatchRows = 65536

// parseBool parses "true"/"false" in any case; with numeric also "1"/"0".
func parseBool(s string, numeric bool) (v, ok bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	case numeric && s == "1":
		return true, true
	case numeric && s == "0":
		return false, true
	}
	return false, false
}

// CSVToParquet converts the CSV file src (optionally gzip-compressed, see
// openSource) into the Parquet file dst and returns its description.
//
// The first row is the header: names are trimmed and must be non-empty and
// unique. Fields equal to a null token (see IsNullToken) are nulls. A first
// pass infers each column's type: Int64 if every non-null value parses as an
// int64, else Float64 if every one parses as a float64, else Bool if every one
// is true or false (in any case), else String; a column without values is
// Float64. opts.Types overrides the inference (an overridden Bool column also
// accepts 1 and 0). A second pass writes one row group per opts.BatchRows rows,
// holding only one batch in memory. "Inf" and "-Inf" become ±Inf in Float64
// columns.
//
// Errors name the file, the 1-based line and the column, as in
// "churn.csv:17: expected 9 fields, found 8". The output is written
// atomically and depends only on the input bytes and options, so its SHA256
// identifies the dataset.
func CSVToParquet(ctx context.Context, src, dst string, opts CSVOptions) (Info, error) {
	if opts.BatchRows == 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.BatchRows < 0 {
		return Info{}, fmt.Errorf("converting %s: negative BatchRows %d", src, opts.BatchRows)
	}
	if opts.Delimiter == 0 {
		opts.Delimiter = ','
	}
	inf, err := inferCSV(ctx, src, opts)
	if err != nil {
		return Info{}, err
	}
	w, err := CreateParquet(dst, inf.schema, WriterOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("converting %s: %w", src, err)
	}
	if err := convertCSV(ctx, src, w, inf, opts); err != nil {
		w.Abort()
		return Info{}, err
	}
	info, err := w.Commit()
	if err != nil {
		return Info{}, fmt.Errorf("converting %s: %w", src, err)
	}
	return info, nil
}

// csvInference is the result of the first pass.
type csvInference struct {
	header     []string
	schema     Schema
	overridden []bool
	rows       int64
}

// csvFile is an open CSV file positioned after its header.
type csvFile struct {
	src    string
	f      io.Closer
	r      *csv.Reader
	header []string
}

// openCSV opens src and reads its header row.
func openCSV(src string, delim rune) (*csvFile, error) {
	rd, f, err := openSource(src)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(rd)
	r.Comma = delim
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	c := &csvFile{src: src, f: f, r: r}
	rec, err := r.Read()
	if err == io.EOF {
		f.Close()
		return nil, fmt.Errorf("%s: empty file, expected a header row", src)
	}
	if err != nil {
		f.Close()
		return nil, c.wrap(err)
	}
	line, _ := r.FieldPos(0)
	seen := make(map[string]int, len(rec))
	for i, name := range rec {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		name = strings.TrimSpace(name)
		if name == "" {
			f.Close()
			return nil, fmt.Errorf("%s:%d: column %d has an empty name", src, line, i+1)
		}
		if j, dup := seen[name]; dup {
			f.Close()
			return nil, fmt.Errorf("%s:%d: duplicate column name %q (columns %d and %d)", src, line, name, j+1, i+1)
		}
		seen[name] = i
		c.header = append(c.header, name)
	}
	return c, nil
}

// next returns the next record and its line, checking its field count.
// It returns io.EOF at the end of the file.
func (c *csvFile) next() ([]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, c.wrap(err)
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) != len(c.header) {
		return nil, line, fmt.Errorf("%s:%d: expected %d fields, found %d", c.src, line, len(c.header), len(rec))
	}
	return rec, line, nil
}

// wrap turns a csv package error into one naming the file and line.
func (c *csvFile) wrap(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %w", c.src, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("reading %s: %w", c.src, err)
}

// ctxCheckRows is how often (in rows) the conversion checks for cancellation.
const ctxCheckRows = 4096

// inferCSV is the first pass: header, field counts and column types.
func inferCSV(ctx context.Context, src string, opts CSVOptions) (*csvInference, error) {
	c, err := openCSV(src, opts.Delimiter)
	if err != nil {
		return nil, err
	}
	defer c.f.Close()
	ncol := len(c.header)
	for name, t := range opts.Types {
		if !slices.Contains(c.header, name) {
			return nil, fmt.Errorf("%s: type override for unknown column %q", src, name)
		}
		if !t.Valid() {
			return nil, fmt.Errorf("%s: column %s: invalid type override %q", src, name, t)
		}
	}
	type state struct{ seen, notInt, notFloat, notBool bool }
	st := make([]state, ncol)
	var rows int64
	for {
		rec, _, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rows++
		if rows%ctxCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("reading %s: %w", src, err)
			}
		}
		for i, raw := range rec {
			s := &st[i]
			if s.notInt && s.notFloat && s.notBool {
				continue
			}
			v := strings.TrimSpace(raw)
			if IsNullToken(v) {
				continue
			}
			s.seen = true
			if !s.notInt {
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					s.notInt = true
				}
			}
			if s.notInt && !s.notFloat {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					s.notFloat = true
				}
			}
			if !s.notBool {
				if _, ok := parseBool(v, false); !ok {
					s.notBool = true
				}
			}
		}
	}
	if rows == 0 {
		return nil, fmt.Errorf("%s: no data rows after the header", src)
	}
	inf := &csvInference{header: c.header, rows: rows, overridden: make([]bool, ncol)}
	for i, name := range c.header {
		s := st[i]
		var t Type
		switch {
		case !s.seen:
			t = Float64
		case !s.notInt:
			t = Int64
		case !s.notFloat:
			t = Float64
		case !s.notBool:
			t = Bool
		default:
			t = String
		}
		if o, ok := opts.Types[name]; ok {
			t = o
			inf.overridden[i] = true
		}
		inf.schema.Fields = append(inf.schema.Fields, Field{Name: name, Type: t})
	}
	return inf, nil
}

// convertCSV is the second pass: parse each batch and write it to w.
func convertCSV(ctx context.Context, src string, w *Writer, inf *csvInference, opts CSVOptions) error {
	c, err := openCSV(src, opts.Delimiter)
	if err != nil {
		return err
	}
	defer c.f.Close()
	if !slices.Equal(c.header, inf.header) {
		return fmt.Errorf("%s: header changed during conversion", src)
	}
	fields := inf.schema.Fields
	builders := make([]columnBuilder, len(fields))
	batch := 0
	reset := func() {
		for i := range builders {
			builders[i].reset(fields[i].Type, opts.BatchRows)
		}
		batch = 0
	}
	flush := func() error {
		if batch == 0 {
			return nil
		}
		cols := make([]arrow.Array, len(builders))
		for i := range builders {
			cols[i] = builders[i].finish()
		}
		rec, err := NewRecord(inf.schema, cols)
		if err != nil {
			return fmt.Errorf("converting %s: %w", src, err)
		}
		defer rec.Release()
		if err := w.Write(rec); err != nil {
			return fmt.Errorf("converting %s: %w", src, err)
		}
		reset()
		return nil
	}
	reset()
	var rows int64
	for {
		rec, line, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rows++
		if rows%ctxCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("converting %s: %w", src, err)
			}
		}
		for i, raw := range rec {
			if err := appendCSVField(&builders[i], raw); err != nil {
				suffix := ""
				if inf.overridden[i] {
					suffix = " (type overridden)"
				}
				return fmt.Errorf("%s:%d: column %s: %w%s", src, line, fields[i].Name, err, suffix)
			}
			if fields[i].Type == String && builders[i].stringOverflow() {
				return fmt.Errorf("%s:%d: column %s: more than 2 GiB of text in one batch of %d rows; lower BatchRows",
					src, line, fields[i].Name, opts.BatchRows)
			}
		}
		batch++
		if batch == opts.BatchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if rows != inf.rows {
		return fmt.Errorf("%s: file changed during conversion (%d rows, then %d)", src, inf.rows, rows)
	}
	return nil
}

// appendCSVField parses one field into b according to b's type.
func appendCSVField(b *columnBuilder, raw string) error {
	v := strings.TrimSpace(raw)
	if IsNullToken(v) {
		b.appendNull()
		return nil
	}
	switch b.typ {
	case Int64:
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an int64", raw)
		}
		b.appendInt(x)
	case Float64:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a float64", raw)
		}
		b.appendFloat(x)
	case Bool:
		x, ok := parseBool(v, true)
		if !ok {
			return fmt.Errorf("%q is not a bool", raw)
		}
		b.appendBool(x)
	case String:
		b.appendString(raw)
	}
	return nil
}
