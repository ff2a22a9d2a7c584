// Package s3test runs an S3-compatible object store over real HTTP on
// 127.0.0.1 for tests (github.com/johannesboyne/gofakes3, in memory), and
// writes object URLs that point Kiln's s3:// driver at it.
package s3test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running in-memory S3 server.
type Server struct {
	backend *s3mem.Backend
	http    *httptest.Server
	gets    atomic.Int64
}

// Start starts a server holding the given (empty) buckets, stopped when the
// test ends. It sets the AWS credential and region environment variables the
// S3 driver reads, so the test must not run in parallel with others.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "kiln-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "kiln-test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	// Keep the SDK from reading the machine's shared configuration.
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	s := &Server{backend: s3mem.New()}
	for _, b := range buckets {
		if err := s.backend.CreateBucket(b); err != nil {
			t.Fatalf("creating bucket %s: %v", b, err)
		}
	}
	h := gofakes3.New(s.backend).Server()
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Path-style: /bucket/key. A GET with a key reads an object.
		if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 {
			s.gets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.http.Close)
	return s
}

// Put stores an object.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("putting s3://%s/%s: %v", bucket, key, err)
	}
}

// ObjectGets is the number of object reads (GET requests with a key) the
// server has answered.
func (s *Server) ObjectGets() int64 { return s.gets.Load() }

// URL returns the s3:// URL of an object on this server.
func (s *Server) URL(bucket, key string) string {
	q := url.Values{}
	q.Set("endpoint", s.http.URL)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	return (&url.URL{Scheme: "s3", Host: bucket, Path: "/" + key, RawQuery: q.Encode()}).String()
}
