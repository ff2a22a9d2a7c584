package activities

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/dataset"
)

// wantsCSV reports whether a trainer image asks for CSV copies of its
// inputs through the label io.kiln.inputs (a comma-separated list of
// formats, e.g. "csv").
func wantsCSV(labels map[string]string) bool {
	for _, f := range strings.Split(labels[containers.LabelInputs], ",") {
		if strings.EqualFold(strings.TrimSpace(f), "csv") {
			return true
		}
	}
	return false
}

// writeInputCSV writes the Parquet file src as the CSV file dst for trainers
// that cannot read Parquet: a header line, then one line per row with
// columns in order (the features, then the target), numbers in the shortest
// form that reads back to the same float64, and nulls and NaN as empty
// fields. The file is written under a temporary name and renamed; it is
// read one row group at a time.
func writeInputCSV(ctx context.Context, src, dst string, columns []string) (err error) {
	r, err := dataset.OpenParquet(src)
	if err != nil {
		return err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	for i, c := range columns {
		if strings.ContainsAny(c, ",\"\r\n") {
			return fmt.Errorf("writing %s: column name %q cannot be written to CSV unquoted", dst, c)
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(c)
	}
	w.WriteByte('\n')
	var buf []byte
	for g := range r.NumRowGroups() {
		rec, err := r.ReadRowGroup(ctx, g, columns)
		if err != nil {
			return fmt.Errorf("reading %s row group %d: %w", src, g, err)
		}
		cols := make([][]float64, len(columns))
		for j, c := range columns {
			if cols[j], err = dataset.Float64s(rec, c); err != nil {
				rec.Release()
				return fmt.Errorf("reading %s row group %d: %w", src, g, err)
			}
		}
		rows := int(rec.NumRows())
		rec.Release()
		for row := range rows {
			buf = buf[:0]
			for j := range cols {
				if j > 0 {
					buf = append(buf, ',')
				}
				if v := cols[j][row]; !math.IsNaN(v) {
					buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
				}
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("writing %s: %w", dst, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// csvColumns returns the columns of the CSV inputs: the features, then the
// target.
func csvColumns(prep *PreparedRef) []string {
	return append(slices.Clone(prep.Features), prep.Target)
}
