package labels

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// Formats of labels files.
const (
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
	FormatParquet = "parquet"
)

// FormatOf returns the format of a labels file from its name: .csv, .jsonl
// or .ndjson (each optionally followed by .gz), .parquet or .pq. Text files
// are decompressed when they start with gzip's magic bytes, whatever their
// name, as internal/dataset does.
func FormatOf(path string) (string, error) {
	lower := strings.ToLower(path)
	base := strings.TrimSuffix(lower, ".gz")
	switch {
	case strings.HasSuffix(base, ".csv"):
		return FormatCSV, nil
	case strings.HasSuffix(base, ".jsonl") || strings.HasSuffix(base, ".ndjson"):
		return FormatJSONL, nil
	case base == lower && (strings.HasSuffix(lower, ".parquet") || strings.HasSuffix(lower, ".pq")):
		return FormatParquet, nil
	}
	return "", fmt.Errorf("labels file %s: unknown format: name it .csv, .jsonl, .ndjson (optionally .gz), .parquet or .pq", path)
}

// ErrColumn marks (for errors.Is) the errors of a labels file whose
// columns do not fit: no ID or label column, a named time column missing,
// a column appearing twice, a column of a type that cannot be read.
var ErrColumn = errors.New("labels file columns")

type columnError struct{ msg string }

func (e *columnError) Error() string        { return e.msg }
func (e *columnError) Is(target error) bool { return target == ErrColumn }

func columnErrorf(format string, args ...any) error {
	return &columnError{msg: fmt.Sprintf(format, args...)}
}

// location is where a row is in its file: a 1-based line of a text file or
// a 1-based row of a Parquet file.
type location struct {
	line bool
	n    int64
}

func (l location) String() string {
	if l.line {
		return "line " + strconv.FormatInt(l.n, 10)
	}
	return "row " + strconv.FormatInt(l.n, 10)
}

// at prefixes a message with the file and location: "f.csv:7: ..." for a
// line, "f.parquet: row 7: ..." for a row.
func (l location) at(file string) string {
	if l.line {
		return fmt.Sprintf("%s:%d", file, l.n)
	}
	return fmt.Sprintf("%s: row %d", file, l.n)
}

// rowFunc receives one row's ID, label and time cells (the time cell is
// null when the file has no time column) and the row's location.
type rowFunc func(id, label, tm cell, loc location) error

// columns are the names of the columns to read; timeRequired says the time
// column was named explicitly, so that its absence is an error.
type columns struct {
	id, label, time string
	timeRequired    bool
}

// readLabels calls fn for every row of the labels file at path. Errors that
// make the file unreadable as a whole (a missing ID or label column, a
// malformed line) name the file, the line or row and the column.
func readLabels(ctx context.Context, path, format string, cols columns, fn rowFunc) error {
	switch format {
	case FormatCSV:
		return readCSV(ctx, path, cols, fn)
	case FormatJSONL:
		return readJSONL(ctx, path, cols, fn)
	case FormatParquet:
		return readParquet(ctx, path, cols, fn)
	}
	return fmt.Errorf("labels file %s: unknown format %q", path, format)
}

// openText opens a text file, decompressing it when it starts with gzip's
// magic bytes.
func openText(path string) (io.Reader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reading %s: gzip: %w", path, err)
		}
		return bufio.NewReaderSize(zr, 1<<20), f, nil
	}
	return br, f, nil
}

// ctxEvery is how often (in rows) readers check for cancellation.
const ctxEvery = 4096

// readCSV reads a CSV file with a header row. Fields equal to a null token
// (dataset.IsNullToken: "", "NA", "null", ...) are nulls; the others are
// text. A row with another number of fields than the header is an error.
func readCSV(ctx context.Context, path string, cols columns, fn rowFunc) error {
	rd, c, err := openText(path)
	if err != nil {
		return err
	}
	defer c.Close()
	r := csv.NewReader(rd)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	wrap := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d:%d: %w", path, pe.Line, pe.Column, pe.Err)
		}
		return fmt.Errorf("reading %s: %w", path, err)
	}
	header, err := r.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: empty file, expected a header row", path)
	}
	if err != nil {
		return wrap(err)
	}
	names := make([]string, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		names[i] = strings.TrimSpace(h)
	}
	find := func(what, name string, required bool) (int, error) {
		i := slices.Index(names, name)
		if i < 0 {
			if !required {
				return -1, nil
			}
			return -1, columnErrorf("%s:1: no %s column %q (the header has %s)", path, what, name, listNames(names))
		}
		if j := slices.Index(names[i+1:], name); j >= 0 {
			return -1, columnErrorf("%s:1: %s column %q appears twice (columns %d and %d)", path, what, name, i+1, i+j+2)
		}
		return i, nil
	}
	idIdx, err := find("ID", cols.id, true)
	if err != nil {
		return err
	}
	labelIdx, err := find("label", cols.label, true)
	if err != nil {
		return err
	}
	timeIdx, err := find("time", cols.time, cols.timeRequired)
	if err != nil {
		return err
	}
	cellOf := func(rec []string, i int) cell {
		if i < 0 {
			return cell{}
		}
		v := strings.TrimSpace(rec[i])
		if dataset.IsNullToken(v) {
			return cell{}
		}
		return cell{kind: cellText, text: v}
	}
	for rows := 0; ; rows++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wrap(err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(names) {
			return fmt.Errorf("%s:%d: expected %d fields, found %d", path, line, len(names), len(rec))
		}
		if rows%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(cellOf(rec, idIdx), cellOf(rec, labelIdx), cellOf(rec, timeIdx), location{line: true, n: int64(line)}); err != nil {
			return err
		}
	}
}

// listNames renders column names for messages.
func listNames(names []string) string {
	if len(names) == 0 {
		return "no columns"
	}
	const max = 12
	q := make([]string, 0, min(len(names), max))
	for i, n := range names {
		if i == max {
			q = append(q, fmt.Sprintf("… %d more", len(names)-max))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return strings.Join(q, ", ")
}

// readJSONL reads a JSON Lines file: one JSON object per line, blank lines
// skipped. A key missing from an object, or null, is a null; strings are
// text; numbers keep their JSON text (an ID 7 is "7"). A line that is not a
// JSON object is an error. The ID and label keys must appear in at least
// one object (and the time key, when named explicitly).
func readJSONL(ctx context.Context, path string, cols columns, fn rowFunc) error {
	rd, c, err := openText(path)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(rd, 1<<20)
	var seenID, seenLabel, seenTime bool
	var firstKeys []string
	var line int64
	objects := 0
	for {
		raw, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("reading %s: %w", path, rerr)
		}
		if len(raw) > 0 {
			line++
		}
		if b := bytes.TrimSpace(raw); len(b) > 0 {
			if line%ctxEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
				what := "not a JSON object"
				var se *json.SyntaxError
				if errors.As(err, &se) {
					what = "malformed JSON: " + se.Error()
				}
				return fmt.Errorf("%s:%d: %s", path, line, what)
			}
			if objects == 0 {
				for k := range obj {
					firstKeys = append(firstKeys, k)
				}
				slices.Sort(firstKeys)
			}
			objects++
			get := func(name string, seen *bool) cell {
				v, ok := obj[name]
				if !ok {
					return cell{}
				}
				*seen = true
				return jsonCell(v)
			}
			id := get(cols.id, &seenID)
			label := get(cols.label, &seenLabel)
			tm := get(cols.time, &seenTime)
			if err := fn(id, label, tm, location{line: true, n: line}); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if objects == 0 {
		return fmt.Errorf("%s: no JSON objects", path)
	}
	missing := func(what, name string) error {
		return columnErrorf("%s: no object has the %s column %q (the first has %s)", path, what, name, listNames(firstKeys))
	}
	switch {
	case !seenID:
		return missing("ID", cols.id)
	case !seenLabel:
		return missing("label", cols.label)
	case cols.timeRequired && !seenTime:
		return missing("time", cols.time)
	}
	return nil
}

// jsonCell converts one JSON value.
func jsonCell(v json.RawMessage) cell {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return cell{}
	}
	switch v[0] {
	case 'n':
		return cell{}
	case 't':
		return cell{kind: cellBool, b: true}
	case 'f':
		return cell{kind: cellBool, b: false}
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return cell{kind: cellOther, text: string(v)}
		}
		return cell{kind: cellText, text: s}
	case '{':
		return cell{kind: cellOther, text: "an object"}
	case '[':
		return cell{kind: cellOther, text: "an array"}
	}
	// A number out of float64's range parses as ±Inf: an invalid label or
	// time, still a valid ID as text.
	x, _ := strconv.ParseFloat(string(v), 64)
	return cell{kind: cellNumber, text: string(v), num: x}
}

// readParquet reads a Parquet file's ID, label and time columns in batches.
// Int64 and Float64 IDs are formatted as text; a time column must be int64
// or float64 (Unix seconds or milliseconds) or text.
func readParquet(ctx context.Context, path string, cols columns, fn rowFunc) error {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return err
	}
	defer r.Close()
	schema := r.Schema()
	names := []string{}
	check := func(what, name string, required bool) (bool, error) {
		if schema.Index(name) >= 0 {
			return true, nil
		}
		if slices.Contains(r.Unsupported(), name) {
			return false, columnErrorf("%s: %s column %q has a type Kiln does not read (use text, numbers or booleans; a time as RFC 3339 text or Unix seconds or milliseconds)", path, what, name)
		}
		if !required {
			return false, nil
		}
		all := append(schema.Names(), r.Unsupported()...)
		return false, columnErrorf("%s: no %s column %q (the file has %s)", path, what, name, listNames(all))
	}
	if _, err := check("ID", cols.id, true); err != nil {
		return err
	}
	if _, err := check("label", cols.label, true); err != nil {
		return err
	}
	names = append(names, cols.id, cols.label)
	// A TIMESTAMP time column is read apart (dataset does not read it).
	var ts *timestampColumn
	if slices.Contains(r.Unsupported(), cols.time) {
		if ts, err = openTimestampColumn(path, cols.time); err != nil {
			return err
		}
		if ts != nil {
			defer ts.Close()
		}
	}
	hasTime := ts != nil
	if !hasTime {
		if hasTime, err = check("time", cols.time, cols.timeRequired); err != nil {
			return err
		}
		if hasTime {
			names = append(names, cols.time)
		}
	}
	var row int64
	for g := 0; g < r.NumRowGroups(); g++ {
		var tsMs []int64
		var tsValid []bool
		if ts != nil {
			if tsMs, tsValid, err = ts.rowGroup(g); err != nil {
				return fmt.Errorf("reading %s row group %d: column %q: %w", path, g, cols.time, err)
			}
		}
		off := 0 // row within the row group
		err := r.ScanRowGroup(ctx, g, names, batchRows, func(rec arrow.Record) error {
			var tcol arrow.Array
			if ts == nil && hasTime {
				tcol = rec.Column(2)
			}
			for i := 0; i < int(rec.NumRows()); i, off = i+1, off+1 {
				row++
				tm := arrowCell(tcol, i)
				if ts != nil && tsValid[off] {
					tm = cell{kind: cellMillis, i: tsMs[off]}
				}
				if err := fn(arrowCell(rec.Column(0), i), arrowCell(rec.Column(1), i), tm, location{n: row}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// arrowCell converts value i of a column (nil: a null).
func arrowCell(a arrow.Array, i int) cell {
	if a == nil || a.IsNull(i) {
		return cell{}
	}
	switch a := a.(type) {
	case *array.String:
		return cell{kind: cellText, text: a.Value(i)}
	case *array.Int64:
		return cell{kind: cellInt, i: a.Value(i)}
	case *array.Float64:
		return cell{kind: cellNumber, num: a.Value(i)}
	case *array.Boolean:
		return cell{kind: cellBool, b: a.Value(i)}
	}
	return cell{kind: cellOther, text: a.DataType().String()}
}
