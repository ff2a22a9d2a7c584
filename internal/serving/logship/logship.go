// Package logship carries model servers' request logs through the object
// store, for installations whose model servers and workers share no disk:
// `kiln serve --artifacts` ships each request log file it writes to
// requests/<model>/ in the store (Shipper), and workers fetch the files a
// monitor or canary window needs into their own request log directory
// before reading it (Fetch).
package logship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/serving"
)

// Prefix is where request logs live in the object store: Prefix/<model>/.
const Prefix = "requests"

// Shipper uploads a model server's request log files to the object store.
type Shipper struct {
	store   *artifact.Store
	dir     string
	replica string
	log     *slog.Logger
	ch      chan file
	wg      sync.WaitGroup
}

type file struct{ model, path string }

// Start starts shipping: first every file under dir (the server's request
// log directory) that the store lacks, from earlier runs or a crash
// between a write and its upload, then each file Written names. replica
// tells this server's files from other replicas' (a stable ID of its
// home).
func Start(ctx context.Context, store *artifact.Store, dir, replica string, log *slog.Logger) *Shipper {
	s := &Shipper{store: store, dir: dir, replica: replica, log: log, ch: make(chan file, 4096)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.backlog(ctx)
		for f := range s.ch {
			s.ship(ctx, f)
		}
	}()
	return s
}

// Written queues a whole request log file for upload (serving.Options.LogWritten).
func (s *Shipper) Written(model, path string) {
	s.ch <- file{model, path}
}

// Close uploads what is queued and stops.
func (s *Shipper) Close() {
	close(s.ch)
	s.wg.Wait()
}

// rel is the object of a local request log file.
func (s *Shipper) rel(model, name string) string {
	return path.Join(Prefix, model, serving.ShippedLogName(name, s.replica))
}

// ship uploads one file, retrying for about a minute.
func (s *Shipper) ship(ctx context.Context, f file) {
	rel := s.rel(f.model, filepath.Base(f.path))
	var err error
	for attempt, wait := 0, 250*time.Millisecond; attempt < 8; attempt, wait = attempt+1, wait*2 {
		if err = s.store.Upload(ctx, f.path, rel); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		s.log.Warn("shipping a request log to the object store (it is shipped again when the server restarts)", "file", f.path, "error", err)
	}
}

// backlog ships the local files the store lacks.
func (s *Shipper) backlog(ctx context.Context) {
	models, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, m := range models {
		if !m.IsDir() {
			continue
		}
		objs, err := s.store.List(ctx, path.Join(Prefix, m.Name())+"/", "")
		if err != nil {
			s.log.Warn("listing shipped request logs", "model", m.Name(), "error", err)
			continue
		}
		have := map[string]bool{}
		for _, o := range objs {
			have[o.Key] = true
		}
		files, _ := filepath.Glob(filepath.Join(s.dir, m.Name(), "*.parquet"))
		for _, p := range files {
			if !have[s.rel(m.Name(), filepath.Base(p))] {
				s.ship(ctx, file{m.Name(), p})
			}
		}
	}
}

// Fetch downloads into dir/<model> the request log files of model in the
// object store written at or after since that dir lacks, so that
// serving.RequestLogFiles(dir, model, since) sees every replica's.
func Fetch(ctx context.Context, store *artifact.Store, dir, model string, since time.Time) error {
	// Names start with the write time in Unix milliseconds (13 digits
	// until 2286, so they sort by time): the listing starts at since.
	after := ""
	if ms := since.UnixMilli(); ms > 0 {
		after = strconv.FormatInt(ms-1, 10)
	}
	objs, err := store.List(ctx, path.Join(Prefix, model)+"/", after)
	if err != nil {
		return fmt.Errorf("listing the request logs of %s: %w", model, err)
	}
	local := filepath.Join(dir, model)
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	for _, o := range objs {
		name := path.Base(o.Key)
		ms, err := strconv.ParseInt(strings.SplitN(name, "-", 2)[0], 10, 64)
		if err != nil || ms < since.UnixMilli() || !strings.HasSuffix(name, ".parquet") {
			continue
		}
		dst := filepath.Join(local, name)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		if err := store.Download(ctx, o.Key, dst); err != nil && !errors.Is(err, artifact.ErrNotFound) {
			return fmt.Errorf("fetching the request log %s: %w", o.Key, err)
		}
	}
	return nil
}

// Files lists model's request log files under dir written at or after
// since (serving.RequestLogFiles), having first fetched from store those
// that model servers on other machines shipped there, when store is an
// object store (nil or a local store: dir alone).
func Files(ctx context.Context, store *artifact.Store, dir, model string, since time.Time) ([]string, error) {
	if store != nil && store.RemoteURL() != "" {
		if err := Fetch(ctx, store, dir, model, since); err != nil {
			return nil, err
		}
	}
	return serving.RequestLogFiles(dir, model, since)
}
