package activities

import (
	"context"
	"errors"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/scorer/remote"
)

// stageRemoteInput stages a remote scoring input into the artifact store's
// object cache (cache/objects), heartbeating the fetch.
func (a *Activities) stageRemoteInput(ctx context.Context, pl *pulse, input string) ([]string, error) {
	files, err := remote.Stage(ctx, input, remote.StageOptions{
		CacheDir: a.Store.LocalPath("cache/objects"),
		Progress: transferProgress(pl, "fetched", input),
	})
	if errors.Is(err, artifact.ErrNotFound) {
		return nil, invalid("score input %v", err)
	}
	return files, err
}
