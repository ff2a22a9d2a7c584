package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// ImportOptions configures ImportImage.
type ImportOptions struct {
	// Tarball is a root file system as a tar file (not compressed, or
	// compressed in a format the engine detects), e.g. the output of
	// debootstrap tarred by containers/xgboost/build-rootfs.sh.
	Tarball string
	// Ref tags the image, e.g. "kiln/xgboost-base:dev". Required.
	Ref string
	// Changes are Dockerfile instructions applied to the image's
	// configuration (ENV, LABEL, USER, WORKDIR, ENTRYPOINT, CMD...).
	Changes []string
	// Log receives the engine's progress messages (may be nil).
	Log io.Writer
}

// ImportImage creates an image from a root file system tarball through the
// Engine API (POST /images/create?fromSrc=-, what `docker import` does):
// no registry is involved. It returns the image ID ("sha256:…").
func ImportImage(ctx context.Context, cli *client.Client, opts ImportOptions) (string, error) {
	if opts.Ref == "" {
		return "", errors.New("import image: a reference (tag) is required")
	}
	f, err := os.Open(opts.Tarball)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Ref, err)
	}
	defer f.Close()
	resp, err := cli.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, opts.Ref, image.ImportOptions{Changes: opts.Changes})
	if err != nil {
		return "", fmt.Errorf("import %s from %s: %w", opts.Ref, opts.Tarball, err)
	}
	defer resp.Close()
	dec := json.NewDecoder(resp)
	for {
		var msg buildMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("import %s: read engine output: %w", opts.Ref, err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return "", fmt.Errorf("import %s from %s: %s", opts.Ref, opts.Tarball, strings.TrimSpace(msg.ErrorDetail.Message))
		}
		if msg.Error != "" {
			return "", fmt.Errorf("import %s from %s: %s", opts.Ref, opts.Tarball, strings.TrimSpace(msg.Error))
		}
		if opts.Log != nil && msg.Status != "" {
			_, _ = io.WriteString(opts.Log, msg.Status+"\n") // Best effort, like any log.
		}
	}
	return ImageID(ctx, cli, opts.Ref)
}
