package serving

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// Request log files are <dir>/<model>/<unix-ms>-<pid>-<seq>.parquet: one file
// per flush of one model version's buffer, written to a temporary name and
// renamed, so readers only ever see whole files. Columns: the model's raw
// inputs, then LogFields.

// Request log columns written after the model's inputs. The prefix keeps
// them apart from any input column a model may have.
const (
	LogPrediction = "_kiln_prediction"
	LogVersion    = "_kiln_model_version"
	LogVariant    = "_kiln_variant"
	LogLatencyMs  = "_kiln_latency_ms"
	LogTimeMs     = "_kiln_ts_ms"
)

// LogFields are the request log's own columns, in file order.
var LogFields = []dataset.Field{
	{Name: LogPrediction, Type: dataset.Float64},
	{Name: LogVersion, Type: dataset.Int64},
	{Name: LogVariant, Type: dataset.String},
	{Name: LogLatencyMs, Type: dataset.Float64},
	{Name: LogTimeMs, Type: dataset.Int64},
}

// RequestLogFiles lists a model's request log files written at or after
// since, oldest first.
func RequestLogFiles(dir, model string, since time.Time) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, model))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing request logs of %s: %w", model, err)
	}
	type file struct {
		key  [3]int64 // ms, pid, seq; -1 where the name has no number
		path string
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".parquet") {
			continue
		}
		parts := strings.SplitN(strings.TrimSuffix(name, ".parquet"), "-", 3)
		ms, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || ms < since.UnixMilli() {
			continue
		}
		f := file{key: [3]int64{ms, -1, -1}, path: filepath.Join(dir, model, name)}
		for i := 1; i < len(parts); i++ {
			if n, err := strconv.ParseInt(parts[i], 10, 64); err == nil {
				f.key[i] = n
			}
		}
		files = append(files, f)
	}
	// Numeric order, so that seq 10 follows seq 9 of the same millisecond.
	sort.Slice(files, func(i, j int) bool {
		if c := slices.Compare(files[i].key[:], files[j].key[:]); c != 0 {
			return c < 0
		}
		return files[i].path < files[j].path
	})
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out, nil
}

// requestLog buffers served rows per model version and flushes them to Parquet.
type requestLog struct {
	dir     string
	maxRows int
	log     *slog.Logger
	mu      sync.Mutex
	bufs    map[string]*logBuffer // key: model/version
	pending int                   // background writes of full buffers; guarded by mu
	idle    *sync.Cond            // on mu; broadcast when pending drops to 0
	seq     int64
	flushMu sync.Mutex
}

func newRequestLog(dir string, maxRows int, log *slog.Logger) *requestLog {
	l := &requestLog{dir: dir, maxRows: maxRows, log: log, bufs: map[string]*logBuffer{}}
	l.idle = sync.NewCond(&l.mu)
	return l
}

// logBuffer holds one model version's rows column by column.
type logBuffer struct {
	model   string
	inputs  []dataset.Field
	floats  [][]float64 // per input: Float64 values (NaN = null)
	ints    [][]int64
	strs    [][]string
	bools   [][]bool
	valid   [][]bool
	pred    []float64
	version []int64
	variant []string
	latency []float64
	ts      []int64
}

func newLogBuffer(model string, inputs []dataset.Field) *logBuffer {
	n := len(inputs)
	return &logBuffer{model: model, inputs: inputs, floats: make([][]float64, n), ints: make([][]int64, n),
		strs: make([][]string, n), bools: make([][]bool, n), valid: make([][]bool, n)}
}

func (l *requestLog) add(name string, version int64, variant string, m *model.Model, rows []map[string]any, preds []float64, el time.Duration, at time.Time) {
	key := name + "/" + strconv.FormatInt(version, 10)
	l.mu.Lock()
	b := l.bufs[key]
	if b == nil {
		b = newLogBuffer(name, m.Manifest.Inputs)
		l.bufs[key] = b
	}
	latency := float64(el) / 1e6 / float64(len(rows))
	for i, row := range rows {
		for j, f := range b.inputs {
			v, ok := row[f.Name]
			b.append(j, f.Type, v, ok)
		}
		b.pred = append(b.pred, preds[i])
		b.version = append(b.version, version)
		b.variant = append(b.variant, variant)
		b.latency = append(b.latency, latency)
		b.ts = append(b.ts, at.UnixMilli())
	}
	full := len(b.pred) >= l.maxRows
	if full {
		delete(l.bufs, key)
		l.pending++
	}
	l.mu.Unlock()
	if full {
		go func() {
			if err := l.write(b); err != nil {
				l.log.Error("request log: rows lost", "model", b.model, "rows", len(b.pred), "error", err)
			}
			l.mu.Lock()
			l.pending--
			if l.pending == 0 {
				l.idle.Broadcast()
			}
			l.mu.Unlock()
		}()
	}
}

// append stores one value; values that do not fit the column's type are logged as null.
func (b *logBuffer) append(j int, t dataset.Type, v any, present bool) {
	switch t {
	case dataset.Float64:
		x := math.NaN()
		switch n := v.(type) {
		case float64:
			x = n
		case bool:
			if n {
				x = 1
			} else {
				x = 0
			}
		}
		b.floats[j] = append(b.floats[j], x)
	case dataset.Int64:
		n, ok := v.(float64)
		b.ints[j] = append(b.ints[j], int64(n))
		b.valid[j] = append(b.valid[j], present && ok)
	case dataset.Bool:
		x, ok := v.(bool)
		b.bools[j] = append(b.bools[j], x)
		b.valid[j] = append(b.valid[j], present && ok)
	default:
		s, ok := v.(string)
		b.strs[j] = append(b.strs[j], s)
		b.valid[j] = append(b.valid[j], present && ok)
	}
}

// close writes the buffered rows and waits for the background writes of
// full buffers, so every row served so far is on disk when it returns.
func (l *requestLog) close() error {
	err := l.flushAll()
	l.mu.Lock()
	for l.pending > 0 {
		l.idle.Wait()
	}
	l.mu.Unlock()
	return err
}

// flushAll writes every buffered row.
func (l *requestLog) flushAll() error {
	l.mu.Lock()
	bufs := l.bufs
	l.bufs = map[string]*logBuffer{}
	l.mu.Unlock()
	var first error
	for _, b := range bufs {
		if err := l.write(b); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// write flushes one buffer to a new Parquet file.
func (l *requestLog) write(b *logBuffer) error {
	if len(b.pred) == 0 {
		return nil
	}
	l.flushMu.Lock()
	l.seq++
	seq := l.seq
	l.flushMu.Unlock()
	dir := filepath.Join(l.dir, b.model)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%d-%d-%d.parquet", time.Now().UnixMilli(), os.Getpid(), seq))
	fields := append(append([]dataset.Field{}, b.inputs...), LogFields...)
	cols := make([]arrow.Array, 0, len(fields))
	for j, f := range b.inputs {
		switch f.Type {
		case dataset.Float64:
			cols = append(cols, dataset.Float64ArrayNullNaN(b.floats[j]))
		case dataset.Int64:
			cols = append(cols, dataset.Int64Array(b.ints[j], b.valid[j]))
		case dataset.Bool:
			cols = append(cols, dataset.BoolArray(b.bools[j], b.valid[j]))
		default:
			cols = append(cols, dataset.StringArray(b.strs[j], b.valid[j]))
		}
	}
	cols = append(cols, dataset.Float64Array(b.pred), dataset.Int64Array(b.version, nil),
		dataset.StringArray(b.variant, nil), dataset.Float64Array(b.latency), dataset.Int64Array(b.ts, nil))
	schema := dataset.Schema{Fields: fields}
	rec, err := dataset.NewRecord(schema, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	defer rec.Release()
	w, err := dataset.CreateParquet(path, schema, dataset.WriterOptions{})
	if err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	defer w.Abort()
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	return nil
}
