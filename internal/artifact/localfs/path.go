// Package localfs is the local file system half of Kiln's artifact store:
// it turns local artifact URIs (file:// URIs and plain paths) into paths
// and publishes directories atomically. It is a leaf package, so what only
// reads and writes local files (the model server, the scorer, exported
// predictors) does not link the object store clients of package artifact.
package localfs

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Path returns the local file system path of uri. It accepts file:// URIs and
// plain paths; a relative path is resolved against base.
func Path(uri, base string) (string, error) {
	if uri == "" {
		return "", errors.New("empty artifact URI")
	}
	if strings.Contains(uri, "://") {
		u, err := url.Parse(uri)
		if err != nil {
			return "", fmt.Errorf("artifact URI %q: %w", uri, err)
		}
		if u.Scheme != "file" {
			return "", fmt.Errorf("artifact URI %q: scheme %q is not supported yet (only file://)", uri, u.Scheme)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("artifact URI %q: file URIs must not name a host", uri)
		}
		return filepath.FromSlash(u.Path), nil
	}
	if filepath.IsAbs(uri) || base == "" {
		return filepath.Clean(uri), nil
	}
	return filepath.Join(base, uri), nil
}
