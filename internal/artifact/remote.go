package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	// Object-store drivers for the schemes in RemoteSchemes.
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)

// RemoteSchemes are the URL schemes of the object stores Kiln reads through
// gocloud.dev/blob: s3:// (Amazon S3 and S3-compatible stores such as MinIO
// or Ceph) and gs:// (Google Cloud Storage).
//
// An object URL is scheme://bucket/key?options, where the options are the
// driver's bucket URL parameters, for example
//
//	s3://data/churn/2026-12.csv?region=eu-west-1
//	s3://data/churn.csv?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true
//	gs://data/churn.parquet
//
// Credentials come from the usual places of each cloud's SDK (for S3:
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles; for
// GCS: application default credentials), never from the URL or the spec.
var RemoteSchemes = []string{"s3", "gs"}

// Errors of Fetch that retrying will not cure.
var (
	// ErrNotFound marks a remote object that does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrTooLarge marks an object larger than FetchOptions.MaxBytes.
	ErrTooLarge = errors.New("object too large")
)

// Remote reports whether uri names an object in a remote object store (its
// scheme is one of RemoteSchemes).
func Remote(uri string) bool {
	scheme, _, ok := strings.Cut(uri, "://")
	return ok && slices.Contains(RemoteSchemes, strings.ToLower(scheme))
}

// ObjectURL is a parsed object URL.
type ObjectURL struct {
	// Bucket is the bucket's URL for blob.OpenBucket: scheme://bucket?options.
	Bucket string
	// Key is the object's key within the bucket.
	Key string
}

// ParseObjectURL splits an object URL (see RemoteSchemes) into its bucket
// URL and key. The key must not be empty.
func ParseObjectURL(uri string) (ObjectURL, error) {
	ou, err := parseRemote(uri)
	if err == nil && (ou.Key == "" || strings.HasSuffix(ou.Key, "/")) {
		err = fmt.Errorf("object URL %q names no object (want %s://bucket/key)", uri, schemeOf(uri))
	}
	return ou, err
}

// schemeOf is uri's scheme in lower case.
func schemeOf(uri string) string {
	scheme, _, _ := strings.Cut(uri, "://")
	return strings.ToLower(scheme)
}

// parseRemote splits a remote URL into bucket URL and key (maybe empty).
func parseRemote(uri string) (ObjectURL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return ObjectURL{}, fmt.Errorf("object URL %q: %w", uri, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if !slices.Contains(RemoteSchemes, scheme) {
		return ObjectURL{}, fmt.Errorf("object URL %q: scheme %q is not an object store (use %s)", uri, u.Scheme, strings.Join(RemoteSchemes, "://, ")+"://")
	}
	if u.Host == "" {
		return ObjectURL{}, fmt.Errorf("object URL %q names no bucket (want %s://bucket/key)", uri, scheme)
	}
	key := strings.TrimPrefix(u.Path, "/")
	b := url.URL{Scheme: scheme, Host: u.Host, RawQuery: u.RawQuery}
	return ObjectURL{Bucket: b.String(), Key: key}, nil
}

// FetchOptions configures Fetch and WriteStream.
type FetchOptions struct {
	// MaxBytes bounds the size; 0 means no bound.
	MaxBytes int64
	// Progress, when set, is called after every chunk copied with the
	// bytes done and the total size (-1 when unknown).
	Progress func(done, total int64)
}

// Fetch copies the object at uri to the local file dst with WriteStream:
// dst is either absent or whole. It returns the bytes copied. A missing
// object is an error wrapping ErrNotFound.
func Fetch(ctx context.Context, uri, dst string, opts FetchOptions) (int64, error) {
	ou, err := ParseObjectURL(uri)
	if err != nil {
		return 0, err
	}
	bucket, err := blob.OpenBucket(ctx, ou.Bucket)
	if err != nil {
		return 0, fmt.Errorf("opening bucket of %s: %w", uri, err)
	}
	defer bucket.Close()
	r, err := bucket.NewReader(ctx, ou.Key, nil)
	if err != nil {
		return 0, remoteError(uri, err)
	}
	defer r.Close()
	n, err := WriteStream(ctx, r, r.Size(), dst, opts)
	if err != nil {
		return n, fmt.Errorf("fetching %s: %w", uri, err)
	}
	return n, nil
}

// WriteStream copies r, of total bytes (-1 when unknown), to the local file
// dst in chunks of 1 MiB, so memory does not grow with the stream. The copy
// goes to dst+".part" and is renamed to dst only when complete (and, with a
// known total, of exactly that size), so dst is either absent or whole. A
// stream over opts.MaxBytes is an error wrapping ErrTooLarge. It returns
// the bytes copied.
func WriteStream(ctx context.Context, r io.Reader, total int64, dst string, opts FetchOptions) (int64, error) {
	if opts.MaxBytes > 0 && total > opts.MaxBytes {
		return 0, fmt.Errorf("%d bytes is more than the limit of %d: %w", total, opts.MaxBytes, ErrTooLarge)
	}
	part := dst + ".part"
	f, err := os.Create(part)
	if err != nil {
		return 0, err
	}
	defer os.Remove(part)
	defer f.Close()
	var done int64
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			done += int64(k)
			if opts.MaxBytes > 0 && done > opts.MaxBytes {
				return done, fmt.Errorf("more than the limit of %d bytes: %w", opts.MaxBytes, ErrTooLarge)
			}
			if _, err := f.Write(buf[:k]); err != nil {
				return done, fmt.Errorf("writing %s: %w", part, err)
			}
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			return done, fmt.Errorf("after %d bytes: %w", done, rerr)
		}
	}
	if total >= 0 && done != total {
		return done, fmt.Errorf("got %d of %d bytes", done, total)
	}
	if err := f.Close(); err != nil {
		return done, err
	}
	return done, os.Rename(part, dst)
}

// remoteError names the object in err and marks a missing one with
// ErrNotFound.
func remoteError(shown string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s: %w", shown, ErrNotFound)
	}
	return fmt.Errorf("reading %s: %w", shown, err)
}

// Object is one object of a listing.
type Object struct {
	// URI is the object's URL, with the listed URL's query.
	URI string
	// Key is the object's key in its bucket.
	Key string
	// Size is the object's size in bytes.
	Size int64
	// ModTime is when the object was last modified.
	ModTime time.Time
	// MD5 is the hex MD5 of the content as the store reports it, or ""
	// when it reports none (S3 multipart uploads, for one).
	MD5 string
}

// List returns the objects whose key starts with the key of uri (a prefix:
// s3://bucket/scores/2026-12/ or s3://bucket/scores/part-) and has no "/"
// after it, in key order: like the files of a directory, or the files a
// local path prefix matches, not descending into "subdirectories".
func List(ctx context.Context, uri string) ([]Object, error) {
	ou, err := parseRemote(uri)
	if err != nil {
		return nil, err
	}
	bucket, err := blob.OpenBucket(ctx, ou.Bucket)
	if err != nil {
		return nil, fmt.Errorf("opening bucket of %s: %w", uri, err)
	}
	defer bucket.Close()
	_, query, _ := strings.Cut(uri, "?")
	bu, _ := url.Parse(ou.Bucket)
	return listObjects(ctx, bucket, &blob.ListOptions{Prefix: ou.Key, Delimiter: "/"}, uri, func(key string) (string, string) {
		return (&url.URL{Scheme: bu.Scheme, Host: bu.Host, Path: "/" + key, RawQuery: query}).String(), key
	})
}

// listObjects lists a bucket's objects (not its "directories") in key
// order; name gives an object's URI and the Key to report for it, shown
// names the listing in errors.
func listObjects(ctx context.Context, bucket *blob.Bucket, opts *blob.ListOptions, shown string, name func(objectKey string) (uri, key string)) ([]Object, error) {
	var objs []Object
	it := bucket.List(opts)
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, remoteError(shown, err)
		}
		if o.IsDir {
			continue
		}
		uri, key := name(o.Key)
		objs = append(objs, Object{URI: uri, Key: key, Size: o.Size, ModTime: o.ModTime, MD5: md5Of(o)})
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// md5Of returns the hex MD5 of a listed object, or "".
func md5Of(o *blob.ListObject) string {
	if len(o.MD5) > 0 {
		return fmt.Sprintf("%x", o.MD5)
	}
	return ""
}

// PutFile uploads the local file path as the object at uri (see
// RemoteSchemes), replacing it. The object appears only once the upload
// completes.
func PutFile(ctx context.Context, uri, path string) error {
	ou, err := ParseObjectURL(uri)
	if err != nil {
		return err
	}
	bucket, err := blob.OpenBucket(ctx, ou.Bucket)
	if err != nil {
		return fmt.Errorf("opening bucket of %s: %w", Redact(uri), err)
	}
	defer bucket.Close()
	r := remoteStore{bucket: bucket}
	if err := r.putFile(ctx, path, ou.Key); err != nil {
		return fmt.Errorf("uploading to %s: %w", Redact(uri), err)
	}
	return nil
}
