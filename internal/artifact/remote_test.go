package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
)

func TestParseObjectURL(t *testing.T) {
	tests := []struct {
		uri, bucket, key, err string
	}{
		{uri: "s3://data/dir/churn.csv", bucket: "s3://data", key: "dir/churn.csv"},
		{uri: "S3://data/churn.csv?region=eu-west-1&use_path_style=true", bucket: "s3://data?region=eu-west-1&use_path_style=true", key: "churn.csv"},
		{uri: "gs://bkt/a/b.parquet", bucket: "gs://bkt", key: "a/b.parquet"},
		{uri: "s3:///churn.csv", err: "names no bucket"},
		{uri: "s3://data", err: "names no object"},
		{uri: "s3://data/dir/", err: "names no object"},
		{uri: "ftp://data/x.csv", err: "not an object store"},
		{uri: "s3://da ta/x", err: "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := artifact.ParseObjectURL(tt.uri)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Bucket != tt.bucket || got.Key != tt.key {
				t.Fatalf("got %+v, want bucket %q key %q", got, tt.bucket, tt.key)
			}
		})
	}
}

func TestRemote(t *testing.T) {
	for uri, want := range map[string]bool{
		"s3://b/k": true, "gs://b/k": true, "GS://b/k": true,
		"file:///x": false, "https://x/y": false, "data/x.csv": false, "s3": false,
	} {
		if got := artifact.Remote(uri); got != want {
			t.Errorf("Remote(%q) = %v, want %v", uri, got, want)
		}
	}
}

// TestFetchS3 fetches objects from an S3-compatible server over real HTTP
// on 127.0.0.1 through the s3blob driver.
func TestFetchS3(t *testing.T) {
	srv := s3test.Start(t, "data")
	content := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: several chunks
	srv.Put(t, "data", "dir/big.bin", content)
	srv.Put(t, "data", "empty.csv", nil)
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("object", func(t *testing.T) {
		dst := filepath.Join(dir, "big.bin")
		var calls int
		var last, total int64
		n, err := artifact.Fetch(ctx, srv.URL("data", "dir/big.bin"), dst, artifact.FetchOptions{
			Progress: func(done, size int64) { calls++; last, total = done, size },
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(content)) || !bytes.Equal(got, content) {
			t.Fatalf("fetched %d bytes (file %d), want %d identical", n, len(got), len(content))
		}
		if calls < 3 || last != n || total != n {
			t.Fatalf("progress: %d calls, last %d of %d; want >= 3 calls ending at %d", calls, last, total, n)
		}
		if _, err := os.Stat(dst + ".part"); !os.IsNotExist(err) {
			t.Fatalf("temporary file left behind: %v", err)
		}
	})
	t.Run("empty object", func(t *testing.T) {
		dst := filepath.Join(dir, "empty.csv")
		if n, err := artifact.Fetch(ctx, srv.URL("data", "empty.csv"), dst, artifact.FetchOptions{}); err != nil || n != 0 {
			t.Fatalf("Fetch = %d, %v", n, err)
		}
		if st, err := os.Stat(dst); err != nil || st.Size() != 0 {
			t.Fatalf("stat %v, %v", st, err)
		}
	})
	t.Run("missing object", func(t *testing.T) {
		dst := filepath.Join(dir, "missing.csv")
		uri := srv.URL("data", "nope.csv")
		_, err := artifact.Fetch(ctx, uri, dst, artifact.FetchOptions{})
		if !errors.Is(err, artifact.ErrNotFound) || !strings.Contains(err.Error(), uri) {
			t.Fatalf("error %v, want ErrNotFound naming %s", err, uri)
		}
		assertAbsent(t, dst)
	})
	t.Run("missing bucket", func(t *testing.T) {
		dst := filepath.Join(dir, "nobucket.csv")
		_, err := artifact.Fetch(ctx, srv.URL("nobucket", "x.csv"), dst, artifact.FetchOptions{})
		if err == nil {
			t.Fatal("no error for a missing bucket")
		}
		assertAbsent(t, dst)
	})
	t.Run("too big", func(t *testing.T) {
		dst := filepath.Join(dir, "limited.bin")
		_, err := artifact.Fetch(ctx, srv.URL("data", "dir/big.bin"), dst, artifact.FetchOptions{MaxBytes: 1 << 20})
		if !errors.Is(err, artifact.ErrTooLarge) || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("error %v, want the size limit", err)
		}
		assertAbsent(t, dst)
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		dst := filepath.Join(dir, "cancelled.bin")
		_, err := artifact.Fetch(cctx, srv.URL("data", "dir/big.bin"), dst, artifact.FetchOptions{
			Progress: func(done, total int64) { cancel() },
		})
		if err == nil {
			t.Fatal("no error after cancel")
		}
		assertAbsent(t, dst)
	})
}

func assertAbsent(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists after a failed fetch (%v)", p, err)
		}
	}
}

// TestListS3 lists prefixes like directories and path prefixes: direct
// objects only, in key order, with the listed URL's query kept.
func TestListS3(t *testing.T) {
	srv := s3test.Start(t, "lake")
	for _, k := range []string{"scores/b.parquet", "scores/a.parquet", "scores/sub/c.parquet", "scores-old/x.parquet", "top.csv"} {
		srv.Put(t, "lake", k, []byte(k))
	}
	ctx := context.Background()
	tests := []struct {
		prefix string
		want   []string
	}{
		{"scores/", []string{"scores/a.parquet", "scores/b.parquet"}},
		{"scores", nil}, // only "directories" (scores/, scores-old/) start so
		{"scores/a", []string{"scores/a.parquet"}},
		{"", []string{"top.csv"}},
		{"nothing/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			uri := srv.URL("lake", tt.prefix)
			objs, err := artifact.List(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range objs {
				keys = append(keys, o.Key)
				if o.Size != int64(len(o.Key)) {
					t.Errorf("%s: size %d, want %d", o.Key, o.Size, len(o.Key))
				}
				want := srv.URL("lake", o.Key)
				if o.URI != want {
					t.Errorf("URI %s, want %s", o.URI, want)
				}
			}
			if strings.Join(keys, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("List(%s) = %v, want %v", tt.prefix, keys, tt.want)
			}
		})
	}
	if _, err := artifact.List(ctx, srv.URL("nobucket", "x/")); err == nil {
		t.Error("no error listing a missing bucket")
	}
}
