//go:build kilnlite

package edge

import (
	"context"
	"errors"
	"io"
)

// Flavor is the runtime's flavour (see the full runtime's).
const Flavor = "lite"

// errNoParquet is what a lite predictor (built with -tags kilnlite, kiln
// export --lite) says when asked for Parquet.
var errNoParquet = &UsageError{errors.New("this predictor was exported with --lite: it reads and writes CSV and JSON Lines, not Parquet (export without --lite for Parquet)")}

// scoreViaParquet is not in a lite predictor.
func scoreViaParquet(ctx context.Context, s *rowScorer, o Options, in io.Reader, out io.Writer) error {
	return errNoParquet
}
