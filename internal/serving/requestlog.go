package serving

import (
	"context"
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
// inputs, then LogFields. The model's name is the directory; its version
// and variant are columns.

// Request log columns written after the model's inputs. The prefix keeps
// them apart from any input column a model may have.
const (
	// LogPrediction is the prediction (Float64).
	LogPrediction = "_kiln_prediction"
	// LogVersion is the model version that served the row (Int64).
	LogVersion = "_kiln_model_version"
	// LogVariant is "stable" or "canary" (String).
	LogVariant = "_kiln_variant"
	// LogLatencyMs is the request's duration (as kiln_request_duration_seconds
	// measures it) divided by its rows, in milliseconds (Float64).
	LogLatencyMs = "_kiln_latency_ms"
	// LogTimeMs is when the request arrived, Unix milliseconds (Int64).
	LogTimeMs = "_kiln_ts_ms"
	// LogPredictionID is the prediction's ID, client-supplied or generated
	// (String). Files written before prediction IDs existed lack it:
	// ReadRequestLog returns it as nulls for them.
	LogPredictionID = "_kiln_prediction_id"
)

// LogFields are the request log's own columns, in file order. New columns
// are only ever appended, so readers that select columns by name or by
// position among these keep working.
var LogFields = []dataset.Field{
	{Name: LogPrediction, Type: dataset.Float64},
	{Name: LogVersion, Type: dataset.Int64},
	{Name: LogVariant, Type: dataset.String},
	{Name: LogLatencyMs, Type: dataset.Float64},
	{Name: LogTimeMs, Type: dataset.Int64},
	{Name: LogPredictionID, Type: dataset.String},
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
		// <ms>-<pid>-<seq>, and -<replica> on files shipped from other
		// machines (see ShippedLogName).
		parts := strings.SplitN(strings.TrimSuffix(name, ".parquet"), "-", 4)
		ms, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || ms < since.UnixMilli() {
			continue
		}
		f := file{key: [3]int64{ms, -1, -1}, path: filepath.Join(dir, model, name)}
		for i := 1; i < min(len(parts), 3); i++ {
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

// ReadRequestLog reads the named columns of one request log file (nil: all
// of them), in that order. A request log column (LogFields) that the file
// lacks because it was written by an older server (LogPredictionID before
// prediction IDs existed) is read as a column of nulls; with columns nil,
// such columns are appended, so every file reads with the current
// LogFields. Any other missing column is an error. The caller releases the
// record.
func ReadRequestLog(ctx context.Context, path string, columns []string) (arrow.Record, error) {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	schema := r.Schema()
	want := columns
	if want == nil {
		for _, f := range schema.Fields {
			want = append(want, f.Name)
		}
		for _, f := range LogFields {
			if schema.Index(f.Name) < 0 {
				want = append(want, f.Name)
			}
		}
	}
	logType := map[string]dataset.Type{}
	for _, f := range LogFields {
		logType[f.Name] = f.Type
	}
	var present []string
	for _, name := range want {
		if _, isLog := logType[name]; schema.Index(name) >= 0 || !isLog {
			present = append(present, name)
		}
	}
	rec, err := r.ReadAll(ctx, present)
	if err != nil {
		return nil, err
	}
	if len(present) == len(want) {
		return rec, nil
	}
	defer rec.Release()
	n := int(r.NumRows())
	out := dataset.Schema{Fields: make([]dataset.Field, 0, len(want))}
	cols := make([]arrow.Array, 0, len(want))
	j := 0
	for _, name := range want {
		if j < len(present) && present[j] == name {
			out.Fields = append(out.Fields, dataset.Field{Name: name, Type: typeOf(schema, name)})
			c := rec.Column(j)
			c.Retain()
			cols = append(cols, c)
			j++
			continue
		}
		t := logType[name]
		out.Fields = append(out.Fields, dataset.Field{Name: name, Type: t})
		cols = append(cols, nullColumn(t, n))
	}
	res, err := dataset.NewRecord(out, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return res, nil
}

func typeOf(s dataset.Schema, name string) dataset.Type {
	return s.Fields[s.Index(name)].Type
}

// nullColumn is a column of n nulls of type t.
func nullColumn(t dataset.Type, n int) arrow.Array {
	valid := make([]bool, n)
	switch t {
	case dataset.Float64:
		nan := make([]float64, n)
		for i := range nan {
			nan[i] = math.NaN()
		}
		return dataset.Float64ArrayNullNaN(nan)
	case dataset.Int64:
		return dataset.Int64Array(make([]int64, n), valid)
	case dataset.Bool:
		return dataset.BoolArray(make([]bool, n), valid)
	default:
		return dataset.StringArray(make([]string, n), valid)
	}
}

// logWriterOptions declare the log's own columns, never null, REQUIRED
// (cheaper to write and read; readers see the same types either way).
var logWriterOptions = func() dataset.WriterOptions {
	var o dataset.WriterOptions
	for _, f := range LogFields {
		o.Required = append(o.Required, f.Name)
	}
	return o
}()

// logChunkRows is how many rows a request log buffer holds in one chunk
// (logChunk), and so the rows of a request log file's row groups. A model
// version's buffer grows a chunk at a time and is written a row group at a
// time, pausing in between (logPause), because requests wait while the
// processor is busy with the log, all of them when the server has one core
// (GOMAXPROCS=1). With one slice per column for the whole buffer, each
// doubling of the columns copied megabytes inside one request (9 MB at 32k
// rows of 30 inputs), and the flush encoded 2 s of traffic as one row group:
// at 20,000 requests a second, execution traces showed the flusher running
// for up to 12 ms without a break. In chunks its longest run is one row
// group, and a flush of 40,000 rows takes less CPU (54-68 ms vs 65-87 ms,
// measured alternately, with 4,096-row chunks). 1,024 rows (well under a
// millisecond of encoding) took make bench-serve's p99 from 12.9 to 10.8 ms
// at the same throughput (BENCHMARKS.md, "Serving one row per request").
const logChunkRows = 1024

// logPause is how long a request log write pauses between row groups. A
// sleep, not runtime.Gosched: a goroutine that yields is run again before
// the scheduler polls the network, so requests waiting on their
// connections would keep waiting.
const logPause = time.Millisecond

// requestLog buffers served rows per model version and flushes them to Parquet.
type requestLog struct {
	dir     string
	maxRows int
	log     *slog.Logger
	mu      sync.Mutex
	bufs    map[logKey]*logBuffer
	pending int        // background writes of full buffers; guarded by mu
	idle    *sync.Cond // on mu; broadcast when pending drops to 0
	seq     int64
	flushMu sync.Mutex
	written func(model, path string) // Options.LogWritten
	proc    *logProc                 // Options.LogWriter's child, or nil
}

// ShippedLogName is the name, in a shared store, of the request log file
// name written by the model server replica: <ms>-<pid>-<seq>-<replica>.parquet,
// so that replicas on several machines never collide. RequestLogFiles
// orders such names like the local ones.
func ShippedLogName(name, replica string) string {
	return strings.TrimSuffix(name, ".parquet") + "-" + replica + ".parquet"
}

func newRequestLog(dir string, maxRows int, log *slog.Logger) *requestLog {
	l := &requestLog{dir: dir, maxRows: maxRows, log: log, bufs: map[logKey]*logBuffer{}}
	l.idle = sync.NewCond(&l.mu)
	return l
}

// logKey names a model version's buffer.
type logKey struct {
	model   string
	version int64
}

// logBuffer holds one model version's rows, in chunks of at most
// logChunkRows rows.
type logBuffer struct {
	model  string
	inputs []dataset.Field
	rows   int
	chunks []*logChunk // the last one is being filled
}

// logChunk holds rows column by column.
type logChunk struct {
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
	ids     []string
}

func newLogBuffer(model string, inputs []dataset.Field) *logBuffer {
	return &logBuffer{model: model, inputs: inputs}
}

// chunk returns the chunk to append a row to, adding one when the last is
// full. The first chunk grows as rows come; later ones (a busy version's)
// are allocated whole.
func (b *logBuffer) chunk() *logChunk {
	if n := len(b.chunks); n > 0 && len(b.chunks[n-1].pred) < logChunkRows {
		return b.chunks[n-1]
	}
	size := 0
	if len(b.chunks) > 0 {
		size = logChunkRows
	}
	n := len(b.inputs)
	c := &logChunk{floats: make([][]float64, n), ints: make([][]int64, n), strs: make([][]string, n),
		bools: make([][]bool, n), valid: make([][]bool, n),
		pred: make([]float64, 0, size), version: make([]int64, 0, size), variant: make([]string, 0, size),
		latency: make([]float64, 0, size), ts: make([]int64, 0, size), ids: make([]string, 0, size)}
	for j, f := range b.inputs {
		switch f.Type {
		case dataset.Float64:
			c.floats[j] = make([]float64, 0, size)
		case dataset.Int64:
			c.ints[j] = make([]int64, 0, size)
		case dataset.Bool:
			c.bools[j] = make([]bool, 0, size)
		default:
			c.strs[j] = make([]string, 0, size)
		}
		if f.Type != dataset.Float64 {
			c.valid[j] = make([]bool, 0, size)
		}
	}
	b.chunks = append(b.chunks, c)
	return c
}

// buffer locks l.mu and returns the buffer of model name's version
// (served by m), added when it has none.
func (l *requestLog) buffer(name string, version int64, m *model.Model) (logKey, *logBuffer) {
	key := logKey{name, version}
	l.mu.Lock()
	b := l.bufs[key]
	if b == nil {
		b = newLogBuffer(name, m.Manifest.Inputs)
		l.bufs[key] = b
	}
	return key, b
}

func (l *requestLog) add(name string, version int64, variant string, m *model.Model, rows []map[string]any, preds []float64, ids []string, el time.Duration, at time.Time) {
	key, b := l.buffer(name, version, m)
	latency := float64(el) / 1e6 / float64(len(rows))
	ms := at.UnixMilli()
	for i, row := range rows {
		c := b.chunk()
		for j, f := range b.inputs {
			v, ok := row[f.Name]
			c.append(j, f.Type, v, ok)
		}
		c.appendMeta(preds[i], version, variant, latency, ms, ids[i])
	}
	l.filled(key, b, len(rows))
}

// filled ends an add of n rows to b (l.mu held; it unlocks it): a buffer
// that is full is written in the background.
func (l *requestLog) filled(key logKey, b *logBuffer, n int) {
	b.rows += n
	full := b.rows >= l.maxRows
	if full {
		delete(l.bufs, key)
		l.pending++
	}
	l.mu.Unlock()
	if full {
		go func() {
			if err := l.write(b); err != nil {
				l.log.Error("request log: rows lost", "model", b.model, "rows", b.rows, "error", err)
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

// appendMeta stores a row's log columns (LogFields).
func (c *logChunk) appendMeta(pred float64, version int64, variant string, latency float64, ms int64, id string) {
	c.pred = append(c.pred, pred)
	c.version = append(c.version, version)
	c.variant = append(c.variant, variant)
	c.latency = append(c.latency, latency)
	c.ts = append(c.ts, ms)
	c.ids = append(c.ids, id)
}

// append stores one value; values that do not fit the column's type are logged as null.
func (c *logChunk) append(j int, t dataset.Type, v any, present bool) {
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
		c.floats[j] = append(c.floats[j], x)
	case dataset.Int64:
		n, ok := v.(float64)
		c.ints[j] = append(c.ints[j], int64(n))
		c.valid[j] = append(c.valid[j], present && ok)
	case dataset.Bool:
		x, ok := v.(bool)
		c.bools[j] = append(c.bools[j], x)
		c.valid[j] = append(c.valid[j], present && ok)
	default:
		s, ok := v.(string)
		c.strs[j] = append(c.strs[j], s)
		c.valid[j] = append(c.valid[j], present && ok)
	}
}

// record returns the chunk's rows as a record of schema (the inputs, then
// LogFields).
func (c *logChunk) record(inputs []dataset.Field, schema dataset.Schema) (arrow.Record, error) {
	cols := make([]arrow.Array, 0, len(schema.Fields))
	for j, f := range inputs {
		switch f.Type {
		case dataset.Float64:
			cols = append(cols, dataset.Float64ArrayNullNaN(c.floats[j]))
		case dataset.Int64:
			cols = append(cols, dataset.Int64Array(c.ints[j], c.valid[j]))
		case dataset.Bool:
			cols = append(cols, dataset.BoolArray(c.bools[j], c.valid[j]))
		default:
			cols = append(cols, dataset.StringArray(c.strs[j], c.valid[j]))
		}
	}
	cols = append(cols, dataset.Float64Array(c.pred), dataset.Int64Array(c.version, nil),
		dataset.StringArray(c.variant, nil), dataset.Float64Array(c.latency), dataset.Int64Array(c.ts, nil),
		dataset.StringArray(c.ids, nil))
	rec, err := dataset.NewRecord(schema, cols)
	for _, a := range cols {
		a.Release()
	}
	return rec, err
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
	if l.proc != nil {
		if perr := l.proc.close(); perr != nil && err == nil {
			err = fmt.Errorf("request log writer: %w", perr)
		}
	}
	return err
}

// flushAll writes every buffered row.
func (l *requestLog) flushAll() error {
	l.mu.Lock()
	bufs := l.bufs
	l.bufs = map[logKey]*logBuffer{}
	l.mu.Unlock()
	var first error
	for _, b := range bufs {
		if err := l.write(b); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// write flushes one buffer to a new Parquet file, one row group per chunk.
func (l *requestLog) write(b *logBuffer) error {
	if b.rows == 0 {
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
	if l.proc != nil {
		sent, err := l.proc.trySend(b, path)
		switch {
		case sent && err == nil:
			return nil // the child reports the file once it is whole
		case err != nil:
			l.log.Warn("request log: writing in this process", "error", err)
		}
	}
	schema := dataset.Schema{Fields: append(append([]dataset.Field{}, b.inputs...), LogFields...)}
	w, err := dataset.CreateParquet(path, schema, logWriterOptions)
	if err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	defer w.Abort()
	for k, c := range b.chunks {
		if k > 0 {
			time.Sleep(logPause) // let requests run (see logChunkRows)
		}
		rec, err := c.record(b.inputs, schema)
		if err != nil {
			return fmt.Errorf("request log of %s: %w", b.model, err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("request log of %s: %w", b.model, err)
		}
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("request log of %s: %w", b.model, err)
	}
	if l.written != nil {
		l.written(b.model, path)
	}
	return nil
}
