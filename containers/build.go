package containers

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// BuildOptions configures BuildImage.
type BuildOptions struct {
	// ContextDir is the build context, sent to the engine as a tar stream.
	// .dockerignore is not interpreted: keep the context small.
	ContextDir string
	// Dockerfile is the Dockerfile's path relative to ContextDir
	// (default "Dockerfile").
	Dockerfile string
	// Tag is an optional reference to tag the image with, e.g.
	// "kiln/trainer:dev".
	Tag string
	// Log receives the build output (may be nil).
	Log io.Writer
}

// buildMessage is one JSON message of the engine's build output stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// successfullyBuilt matches the legacy builder's final line.
var successfullyBuilt = regexp.MustCompile(`Successfully built ([0-9a-f]{12,64})`)

// BuildImage builds an image from opts.ContextDir with the engine's legacy
// builder (BuildKit is not required), never pulling and always removing
// intermediate containers, streams the build output to opts.Log, and
// returns the image ID ("sha256:…").
func BuildImage(ctx context.Context, cli *client.Client, opts BuildOptions) (string, error) {
	if opts.Dockerfile == "" {
		opts.Dockerfile = "Dockerfile"
	}
	what := opts.Tag
	if what == "" {
		what = opts.ContextDir
	}
	if st, err := os.Stat(filepath.Join(opts.ContextDir, opts.Dockerfile)); err != nil {
		return "", fmt.Errorf("build %s: dockerfile: %w", what, err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("build %s: dockerfile %s is not a regular file", what, opts.Dockerfile)
	}

	pr, pw := io.Pipe()
	tarDone := make(chan struct{})
	go func() {
		defer close(tarDone)
		pw.CloseWithError(writeContextTar(pw, opts.ContextDir))
	}()
	defer func() {
		// Unblock the tar writer if the engine stopped reading early.
		_ = pr.Close()
		<-tarDone
	}()

	var tags []string
	if opts.Tag != "" {
		tags = []string{opts.Tag}
	}
	resp, err := cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags:        tags,
		Dockerfile:  filepath.ToSlash(opts.Dockerfile),
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", what, err)
	}
	defer resp.Body.Close()

	var id, lastStream string
	dec := json.NewDecoder(resp.Body)
	for {
		var msg buildMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("build %s: read build output: %w", what, err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return "", fmt.Errorf("build %s: %s", what, strings.TrimSpace(msg.ErrorDetail.Message))
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build %s: %s", what, strings.TrimSpace(msg.Error))
		}
		if len(msg.Aux) > 0 {
			var aux build.Result
			if json.Unmarshal(msg.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		if msg.Stream != "" {
			lastStream = msg.Stream
		}
		if opts.Log != nil {
			text := msg.Stream
			if text == "" && msg.Status != "" {
				text = msg.Status + "\n"
			}
			_, _ = io.WriteString(opts.Log, text) // Best effort, like any log.
		}
	}
	if id != "" {
		return id, nil
	}
	// Older engines only print the short ID; resolve it to the full one.
	ref := opts.Tag
	if m := successfullyBuilt.FindStringSubmatch(lastStream); m != nil {
		ref = m[1]
	}
	if ref == "" {
		return "", fmt.Errorf("build %s: engine reported no image ID", what)
	}
	return ImageID(ctx, cli, ref)
}

// writeContextTar writes dir as a tar stream, with paths relative to dir.
func writeContextTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case info.Mode().IsRegular(), info.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type %s", path, info.Mode().Type())
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tar build context %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar build context %s: %w", dir, err)
	}
	return nil
}

// ImageID returns the ID ("sha256:…") of the local image ref. A missing
// image yields an error telling how to build it.
func ImageID(ctx context.Context, cli *client.Client, ref string) (string, error) {
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %s not found: run `make images`", ref)
		}
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return img.ID, nil
}
