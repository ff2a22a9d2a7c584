package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/internal/dataset/schema"
	"github.com/kiln-ml/kiln/internal/model"
)

// batchRows is how many rows a predictor reads before predicting them.
const batchRows = 4096

// rowScorer predicts rows read as CSV or JSON Lines, as the model server
// does (model.PredictRows), and writes them as CSV or JSON Lines.
type rowScorer struct {
	m       *model.Model
	name    string
	version int64
	pass    []string
}

// stream scores rows of format inFmt from in into out (format outFmt).
func (s *rowScorer) stream(ctx context.Context, inFmt, outFmt string, in io.Reader, out io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<16)
	w := newRowWriter(outFmt, bw, s)
	rows := make([]map[string]any, 0, batchRows)
	passVals := make([][]any, 0, batchRows)
	first := 0 // the data row number of rows[0], from 1
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sc, err := s.m.ScoreRows(rows)
		if err != nil {
			return fmt.Errorf("rows %d-%d: %w", first, first+len(rows)-1, err)
		}
		k := s.m.NumClass()
		for i, p := range sc.Values {
			var proba []float64
			if k > 0 {
				proba = sc.Proba[i*k : (i+1)*k]
			}
			if err := w.write(passVals[i], p, proba); err != nil {
				return err
			}
		}
		first += len(rows)
		rows, passVals = rows[:0], passVals[:0]
		return nil
	}
	add := func(row map[string]any, pass []any) error {
		if first == 0 {
			first = 1
		}
		rows = append(rows, row)
		passVals = append(passVals, pass)
		if len(rows) == batchRows {
			return flush()
		}
		return nil
	}
	var err error
	if inFmt == FormatCSV {
		err = s.readCSV(in, w, add)
	} else {
		err = s.readJSONL(in, w, add)
	}
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = w.flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	return err
}

// readCSV reads CSV rows (a header first) and parses each model input by
// its type, as ingest would (trimmed; "", NA, NaN, null, ... are missing).
func (s *rowScorer) readCSV(in io.Reader, w *rowWriter, add func(map[string]any, []any) error) error {
	r := csv.NewReader(bufio.NewReaderSize(in, 1<<16))
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return w.header()
	}
	if err != nil {
		return fmt.Errorf("reading the CSV header: %w", err)
	}
	idx := map[string]int{}
	for i, h := range header {
		idx[strings.TrimSpace(h)] = i
	}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.TrimSpace(h)
	}
	inputs := s.m.Manifest.Inputs
	cols := make([]int, len(inputs))
	for j, f := range inputs {
		i, ok := idx[f.Name]
		if !ok {
			return fmt.Errorf("the model needs column %q (%s), which the input lacks (columns: %s)", f.Name, f.Type, strings.Join(names, ", "))
		}
		cols[j] = i
	}
	pcols, err := passIndexes(s.pass, idx, names)
	if err != nil {
		return err
	}
	if err := w.header(); err != nil {
		return err
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading CSV: %w", err)
		}
		row := make(map[string]any, len(inputs))
		for j, f := range inputs {
			v, err := csvValue(f.Type, rec[cols[j]])
			if err != nil {
				return fmt.Errorf("line %d, column %q: %w", line, f.Name, err)
			}
			row[f.Name] = v
		}
		pass := make([]any, len(pcols))
		for k, c := range pcols {
			pass[k] = rec[c]
		}
		if err := add(row, pass); err != nil {
			return err
		}
	}
}

// passIndexes finds the passthrough columns among the input's.
func passIndexes(pass []string, idx map[string]int, names []string) ([]int, error) {
	out := make([]int, len(pass))
	for k, c := range pass {
		i, ok := idx[c]
		if !ok {
			return nil, fmt.Errorf("passthrough column %q not found (columns: %s)", c, strings.Join(names, ", "))
		}
		out[k] = i
	}
	return out, nil
}

// csvValue parses one CSV field for an input of type t.
func csvValue(t schema.Type, raw string) (any, error) {
	v := strings.TrimSpace(raw)
	if schema.IsNullToken(v) {
		return nil, nil
	}
	switch t {
	case schema.Float64, schema.Int64:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", raw)
		}
		return x, nil
	case schema.Bool:
		switch strings.ToLower(v) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", raw)
	}
	return v, nil
}

// readJSONL reads one JSON object per line (blank lines are skipped), as
// the model server decodes an instance.
func (s *rowScorer) readJSONL(in io.Reader, w *rowWriter, add func(map[string]any, []any) error) error {
	if err := w.header(); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal(b, &row); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if row == nil {
			return fmt.Errorf("line %d: want a JSON object of column values", line)
		}
		for _, f := range s.m.Manifest.Inputs {
			if _, ok := row[f.Name]; !ok {
				return fmt.Errorf("line %d: the model needs column %q (%s), which the row lacks", line, f.Name, f.Type)
			}
		}
		pass := make([]any, len(s.pass))
		for k, c := range s.pass {
			v, ok := row[c]
			if !ok {
				return fmt.Errorf("line %d: passthrough column %q not found", line, c)
			}
			pass[k] = v
		}
		if err := add(row, pass); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading JSON Lines: %w", err)
	}
	return nil
}

// rowWriter writes scored rows: the passthrough values, the prediction,
// the model name and its version.
type rowWriter struct {
	format string
	w      *bufio.Writer
	csv    *csv.Writer
	s      *rowScorer
	keys   []string // JSON-encoded column names (JSON Lines)
	ver    string
}

func newRowWriter(format string, w *bufio.Writer, s *rowScorer) *rowWriter {
	rw := &rowWriter{format: format, w: w, s: s, ver: strconv.FormatInt(s.version, 10)}
	if format == FormatCSV {
		rw.csv = csv.NewWriter(w)
	}
	for _, c := range s.pass {
		k, _ := json.Marshal(c)
		rw.keys = append(rw.keys, string(k))
	}
	return rw
}

func (rw *rowWriter) header() error {
	if rw.csv == nil {
		return nil
	}
	head := append(append([]string{}, rw.s.pass...), "prediction")
	for _, c := range rw.classes() {
		head = append(head, probabilityPrefix+c)
	}
	return rw.csv.Write(append(head, "model", "model_version"))
}

// probabilityPrefix starts a multiclass model's per-class probability
// columns, as in batch scoring's output.
const probabilityPrefix = "probability_"

// classes are a multiclass model's classes, nil for the other tasks.
func (rw *rowWriter) classes() []string {
	if rw.s.m.NumClass() == 0 {
		return nil
	}
	return rw.s.m.Manifest.Classes
}

// write writes one scored row: pred is the prediction (a multiclass
// model's class index, written as the class's name) and proba a multiclass
// model's class probabilities (nil for the other tasks).
func (rw *rowWriter) write(pass []any, pred float64, proba []float64) error {
	p := strconv.FormatFloat(pred, 'g', -1, 64)
	classes := rw.classes()
	if classes != nil {
		p = rw.s.m.ClassOf(pred)
	}
	if rw.csv != nil {
		rec := make([]string, 0, len(pass)+3+len(proba))
		for _, v := range pass {
			rec = append(rec, csvText(v))
		}
		rec = append(rec, p)
		for _, q := range proba {
			rec = append(rec, strconv.FormatFloat(q, 'g', -1, 64))
		}
		return rw.csv.Write(append(rec, rw.s.name, rw.ver))
	}
	rw.w.WriteByte('{')
	for k, v := range pass {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("passthrough column %s: %w", rw.keys[k], err)
		}
		rw.w.WriteString(rw.keys[k])
		rw.w.WriteByte(':')
		rw.w.Write(b)
		rw.w.WriteByte(',')
	}
	name, _ := json.Marshal(rw.s.name)
	if classes != nil {
		label, _ := json.Marshal(p)
		fmt.Fprintf(rw.w, `"prediction":%s,`, label)
		for c, q := range proba {
			key, _ := json.Marshal(probabilityPrefix + classes[c])
			fmt.Fprintf(rw.w, `%s:%s,`, key, strconv.FormatFloat(q, 'g', -1, 64))
		}
		fmt.Fprintf(rw.w, `"model":%s,"model_version":%s}`+"\n", name, rw.ver)
		return nil
	}
	fmt.Fprintf(rw.w, `"prediction":%s,"model":%s,"model_version":%s}`+"\n", p, name, rw.ver)
	return nil
}

func (rw *rowWriter) flush() error {
	if rw.csv != nil {
		rw.csv.Flush()
		return rw.csv.Error()
	}
	return nil
}

// csvText is a value as CSV text: strings as they are, numbers in the
// shortest form that reads back the same, null as empty.
func csvText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
