package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// Ingest reads the step's source (CSV, JSON Lines or Parquet; a local path,
// a file://, http(s):// or object-store (s3://, gs://) URL) into a content-addressed Parquet dataset
// datasets/<sha256>.parquet and checks the expectations in one streaming
// pass, publishing their report under reports/expectations/. It is cached
// (see cache.go) by its configuration and the source's SHA-256 and format.
func (a *Activities) Ingest(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg := in.Step.Ingest
	if cfg == nil {
		return StepOutput{}, invalid("step %q has no ingest config", in.Step.Name)
	}
	pl := startPulse(ctx, Progress{Msg: "opening " + cfg.Source})
	defer pl.stop()
	src, cleanup, err := a.fetchSource(ctx, pl, cfg.Source, in.Run.SpecDir)
	if err != nil {
		return StepOutput{}, err
	}
	defer cleanup()
	if _, err := os.Stat(src); err != nil {
		return StepOutput{}, invalid("ingest source %s: %v", src, err)
	}
	format := cfg.Format
	if format == "" {
		format = pipelines.FormatOf(cfg.Source)
	}
	if format != "csv" && format != "parquet" && format != "jsonl" {
		return StepOutput{}, invalid("ingest %s: unknown format %q (csv, jsonl or parquet)", cfg.Source, format)
	}
	pl.set(Progress{Msg: "hashing " + filepath.Base(src)})
	sum, err := dataset.HashFile(src)
	if err != nil {
		return StepOutput{}, badInput(ctx, err)
	}
	inputs := map[string]string{"source_sha256": sum, "format": format}
	var extras []string
	for i, uri := range in.Run.AppendData {
		p, err := a.Store.Local(ctx, uri)
		if err != nil {
			return StepOutput{}, invalid("appended data %s: %v", artifact.Redact(uri), err)
		}
		h, err := dataset.HashFile(p)
		if err != nil {
			return StepOutput{}, badInput(ctx, fmt.Errorf("appended data: %w", err))
		}
		inputs[fmt.Sprintf("append_%d_sha256", i)] = h
		extras = append(extras, p)
	}
	key, err := stepKey(pipelines.StepIngest, ingestImplVersion, cfg, inputs, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.ingest(ctx, pl, cfg, src, format, extras) })
}

// ingest converts src, in format, to the content-addressed dataset and
// checks the expectations of cfg.
func (a *Activities) ingest(ctx context.Context, pl *pulse, cfg *pipelines.IngestConfig, src, format string, extras []string) (StepOutput, error) {
	tmp, err := a.Store.TempDir("ingest")
	if err != nil {
		return StepOutput{}, err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "data.parquet")
	pl.set(Progress{Msg: "reading " + filepath.Base(src)})

	types := make(map[string]dataset.Type, len(cfg.Schema))
	for name, t := range cfg.Schema {
		types[name] = dataset.Type(t)
	}
	if len(types) > 0 && format == "parquet" {
		return StepOutput{}, invalid("ingest %s: schema overrides apply to csv and jsonl sources, not parquet", cfg.Source)
	}
	var info dataset.Info
	switch format {
	case "csv":
		info, err = dataset.CSVToParquet(ctx, src, dst, dataset.CSVOptions{Types: types})
	case "jsonl":
		info, err = dataset.JSONLToParquet(ctx, src, dst, dataset.JSONLOptions{Types: types})
	case "parquet":
		info, err = copyParquet(ctx, src, dst)
	default:
		return StepOutput{}, invalid("ingest %s: unknown format %q (csv, jsonl or parquet)", src, format)
	}
	if err != nil {
		return StepOutput{}, badInput(ctx, err)
	}
	if len(extras) > 0 {
		pl.set(Progress{Msg: fmt.Sprintf("appending %d file(s) of new rows", len(extras))})
		combined := filepath.Join(tmp, "appended.parquet")
		if info, err = appendRows(ctx, dst, extras, combined); err != nil {
			return StepOutput{}, badInput(ctx, err)
		}
		dst = combined
	}

	source := src // a downloaded file is temporary: name its URL instead
	if !strings.HasPrefix(cfg.Source, "file://") && strings.Contains(cfg.Source, "://") {
		source = cfg.Source
	}
	ref := &DatasetRef{SHA256: info.SHA256, Rows: info.Rows, Schema: info.Schema, Source: source}
	summary := fmt.Sprintf("%d rows × %d columns, dataset %s", info.Rows, len(info.Schema.Fields), info.SHA256[:12])
	if exp := datasetExpectations(cfg.Expect); !emptyExpectations(exp) {
		pl.set(Progress{Pct: 80, Msg: "checking expectations"})
		rep, err := dataset.CheckExpectations(ctx, dst, cfg.Source, exp)
		if err != nil {
			return StepOutput{}, badInput(ctx, err)
		}
		// The report's address: the dataset and the expectations.
		expJSON, _ := json.Marshal(exp)
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%s", info.SHA256, expJSON))
		name := filepath.Join(tmp, "expectations.json")
		if err := writeJSON(name, rep); err != nil {
			return StepOutput{}, err
		}
		uri, err := a.Store.Publish(ctx, name, "reports/expectations/"+hex.EncodeToString(sum[:])+".json")
		if err != nil {
			return StepOutput{}, err
		}
		if !rep.Passed {
			return StepOutput{}, invalid("expectations failed (report %s): %s", uri, rep)
		}
		ref.ExpectationsURI = uri
		summary += fmt.Sprintf(", %d expectations passed", len(rep.Checks))
	}
	uri, err := a.Store.Publish(ctx, dst, "datasets/"+info.SHA256+".parquet")
	if err != nil {
		return StepOutput{}, err
	}
	ref.URI = uri
	return StepOutput{Artifacts: Artifacts{Dataset: ref}, Summary: summary}, nil
}

// datasetExpectations converts the spec's expectations.
func datasetExpectations(e pipelines.Expectations) dataset.Expectations {
	out := dataset.Expectations{MinRows: e.MinRows, Columns: e.Columns, NotNull: e.NotNull, Allowed: e.Allowed, Unique: e.Unique}
	if len(e.Ranges) > 0 {
		out.Ranges = make(map[string]dataset.Range, len(e.Ranges))
		for k, r := range e.Ranges {
			out.Ranges[k] = dataset.Range{Min: r.Min, Max: r.Max}
		}
	}
	return out
}

func emptyExpectations(e dataset.Expectations) bool {
	return e.MinRows == 0 && len(e.Columns) == 0 && len(e.NotNull) == 0 && len(e.Ranges) == 0 && len(e.Allowed) == 0 && len(e.Unique) == 0
}

// Download limits for http(s) sources. Variables so tests can lower them.
var (
	// MaxDownloadBytes bounds the size of a downloaded source.
	MaxDownloadBytes int64 = 16 << 30
	// DownloadTimeout bounds a whole download (the step's own timeout
	// applies as well).
	DownloadTimeout = 2 * time.Hour
	// downloadHeaderTimeout bounds the wait for the response headers.
	downloadHeaderTimeout = time.Minute
)

// fetchSource returns the local path of source: a path relative to specDir,
// a file:// URL, or an http(s):// or object-store URL fetched to a
// temporary file under the artifact store (removed by cleanup).
func (a *Activities) fetchSource(ctx context.Context, pl *pulse, source, specDir string) (string, func(), error) {
	none := func() {}
	scheme, _, hasScheme := strings.Cut(source, "://")
	scheme = strings.ToLower(scheme)
	if !hasScheme || scheme == "file" {
		src, err := a.specPath(source, specDir)
		if err != nil {
			return "", none, invalid("ingest source: %v", err)
		}
		return src, none, nil
	}
	remote := artifact.Remote(source)
	if scheme != "http" && scheme != "https" && !remote {
		return "", none, invalid("ingest source %s: unsupported scheme %s:// (use a local path, a file://, http(s)://, %s:// URL)", source, scheme, strings.Join(artifact.RemoteSchemes, "://, "))
	}
	u, err := url.Parse(source)
	if err != nil {
		return "", none, invalid("ingest source %s: %v", source, err)
	}
	dir, err := a.Store.TempDir("download")
	if err != nil {
		return "", none, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	// Keep the name (and so the extension) for format detection.
	base := path.Base(u.Path)
	if base == "/" || base == "." || base == "" {
		base = "download"
	}
	dst := filepath.Join(dir, base)
	if remote {
		err = fetchObject(ctx, pl, source, dst)
	} else {
		err = download(ctx, pl, source, dst)
	}
	if err != nil {
		cleanup()
		return "", none, err
	}
	return dst, cleanup, nil
}

// fetchObject copies an object-store source to dst, heartbeating its
// progress at most once a second. A missing object or a malformed URL is
// invalid input; other failures (network, credentials) may pass on retry.
func fetchObject(ctx context.Context, pl *pulse, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, DownloadTimeout)
	defer cancel()
	ou, err := artifact.ParseObjectURL(src)
	if err != nil {
		return invalid("ingest source: %v", err)
	}
	_, err = artifact.Fetch(ctx, src, dst, artifact.FetchOptions{
		MaxBytes: MaxDownloadBytes,
		Progress: transferProgress(pl, "fetched", path.Base(ou.Key)),
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, artifact.ErrNotFound), errors.Is(err, artifact.ErrTooLarge):
		return invalid("ingest source %v", err)
	}
	return err
}

// download fetches url into dst with a context-aware client, heartbeating
// its progress and enforcing MaxDownloadBytes and DownloadTimeout.
func download(ctx context.Context, pl *pulse, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return invalid("ingest source %s: %v", src, err)
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: downloadHeaderTimeout,
		TLSHandshakeTimeout:   30 * time.Second,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("downloading %s: HTTP status %s", src, resp.Status)
		// 4xx (but not 408/429) will not get better by retrying.
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429 {
			return invalid("%s", msg)
		}
		return errors.New(msg)
	}
	_, err = artifact.WriteStream(ctx, resp.Body, resp.ContentLength, dst, artifact.FetchOptions{
		MaxBytes: MaxDownloadBytes,
		Progress: transferProgress(pl, "downloaded", path.Base(req.URL.Path)),
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, artifact.ErrTooLarge):
		return invalid("downloading %s: %v", src, err)
	}
	return fmt.Errorf("downloading %s: %w", src, err)
}

// transferProgress returns a progress callback for a copy of name that
// heartbeats through pl at most once a second ("fetched 12 of 40 MiB of
// churn.csv"; the total is left out when unknown).
func transferProgress(pl *pulse, verb, name string) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		if total <= 0 {
			pl.set(Progress{Msg: fmt.Sprintf("%s %d MiB of %s", verb, done>>20, name)})
			return
		}
		pl.set(Progress{Pct: 100 * float64(done) / float64(total), Msg: fmt.Sprintf("%s %d of %d MiB of %s", verb, done>>20, total>>20, name)})
	}
}

// copyParquet rewrites a Parquet file through Kiln's reader and writer, so
// its types are normalised and its hash is Kiln's. It streams batches of at
// most dataset.DefaultBatchRows rows (one output row group each), so memory
// does not grow with the input's row groups.
func copyParquet(ctx context.Context, src, dst string) (dataset.Info, error) {
	r, err := dataset.OpenParquet(src)
	if err != nil {
		return dataset.Info{}, err
	}
	defer r.Close()
	w, err := dataset.CreateParquet(dst, r.Schema(), dataset.WriterOptions{})
	if err != nil {
		return dataset.Info{}, err
	}
	defer w.Abort()
	for i := 0; i < r.NumRowGroups(); i++ {
		err := r.ScanRowGroup(ctx, i, nil, dataset.DefaultBatchRows, func(rec arrow.Record) error {
			if err := w.Write(rec); err != nil {
				return fmt.Errorf("writing %s: %w", dst, err)
			}
			return nil
		})
		if err != nil {
			return dataset.Info{}, err
		}
	}
	return w.Commit()
}
