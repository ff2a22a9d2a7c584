package scorer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// FileOptions are the options of File.
type FileOptions struct {
	// Passthrough columns are copied from the input to the output.
	Passthrough []string
	// RowGroups selects the input's row groups to score: "" (all), "N" or
	// "N-M" (inclusive; row groups count from 0).
	RowGroups string
	// Progress, when set, is called after each row group with the rows
	// scored so far and the rows selected.
	Progress func(done, total int64)
}

// File scores one Parquet file (or the row groups opts selects) with a
// loaded model, one row group at a time, and writes a Parquet file with the
// passthrough columns, the prediction, and the model name and version on
// every row. The output appears atomically. It returns the output's rows and
// SHA-256. Bad options or input (a missing column, a row group out of range)
// are errors naming the file for which BadInput is true.
func File(ctx context.Context, m *model.Model, name string, version int64, inPath, outPath string, opts FileOptions) (dataset.Info, error) {
	lo, hi, err := ParseRowGroups(opts.RowGroups)
	if err != nil {
		return dataset.Info{}, invalid("%s: %v", inPath, err)
	}
	sc, err := newScorer(m, name, version, opts.Passthrough, scoreBatchRows)
	if err != nil {
		return dataset.Info{}, invalid("%s: %v", inPath, err)
	}
	r, err := dataset.OpenParquet(inPath)
	if err != nil {
		if ctx.Err() != nil {
			return dataset.Info{}, ctx.Err()
		}
		return dataset.Info{}, &inputError{err}
	}
	defer r.Close()
	n := r.NumRowGroups()
	if hi < 0 {
		lo, hi = 0, n-1
	} else if hi >= n {
		return dataset.Info{}, invalid("%s: row_groups %q is out of range: the file has %d row groups%s", inPath, opts.RowGroups, n, groupRange(n))
	}
	if err := sc.check(inPath, r); err != nil {
		return dataset.Info{}, invalid("%v", err)
	}
	var total, first int64
	for g := 0; g <= hi; g++ {
		if g < lo {
			first += r.RowGroupRows(g)
		} else {
			total += r.RowGroupRows(g)
		}
	}
	w, err := dataset.CreateParquet(outPath, sc.out, sc.writerOptions())
	if err != nil {
		return dataset.Info{}, err
	}
	defer w.Abort()
	var done int64
	for g := lo; g <= hi; g++ {
		rows, err := sc.scoreRowGroup(ctx, r, g, first, w)
		if err != nil {
			return dataset.Info{}, classify(ctx, err)
		}
		first += rows
		done += rows
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return w.Commit()
}

// classify marks an error of scoreRowGroup that is about the data (a value,
// a corrupt page) as bad input (BadInput); a write failure or a
// cancellation is returned as it is.
func classify(ctx context.Context, err error) error {
	var de *dataError
	if ctx.Err() != nil || !errors.As(err, &de) && !isReadError(err) {
		return err
	}
	return &inputError{err}
}

// inputError marks bad input: options or data a retry does not fix.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// invalid returns a bad-input error.
func invalid(format string, args ...any) error { return &inputError{fmt.Errorf(format, args...)} }

// BadInput reports whether err is a problem with the scored data or the
// options (a missing column, a value that is not a number, a corrupt page,
// a row group out of range), which a retry does not fix.
func BadInput(err error) bool {
	var ie *inputError
	var de *dataError
	return errors.As(err, &ie) || errors.As(err, &de)
}

// isReadError reports whether err came from decoding the input (its
// message starts with "reading "): a corrupt file is not fixed by a retry.
func isReadError(err error) bool { return strings.HasPrefix(err.Error(), "reading ") }

// ParseRowGroups reads a row group selection: "" selects all (hi < 0), "N"
// row group N, "N-M" row groups N to M inclusive.
func ParseRowGroups(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, -1, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(first)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(last)
	}
	if err1 != nil || err2 != nil || lo < 0 || hi < lo || strings.HasPrefix(first, "+") || strings.HasPrefix(last, "+") {
		return 0, 0, fmt.Errorf("row_groups %q: want a row group N or a range N-M with 0 <= N <= M", s)
	}
	return lo, hi, nil
}

// groupRange describes the valid row group indexes of a file with n of them.
func groupRange(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return " (0)"
	}
	return fmt.Sprintf(" (0-%d)", n-1)
}
