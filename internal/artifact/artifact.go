// Package artifact stores Kiln's artifacts (datasets, model bundles, scored
// files, request logs) and addresses them by URI.
//
// The local store keeps everything under one root directory and hands out
// file:// URIs. Content-addressed artifacts are published by renaming a
// finished temporary file or directory into place, so readers never see half
// an artifact; publishing the same content twice keeps the first copy.
package artifact

import (
	"context"
	"fmt"
	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"net/url"
	"os"
	"path/filepath"
)

// Store is an artifact store: a local directory, or an object store with a
// local directory as its cache (see Open and Options.Remote).
type Store struct {
	root   string
	remote *remoteStore
}

// NewLocal opens (creating if needed) a store rooted at dir.
func NewLocal(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("creating artifact store %s: %w", abs, err)
	}
	return &Store{root: abs}, nil
}

// Root is the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// URI returns the URI of the artifact at rel (a slash-separated path
// relative to the root): its file:// URI, or its object URL when the store
// is an object store.
func (s *Store) URI(rel string) string {
	if s.remote != nil {
		return s.remote.url(s.remote.prefix + rel)
	}
	return FileURI(filepath.Join(s.root, filepath.FromSlash(rel)))
}

// LocalPath returns the path under the root for rel.
func (s *Store) LocalPath(rel string) string {
	return filepath.Join(s.root, filepath.FromSlash(rel))
}

// TempDir creates a fresh directory on the store's file system, so that its
// contents can later be published by rename.
func (s *Store) TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), prefix+"-")
	if err != nil {
		return "", fmt.Errorf("creating temporary directory: %w", err)
	}
	return dir, nil
}

// Publish moves the finished file or directory src to rel and returns its URI.
// When rel already exists (content-addressed artifacts), src is removed and
// the existing artifact is kept. An object store uploads src (see Open)
// and keeps it in its local cache; src may already be rel's cache path.
func (s *Store) Publish(ctx context.Context, src, rel string) (string, error) {
	if s.remote != nil {
		return s.publishRemote(ctx, src, rel)
	}
	dst := s.LocalPath(rel)
	if filepath.Clean(src) == dst {
		return FileURI(dst), nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("publishing %s: %w", rel, err)
	}
	if _, err := os.Stat(dst); err == nil {
		if err := os.RemoveAll(src); err != nil {
			return "", fmt.Errorf("removing duplicate %s: %w", src, err)
		}
		return FileURI(dst), nil
	}
	if err := os.Rename(src, dst); err != nil {
		// Another publisher may have won the race with identical content.
		if _, statErr := os.Stat(dst); statErr == nil {
			_ = os.RemoveAll(src)
			return FileURI(dst), nil
		}
		return "", fmt.Errorf("publishing %s: %w", rel, err)
	}
	return FileURI(dst), nil
}

// FileURI returns the file:// URI of an absolute path.
func FileURI(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// Path returns the local file system path of uri. It accepts file:// URIs and
// plain paths; a relative path is resolved against base.
func Path(uri, base string) (string, error) { return localfs.Path(uri, base) }

// Exists reports whether the artifact at uri is present.
func Exists(uri string) bool {
	p, err := Path(uri, "")
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// ReplaceDir publishes the complete directory staging as dst atomically
// (see localfs.ReplaceDir).
func ReplaceDir(staging, dst string) error { return localfs.ReplaceDir(staging, dst) }
