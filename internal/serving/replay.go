package serving

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// ReplayOptions shape a replay.
type ReplayOptions struct {
	// Rate is requests per second; 0 means as fast as possible.
	Rate float64
	// Duration stops the replay after this long; 0 means no time limit.
	Duration time.Duration
	// Limit stops after this many requests; 0 with Duration 0 means one pass over the rows.
	Limit int
	// Workers send requests concurrently; default 4.
	Workers int
	// Batch is rows per request; default 1.
	Batch int
}

// ReplayStats summarise a replay.
type ReplayStats struct {
	Requests  int64           `json:"requests"`
	Rows      int64           `json:"rows"`
	Errors    int64           `json:"errors"`
	ByVersion map[int64]int64 `json:"by_version"`
	Elapsed   time.Duration   `json:"elapsed"`
	LastError string          `json:"last_error,omitempty"`
}

// Replay sends rows to a model as prediction requests, cycling through them.
func Replay(ctx context.Context, c *Client, model string, rows []map[string]any, opts ReplayOptions) (ReplayStats, error) {
	st := ReplayStats{ByVersion: map[int64]int64{}}
	if len(rows) == 0 {
		return st, fmt.Errorf("no rows to replay")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Batch <= 0 {
		opts.Batch = 1
	}
	limit := opts.Limit
	if limit == 0 && opts.Duration == 0 {
		limit = (len(rows) + opts.Batch - 1) / opts.Batch
	}
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	jobs := make(chan []map[string]any)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range jobs {
				resp, err := c.Predict(ctx, model, batch)
				mu.Lock()
				st.Requests++
				st.Rows += int64(len(batch))
				if err != nil {
					if ctx.Err() == nil {
						st.Errors++
						st.LastError = err.Error()
					} else {
						st.Requests--
						st.Rows -= int64(len(batch))
					}
				} else {
					st.ByVersion[resp.ModelVersion]++
				}
				mu.Unlock()
			}
		}()
	}
	var tick *time.Ticker
	// A rate above one request per nanosecond cannot be paced (and would
	// make NewTicker panic); it means as fast as possible.
	if opts.Rate > 0 {
		if every := time.Duration(float64(time.Second) / opts.Rate); every > 0 {
			tick = time.NewTicker(every)
			defer tick.Stop()
		}
	}
	i := 0
loop:
	for n := 0; limit == 0 || n < limit; n++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
			}
		}
		batch := make([]map[string]any, 0, opts.Batch)
		for len(batch) < opts.Batch {
			batch = append(batch, rows[i%len(rows)])
			i++
		}
		select {
		case <-ctx.Done():
			break loop
		case jobs <- batch:
		}
	}
	close(jobs)
	wg.Wait()
	st.Elapsed = time.Since(start)
	return st, nil
}

// RowsFromRecord turns a record into request rows: numbers as float64,
// strings, bools, and nil for nulls (JSON's types).
func RowsFromRecord(rec arrow.Record) ([]map[string]any, error) {
	n := int(rec.NumRows())
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = make(map[string]any, rec.NumCols())
	}
	for j, f := range rec.Schema().Fields() {
		col := rec.Column(j)
		for i := 0; i < n; i++ {
			if col.IsNull(i) {
				rows[i][f.Name] = nil
				continue
			}
			switch c := col.(type) {
			case *array.Float64:
				if v := c.Value(i); !math.IsNaN(v) && !math.IsInf(v, 0) {
					rows[i][f.Name] = v
				} else {
					rows[i][f.Name] = nil
				}
			case *array.Int64:
				rows[i][f.Name] = float64(c.Value(i))
			case *array.String:
				rows[i][f.Name] = c.Value(i)
			case *array.Boolean:
				rows[i][f.Name] = c.Value(i)
			default:
				return nil, fmt.Errorf("column %s: unsupported type %s", f.Name, col.DataType())
			}
		}
	}
	return rows, nil
}
