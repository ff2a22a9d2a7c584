package artifact_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
)

// openPair opens two stores on one object store prefix with separate local
// directories: two workers that share no disk.
func openPair(t *testing.T) (srv *s3test.Server, a, b *artifact.Store) {
	t.Helper()
	srv = s3test.Start(t, "kiln")
	remote := srv.URL("kiln", "team/artifacts")
	ctx := context.Background()
	var err error
	if a, err = artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: remote}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: remote}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return srv, a, b
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestObjectStorePublishAndRead: what one worker publishes, another with an
// empty local directory reads, files and directories alike; the URIs are
// object URLs and the objects hold the content, a directory committed by
// its marker.
func TestObjectStorePublishAndRead(t *testing.T) {
	ctx := context.Background()
	_, a, b := openPair(t)

	tmp, err := a.TempDir("test")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, tmp, map[string]string{"data.parquet": "rows"})
	fileURI, err := a.Publish(ctx, filepath.Join(tmp, "data.parquet"), "datasets/abc.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fileURI, "s3://kiln/team/artifacts/datasets/abc.parquet?") {
		t.Fatalf("file URI %s", fileURI)
	}
	dir := filepath.Join(tmp, "bundle")
	writeFiles(t, dir, map[string]string{"manifest.json": "{}", "model.json": "[1]", "sub/x.txt": "x"})
	dirURI, err := a.Publish(ctx, dir, "bundles/h1")
	if err != nil {
		t.Fatal(err)
	}

	p, err := b.Local(ctx, fileURI)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "rows" || !strings.HasPrefix(p, b.Root()) {
		t.Fatalf("read %q at %s", got, p)
	}
	// A file inside a directory first, then the whole directory: the
	// directory read must not stop at the one cached file.
	one, err := b.Local(ctx, artifact.JoinURI(dirURI, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(one); string(got) != "[1]" {
		t.Fatalf("model.json %q", got)
	}
	d, err := b.Local(ctx, dirURI)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"manifest.json": "{}", "model.json": "[1]", "sub/x.txt": "x"} {
		if got, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(name))); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	keys, err := b.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bundles/h1/" + artifact.CommitMarker, "bundles/h1/manifest.json", "bundles/h1/model.json", "bundles/h1/sub/x.txt", "datasets/abc.parquet"}
	if !slices.Equal(keys, want) {
		t.Errorf("objects %v, want %v", keys, want)
	}
	if !b.Has(ctx, dirURI) || !b.Has(ctx, fileURI) || b.Has(ctx, artifact.JoinURI(dirURI, "nope")) {
		t.Error("Has disagrees with the store")
	}
	// Publishing the same address again keeps the first copy and uploads
	// nothing: the source is dropped.
	again := filepath.Join(tmp, "again")
	writeFiles(t, again, map[string]string{"manifest.json": "other"})
	if u, err := b.Publish(ctx, again, "bundles/h1"); err != nil || u != dirURI {
		t.Fatalf("republish: %s, %v", u, err)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Error("the duplicate source was kept")
	}
	if got, _ := os.ReadFile(filepath.Join(d, "manifest.json")); string(got) != "{}" {
		t.Error("a republish changed a committed directory")
	}
}

// TestObjectStoreUncommittedDirectory: the objects of a directory whose
// publisher died before the commit marker are not an artifact: reading it
// fails with ErrNotFound, and the next publisher commits it whole.
func TestObjectStoreUncommittedDirectory(t *testing.T) {
	ctx := context.Background()
	srv, a, b := openPair(t)
	srv.Put(t, "kiln", "team/artifacts/bundles/h2/manifest.json", []byte("half"))
	uri := a.URI("bundles/h2")
	if _, err := b.Local(ctx, uri); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("reading an uncommitted directory: %v, want ErrNotFound", err)
	}
	if b.Has(ctx, uri) {
		t.Fatal("Has reports an uncommitted directory")
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	writeFiles(t, dir, map[string]string{"manifest.json": "whole", "model.json": "m"})
	if _, err := a.Publish(ctx, dir, "bundles/h2"); err != nil {
		t.Fatal(err)
	}
	d, err := b.Local(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "manifest.json")); string(got) != "whole" {
		t.Fatalf("manifest %q", got)
	}
}

// TestObjectStorePut: Put replaces an artifact (a rerun's report), where
// Publish keeps the first.
func TestObjectStorePut(t *testing.T) {
	ctx := context.Background()
	_, a, b := openPair(t)
	rel := "reports/p/s/2026-12-01"
	for _, body := range []string{"first", "second"} {
		writeFiles(t, a.LocalPath(rel), map[string]string{"report.html": body})
		uri, err := a.Put(ctx, rel)
		if err != nil {
			t.Fatal(err)
		}
		c, err := artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: a.RemoteURL()})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Local(ctx, uri)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(d, "report.html")); string(got) != body {
			t.Fatalf("report %q, want %q", got, body)
		}
	}
	// A reader that cached the first report: Local keeps it, LocalFresh
	// sees the replacement.
	writeFiles(t, a.LocalPath(rel), map[string]string{"report.html": "third"})
	uri, err := a.Put(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LocalFresh(ctx, uri); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, a.LocalPath(rel), map[string]string{"report.html": "fourth"})
	if _, err := a.Put(ctx, rel); err != nil {
		t.Fatal(err)
	}
	d, _ := b.Local(ctx, uri)
	if got, _ := os.ReadFile(filepath.Join(d, "report.html")); string(got) != "third" {
		t.Errorf("Local read %q, want the cached third", got)
	}
	d, err = b.LocalFresh(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "report.html")); string(got) != "fourth" {
		t.Errorf("LocalFresh read %q, want fourth", got)
	}
	if _, err := b.Local(ctx, "s3://other/x?region=us-east-1"); err == nil || !strings.Contains(err.Error(), "not in this Kiln's artifact store") {
		t.Errorf("an object of another bucket: %v", err)
	}
	local, err := artifact.Open(ctx, artifact.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.Local(ctx, a.URI(rel)); err == nil || !strings.Contains(err.Error(), "KILN_ARTIFACTS") {
		t.Errorf("an object URL on a local store: %v", err)
	}
}

func TestJoinURI(t *testing.T) {
	for _, tt := range []struct{ dir, name, want string }{
		{"s3://b/p/dir?endpoint=http%3A%2F%2Fh&region=r", "train.parquet", "s3://b/p/dir/train.parquet?endpoint=http%3A%2F%2Fh&region=r"},
		{"gs://b/dir/", "x.json", "gs://b/dir/x.json"},
		{"file:///var/kiln/prepared/abc", "train.parquet", "file:///var/kiln/prepared/abc/train.parquet"},
		{"/var/kiln/prepared/abc", "train.parquet", "/var/kiln/prepared/abc/train.parquet"},
	} {
		if got := artifact.JoinURI(tt.dir, tt.name); got != tt.want {
			t.Errorf("JoinURI(%q, %q) = %q, want %q", tt.dir, tt.name, got, tt.want)
		}
	}
}

// TestObjectStoreListAfter: a listing that starts after a key skips the
// objects before it (S3's StartAfter, honoured by the test server).
func TestObjectStoreListAfter(t *testing.T) {
	ctx := context.Background()
	srv, a, _ := openPair(t)
	for _, k := range []string{"100-1", "200-1", "300-1"} {
		srv.Put(t, "kiln", "team/artifacts/requests/m/"+k+".parquet", []byte(k))
	}
	for _, tt := range []struct {
		after string
		want  []string
	}{
		{"", []string{"100-1", "200-1", "300-1"}},
		{"199", []string{"200-1", "300-1"}},
		{"300-1.parquet", nil},
	} {
		objs, err := a.List(ctx, "requests/m/", tt.after)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range objs {
			got = append(got, strings.TrimSuffix(filepath.Base(o.Key), ".parquet"))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List after %q: %v, want %v", tt.after, got, tt.want)
		}
	}
}
