//go:build !kilnlite

package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
)

// Flavor is the runtime's flavour: "full" (CSV, JSON Lines and Parquet,
// --serve) or "lite" (-tags kilnlite: CSV and JSON Lines only).
const Flavor = "full"

// errNoParquet is what a lite predictor says when asked for Parquet; the
// full one never returns it.
var errNoParquet error

// scoreViaParquet scores with the batch scorer (package scorer) when the
// input or the output is Parquet: a CSV or JSON Lines input is converted
// to Parquet first (ingest's readers), and a CSV or JSON Lines output is
// converted from the scored Parquet.
func scoreViaParquet(ctx context.Context, s *rowScorer, o Options, in io.Reader, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "kiln-predict-")
	if err != nil {
		return fmt.Errorf("a temporary directory for Parquet: %w", err)
	}
	defer os.RemoveAll(tmp)
	inPath := o.Input
	if o.Format == FormatParquet && (inPath == "" || inPath == "-") {
		inPath = filepath.Join(tmp, "stdin.parquet") // Parquet is read from its end
		if err := copyToFile(inPath, in); err != nil {
			return err
		}
	}
	if o.Format != FormatParquet {
		src := o.Input
		if src == "" || src == "-" {
			src = filepath.Join(tmp, "stdin."+o.Format)
			if err := copyToFile(src, in); err != nil {
				return err
			}
		}
		inPath = filepath.Join(tmp, "in.parquet")
		if o.Format == FormatCSV {
			_, err = dataset.CSVToParquet(ctx, src, inPath, dataset.CSVOptions{})
		} else {
			_, err = dataset.JSONLToParquet(ctx, src, inPath, dataset.JSONLOptions{})
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", displayName(o.Input), err)
		}
	}
	outPath := o.Output
	if o.OutputFormat != FormatParquet {
		outPath = filepath.Join(tmp, "out.parquet")
	}
	if _, err := scorer.File(ctx, s.m, s.name, s.version, inPath, outPath, scorer.FileOptions{Passthrough: s.pass}); err != nil {
		return err
	}
	if o.OutputFormat == FormatParquet {
		return nil
	}
	return writeRowsFrom(ctx, outPath, o.OutputFormat, out, s)
}

func displayName(input string) string {
	if input == "" || input == "-" {
		return "stdin"
	}
	return input
}

// copyToFile writes r to path.
func copyToFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("reading stdin: %w", err)
	}
	return f.Close()
}

// writeRowsFrom writes the scored Parquet file at path as CSV or JSON Lines.
func writeRowsFrom(ctx context.Context, path, format string, out io.Writer, s *rowScorer) error {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(out, 1<<16)
	w := newRowWriter(format, bw, s)
	if err := w.header(); err != nil {
		return err
	}
	cols := append(append([]string{}, s.pass...), "prediction")
	classes := w.classes()
	for _, c := range classes {
		cols = append(cols, probabilityPrefix+c)
	}
	for g := 0; g < r.NumRowGroups(); g++ {
		err := r.ScanRowGroup(ctx, g, cols, batchRows, func(rec arrow.Record) error {
			n := int(rec.NumRows())
			pred := rec.Column(len(s.pass))
			for i := 0; i < n; i++ {
				pass := make([]any, len(s.pass))
				for k := range s.pass {
					if v, ok := dataset.Value(rec.Column(k), i); ok {
						pass[k] = v
					}
				}
				v, _ := dataset.Value(pred, i)
				p, _ := v.(float64)
				var proba []float64
				if classes != nil {
					label, _ := v.(string)
					p = float64(slices.Index(classes, label))
					proba = make([]float64, len(classes))
					for c := range classes {
						q, _ := dataset.Value(rec.Column(len(s.pass)+1+c), i)
						proba[c], _ = q.(float64)
					}
				}
				if err := w.write(pass, p, proba); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	return bw.Flush()
}
