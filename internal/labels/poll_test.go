package labels

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/registry"
)

func TestPoll(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := t.TempDir()
	writeText(t, filepath.Join(dir, "a.csv"), "id,label\na1,1\na2,0\n")
	writeText(t, filepath.Join(dir, "b.jsonl"), `{"id":"b1","label":true}`+"\n")
	writeText(t, filepath.Join(dir, ".a.csv.tmp.csv"), "id,label\nh,1\n")
	writeText(t, filepath.Join(dir, "_SUCCESS"), "")
	writeText(t, filepath.Join(dir, "_staging.csv"), "id,label\ns,1\n")
	writeText(t, filepath.Join(dir, "notes.txt"), "not labels")
	writeText(t, filepath.Join(dir, "sub", "c.csv"), "id,label\nc1,1\n")

	var reports []PushReport
	opts := PollOptions{PushedBy: "monitor/churn", At: pushAt, OnPush: func(_ registry.LabelBatch, r PushReport) { reports = append(reports, r) }}
	poll := func(source string) []string {
		t.Helper()
		bs, err := Poll(ctx, e.store, e.reg, "churn", source, opts)
		if err != nil {
			t.Fatalf("Poll(%s): %v", source, err)
		}
		var names []string
		for _, b := range bs {
			names = append(names, filepath.Base(b.Source))
			if b.PushedBy != "monitor/churn" {
				t.Errorf("batch %+v not pushed by the monitor", b)
			}
		}
		return names
	}
	if got := poll(dir); strings.Join(got, " ") != "a.csv b.jsonl" {
		t.Fatalf("first poll pushed %v, want a.csv b.jsonl", got)
	}
	if len(reports) != 2 || reports[0].Accepted != 2 {
		t.Errorf("OnPush reports %+v", reports)
	}
	if got := poll(dir); len(got) != 0 {
		t.Errorf("second poll pushed %v, want nothing", got)
	}

	// A new good file and a bad one: the good one is pushed, the bad one
	// named in the error.
	writeText(t, filepath.Join(dir, "c-bad.csv"), "id,label\nx,maybe\n")
	writeText(t, filepath.Join(dir, "d.csv"), "id,label\nd1,0\n")
	bs, err := Poll(ctx, e.store, e.reg, "churn", dir, opts)
	if err == nil || !strings.Contains(err.Error(), "c-bad.csv:2: column label") || !strings.Contains(err.Error(), "1 of 4 files") {
		t.Errorf("poll with a bad file: err = %v", err)
	}
	if len(bs) != 1 || filepath.Base(bs[0].Source) != "d.csv" {
		t.Errorf("poll with a bad file pushed %+v, want d.csv", bs)
	}

	// Globs, prefixes and single files; copies of pushed content are not new.
	writeText(t, filepath.Join(dir, "sub", "a-copy.csv"), "id,label\na1,1\na2,0\n")
	tests := []struct {
		source string
		want   string
	}{
		{filepath.Join(dir, "sub", "*.csv"), "c.csv"},
		{filepath.Join(dir, "sub", "*.csv"), ""},
		{filepath.Join(dir, "a"), ""},
		{filepath.Join(dir, "nothing-here"), ""},
		{filepath.Join(dir, "b.jsonl"), ""},
	}
	for _, tt := range tests {
		if got := strings.Join(poll(tt.source), " "); got != tt.want {
			t.Errorf("Poll(%s) pushed %q, want %q", tt.source, got, tt.want)
		}
	}
	all, err := e.reg.LabelBatches(ctx, "churn", pushAt)
	if err != nil || len(all) != 4 {
		t.Errorf("batches: %d (%v), want 4 (a, b, d, c)", len(all), err)
	}

	if _, err := Poll(ctx, e.store, e.reg, "fraud", dir, opts); err == nil || !strings.Contains(err.Error(), "fraud") {
		t.Errorf("poll for an unknown model: err = %v", err)
	}
}

func TestPollObjectStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s3 := s3test.Start(t, "lake")
	s3.Put(t, "lake", "labels/2026-12-01.csv", []byte("id,label\nr1,1\nr2,0\n"))
	s3.Put(t, "lake", "labels/2026-12-02.jsonl.gz", gzipBytes(t, `{"id":"r3","label":1}`+"\n"))
	s3.Put(t, "lake", "labels/_SUCCESS", nil)
	s3.Put(t, "lake", "labels/deeper/x.csv", []byte("id,label\nx,1\n"))
	src := s3.URL("lake", "labels/")

	bs, err := Poll(ctx, e.store, e.reg, "churn", src, PollOptions{At: pushAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || !strings.HasPrefix(bs[0].Source, "s3://lake/labels/2026-12-01.csv") || bs[1].Rows != 1 {
		t.Fatalf("batches %+v", bs)
	}
	gets := s3.ObjectGets()
	bs, err = Poll(ctx, e.store, e.reg, "churn", src, PollOptions{At: pushAt})
	if err != nil || len(bs) != 0 {
		t.Errorf("second poll: %+v, %v", bs, err)
	}
	if s3.ObjectGets() != gets {
		t.Errorf("second poll fetched %d objects again", s3.ObjectGets()-gets)
	}
}

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	p := writeGzip(t, filepath.Join(t.TempDir(), "x.gz"), s)
	return []byte(readFile(t, p))
}
