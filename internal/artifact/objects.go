package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/kiln-ml/kiln/internal/artifact/localfs"
)

// An object-store-backed Store (Options.Remote) publishes every artifact to
// the object store and hands out its s3:// or gs:// URI, so that any worker
// can read what another wrote: workers need no shared directory. The local
// root is then only the worker's scratch space and a cache of the objects it
// has read or written (artifacts are immutable, so the cache never goes
// stale).
//
// Publication stays atomic and content-addressed:
//   - a file is one object, which an object store makes visible whole when
//     its upload completes;
//   - a directory is its files' objects plus a commit marker, CommitMarker,
//     written last and listing every file with its size. A reader trusts a
//     directory only through its marker, so a publisher killed halfway
//     leaves objects nobody reads, and the next publisher of the same
//     content uploads them again and commits;
//   - publishing what is already committed uploads nothing.

// CommitMarker is the object, inside a published directory, that commits
// it: a JSON list of the directory's files and sizes, written after them.
const CommitMarker = ".kiln-commit.json"

// Options configures Open.
type Options struct {
	// Dir is the local root: the whole store when Remote is empty, else
	// the worker's scratch space and its cache of remote artifacts.
	Dir string
	// Remote, when set, is the object store URL artifacts are published
	// under: s3://bucket/prefix?options or gs://bucket/prefix (see
	// RemoteSchemes for the options and where credentials come from).
	Remote string
}

// remoteStore is the object store half of a Store.
type remoteStore struct {
	bucket    *blob.Bucket
	bucketURL string // scheme://bucket?options, as parseRemote writes it
	prefix    string // key prefix, "" or ending in "/"
	scheme    string
	host      string
	query     string
}

// commitManifest is the content of a CommitMarker.
type commitManifest struct {
	Files []commitFile `json:"files"`
}

type commitFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Open opens a store: local under opts.Dir, or published to opts.Remote
// with opts.Dir as the local cache. Close releases it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := NewLocal(opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.Remote == "" {
		return s, nil
	}
	ou, err := parseRemote(opts.Remote)
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	bucket, err := blob.OpenBucket(ctx, ou.Bucket)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: opening the bucket: %w", Redact(opts.Remote), err)
	}
	if ok, err := bucket.IsAccessible(ctx); err != nil || !ok {
		bucket.Close()
		if err == nil {
			err = errors.New("no such bucket")
		}
		return nil, fmt.Errorf("artifact store %s: %w", Redact(opts.Remote), err)
	}
	u, _ := url.Parse(opts.Remote)
	prefix := strings.Trim(ou.Key, "/")
	if prefix != "" {
		prefix += "/"
	}
	s.remote = &remoteStore{bucket: bucket, bucketURL: ou.Bucket, prefix: prefix,
		scheme: strings.ToLower(u.Scheme), host: u.Host, query: u.RawQuery}
	return s, nil
}

// Redact returns an object store URL without its query (endpoint and
// driver options), for messages.
func Redact(uri string) string {
	base, _, _ := strings.Cut(uri, "?")
	return base
}

// Close releases the store's connection to its object store, if any.
func (s *Store) Close() error {
	if s.remote == nil {
		return nil
	}
	return s.remote.bucket.Close()
}

// RemoteURL is the object store URL the store publishes to, or "" for a
// local store.
func (s *Store) RemoteURL() string {
	if s.remote == nil {
		return ""
	}
	return s.remote.url(strings.TrimSuffix(s.remote.prefix, "/"))
}

// url is the object URL of key, with the store's options.
func (r *remoteStore) url(key string) string {
	return (&url.URL{Scheme: r.scheme, Host: r.host, Path: "/" + key, RawQuery: r.query}).String()
}

// rel returns the path, relative to the store, of an object URL of this
// store.
func (r *remoteStore) rel(uri string) (string, bool) {
	ou, err := parseRemote(uri)
	if err != nil || ou.Bucket != r.bucketURL || !strings.HasPrefix(ou.Key, r.prefix) {
		return "", false
	}
	rel := strings.TrimPrefix(ou.Key, r.prefix)
	if rel == "" || !fs.ValidPath(rel) {
		return "", false
	}
	return rel, true
}

// JoinURI returns the URI of name inside the directory artifact dir (a
// file:// URI, a path or an object URL), keeping an object URL's options.
func JoinURI(dir, name string) string {
	if !Remote(dir) {
		if p, err := Path(dir, ""); err == nil && strings.Contains(dir, "://") {
			return FileURI(filepath.Join(p, filepath.FromSlash(name)))
		}
		return filepath.Join(dir, filepath.FromSlash(name))
	}
	u, err := url.Parse(dir)
	if err != nil {
		return dir + "/" + name
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name
	return u.String()
}

// publishRemote uploads the finished file or directory src as rel (unless
// rel is committed already), moves src into the local cache and returns
// the object URL.
func (s *Store) publishRemote(ctx context.Context, src, rel string) (string, error) {
	r := s.remote
	key := r.prefix + rel
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("publishing %s: %w", rel, err)
	}
	if st.IsDir() {
		if err := r.putDir(ctx, src, key); err != nil {
			return "", fmt.Errorf("publishing %s to %s: %w", rel, Redact(r.url(key)), err)
		}
	} else {
		ok, err := r.bucket.Exists(ctx, key)
		if err != nil {
			return "", fmt.Errorf("publishing %s: %w", rel, err)
		}
		if !ok {
			if err := r.putFile(ctx, src, key); err != nil {
				return "", fmt.Errorf("publishing %s to %s: %w", rel, Redact(r.url(key)), err)
			}
		}
	}
	if err := s.cache(src, rel); err != nil {
		return "", err
	}
	return r.url(key), nil
}

// cache moves the published src to rel's place in the local cache (or
// drops it when the cache holds rel already).
func (s *Store) cache(src, rel string) error {
	dst := s.LocalPath(rel)
	if filepath.Clean(src) == dst {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if complete(dst) {
		return os.RemoveAll(src)
	}
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		// A directory holding only some of its files (read one by one).
		return localfs.ReplaceDir(src, dst)
	}
	if err := os.Rename(src, dst); err != nil && !complete(dst) {
		return fmt.Errorf("caching %s: %w", rel, err)
	}
	_ = os.RemoveAll(src)
	return nil
}

// complete reports whether the local path holds a whole artifact: a file,
// or a directory with its commit marker.
func complete(p string) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	if !st.IsDir() {
		return true
	}
	_, err = os.Stat(filepath.Join(p, CommitMarker))
	return err == nil
}

// putDir uploads the files of dir under key/ and commits them with the
// marker, unless the marker is there already.
func (r *remoteStore) putDir(ctx context.Context, dir, key string) error {
	marker := key + "/" + CommitMarker
	if ok, err := r.bucket.Exists(ctx, marker); err != nil || ok {
		return err
	}
	var man commitManifest
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name = filepath.ToSlash(name)
		if name == CommitMarker {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := r.putFile(ctx, p, key+"/"+name); err != nil {
			return err
		}
		man.Files = append(man.Files, commitFile{Name: name, Size: info.Size()})
		return nil
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := r.bucket.WriteAll(ctx, marker, b, nil); err != nil {
		return err
	}
	// The local copy is committed too (see complete).
	return localfs.WriteFileAtomic(filepath.Join(dir, CommitMarker), b)
}

// putFile uploads the local file p as key. The object appears only when
// the upload completes; a cancelled upload leaves nothing.
func (r *remoteStore) putFile(ctx context.Context, p, key string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := r.bucket.NewWriter(wctx, key, nil)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		cancel() // aborts the upload
		w.Close()
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	return nil
}

// Local returns a local path holding the artifact at uri. A file:// URI or
// a path is returned as is; an object URL of this store is downloaded into
// the local cache first, unless the cache has it (artifacts never change).
// A file is one object; a directory is read through its commit marker, so
// it is whole or an error. A missing object is an error wrapping
// ErrNotFound.
func (s *Store) Local(ctx context.Context, uri string) (string, error) {
	if !Remote(uri) {
		return Path(uri, "")
	}
	if s.remote == nil {
		return "", fmt.Errorf("artifact %s is in an object store, and this Kiln has none configured (--artifacts, KILN_ARTIFACTS)", Redact(uri))
	}
	rel, ok := s.remote.rel(uri)
	if !ok {
		return "", fmt.Errorf("artifact %s is not in this Kiln's artifact store %s", Redact(uri), Redact(s.RemoteURL()))
	}
	dst := s.LocalPath(rel)
	if complete(dst) {
		return dst, nil
	}
	key := s.remote.prefix + rel
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	err := s.getFile(ctx, key, dst)
	if err == nil {
		return dst, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	if err := s.getDir(ctx, key, dst); err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("artifact %s: %w", Redact(uri), ErrNotFound)
		}
		return "", fmt.Errorf("reading artifact %s: %w", Redact(uri), err)
	}
	return dst, nil
}

// getFile downloads the object key to dst through a temporary file.
func (s *Store) getFile(ctx context.Context, key, dst string) error {
	r, err := s.remote.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return ErrNotFound
		}
		return fmt.Errorf("reading %s: %w", Redact(s.remote.url(key)), err)
	}
	defer r.Close()
	tmp, err := s.TempDir("get")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	part := filepath.Join(tmp, path.Base(key))
	if _, err := WriteStream(ctx, r, r.Size(), part, FetchOptions{}); err != nil {
		return fmt.Errorf("reading %s: %w", Redact(s.remote.url(key)), err)
	}
	if err := os.Rename(part, dst); err != nil {
		if complete(dst) {
			return nil
		}
		return err
	}
	return nil
}

// getDir downloads the committed directory key into dst.
func (s *Store) getDir(ctx context.Context, key, dst string) error {
	b, err := s.remote.bucket.ReadAll(ctx, key+"/"+CommitMarker)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return ErrNotFound
		}
		return err
	}
	var man commitManifest
	if err := json.Unmarshal(b, &man); err != nil {
		return fmt.Errorf("commit marker of %s: %w", key, err)
	}
	tmp, err := s.TempDir("getdir")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, f := range man.Files {
		if !fs.ValidPath(f.Name) || f.Name == CommitMarker {
			return fmt.Errorf("commit marker of %s: bad file name %q", key, f.Name)
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := s.getFile(ctx, key+"/"+f.Name, p); err != nil {
			return fmt.Errorf("%s of the committed directory: %w", f.Name, err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() != f.Size {
			return fmt.Errorf("%s/%s is not the %d bytes its commit marker lists", Redact(s.remote.url(key)), f.Name, f.Size)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, CommitMarker), b, 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		if complete(dst) {
			return nil
		}
		return localfs.ReplaceDir(tmp, dst)
	}
	if err := os.Rename(tmp, dst); err != nil && !complete(dst) {
		return err
	}
	return nil
}

// Has reports whether the artifact at uri exists: a local file or
// directory, or a committed object or directory of this store.
func (s *Store) Has(ctx context.Context, uri string) bool {
	if !Remote(uri) {
		return Exists(uri)
	}
	if s.remote == nil {
		return false
	}
	rel, ok := s.remote.rel(uri)
	if !ok {
		return false
	}
	if complete(s.LocalPath(rel)) {
		return true
	}
	key := s.remote.prefix + rel
	for _, k := range []string{key, key + "/" + CommitMarker} {
		if ok, err := s.remote.bucket.Exists(ctx, k); err == nil && ok {
			return true
		}
	}
	return false
}

// Keys lists the keys of every object under the store's prefix, relative to
// it, in order (for tests and inspection).
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	if s.remote == nil {
		return nil, errors.New("not an object store")
	}
	objs, err := listObjects(ctx, s.remote.bucket, &blob.ListOptions{Prefix: s.remote.prefix}, Redact(s.RemoteURL()), func(key string) (string, string) {
		return s.remote.url(key), strings.TrimPrefix(key, s.remote.prefix)
	})
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys, err
}

// Put makes the file or directory at rel's local path (LocalPath(rel)),
// written whole by the caller, the artifact rel and returns its URI. Unlike
// Publish it replaces an artifact of the same name: it is for what a step
// rewrites whole on a retry or a rerun (a foreach chunk's results, a report
// of a run key). An object store uploads the files and, for a directory,
// rewrites the commit marker last; a reader that cached the earlier
// content keeps it.
func (s *Store) Put(ctx context.Context, rel string) (string, error) {
	if s.remote == nil {
		return s.URI(rel), nil
	}
	p := s.LocalPath(rel)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("storing %s: %w", rel, err)
	}
	key := s.remote.prefix + rel
	if st.IsDir() {
		_ = os.Remove(filepath.Join(p, CommitMarker))
		if err := s.remote.bucket.Delete(ctx, key+"/"+CommitMarker); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return "", fmt.Errorf("storing %s: %w", rel, err)
		}
		err = s.remote.putDir(ctx, p, key)
	} else {
		err = s.remote.putFile(ctx, p, key)
	}
	if err != nil {
		return "", fmt.Errorf("storing %s to %s: %w", rel, Redact(s.remote.url(key)), err)
	}
	return s.remote.url(key), nil
}

// Owns reports whether uri names an artifact of this store's object store.
func (s *Store) Owns(uri string) bool {
	if s.remote == nil || !Remote(uri) {
		return false
	}
	_, ok := s.remote.rel(uri)
	return ok
}

// Upload copies the local file src to the object store as rel, replacing
// it, without caching it (for files kept elsewhere, such as a model
// server's request logs). A local store copies nothing: it is an error.
func (s *Store) Upload(ctx context.Context, src, rel string) error {
	if s.remote == nil {
		return errors.New("not an object store")
	}
	key := s.remote.prefix + rel
	if err := s.remote.putFile(ctx, src, key); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, Redact(s.remote.url(key)), err)
	}
	return nil
}

// Download copies the object rel to the local file dst (through a
// temporary file, so dst is whole or absent). A missing object is an
// error wrapping ErrNotFound.
func (s *Store) Download(ctx context.Context, rel, dst string) error {
	if s.remote == nil {
		return errors.New("not an object store")
	}
	if err := s.getFile(ctx, s.remote.prefix+rel, dst); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%s: %w", rel, ErrNotFound)
		}
		return err
	}
	return nil
}

// List returns the objects whose path relative to the store starts with
// prefix, without descending past a "/" after it, in order; their Key is
// relative to the store. A non-empty after asks the store to start the
// listing after the key prefix+after (S3's StartAfter, GCS's StartOffset),
// so a listing of time-named objects can skip the old ones; a store that
// ignores it lists them all.
func (s *Store) List(ctx context.Context, prefix, after string) ([]Object, error) {
	if s.remote == nil {
		return nil, errors.New("not an object store")
	}
	opts := &blob.ListOptions{Prefix: s.remote.prefix + prefix, Delimiter: "/"}
	if after != "" {
		start := s.remote.prefix + prefix + after
		opts.BeforeList = func(as func(any) bool) error {
			var s3in *s3.ListObjectsV2Input
			var gq *storage.Query
			switch {
			case as(&s3in):
				s3in.StartAfter = aws.String(start)
			case as(&gq):
				gq.StartOffset = start
			}
			return nil
		}
	}
	return listObjects(ctx, s.remote.bucket, opts, Redact(s.remote.url(opts.Prefix)), func(key string) (string, string) {
		return s.remote.url(key), strings.TrimPrefix(key, s.remote.prefix)
	})
}

// LocalFresh is Local for an artifact that Put may have replaced since this
// process cached it (a report of a run key that was run again): the cached
// copy of a directory is used only while its commit marker still equals
// the store's, and a file is fetched again.
func (s *Store) LocalFresh(ctx context.Context, uri string) (string, error) {
	if !s.Owns(uri) {
		return s.Local(ctx, uri)
	}
	rel, _ := s.remote.rel(uri)
	key := s.remote.prefix + rel
	dst := s.LocalPath(rel)
	b, err := s.remote.bucket.ReadAll(ctx, key+"/"+CommitMarker)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		// A file, or gone: fetch it again.
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := s.getFile(ctx, key, dst); err != nil {
			if errors.Is(err, ErrNotFound) {
				return "", fmt.Errorf("artifact %s: %w", Redact(uri), ErrNotFound)
			}
			return "", err
		}
		return dst, nil
	case err != nil:
		return "", fmt.Errorf("reading artifact %s: %w", Redact(uri), err)
	}
	if cached, err := os.ReadFile(filepath.Join(dst, CommitMarker)); err == nil && bytes.Equal(cached, b) {
		return dst, nil
	}
	// Stale or partial: fetch the directory again beside it and swap.
	tmp, err := s.TempDir("fresh")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "dir")
	if err := s.getDir(ctx, key, fresh); err != nil {
		return "", fmt.Errorf("reading artifact %s: %w", Redact(uri), err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := localfs.ReplaceDir(fresh, dst); err != nil {
		return "", err
	}
	return dst, nil
}
