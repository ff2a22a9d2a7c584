// Command kiln-predict is the runtime of an exported Kiln model: `kiln
// export` writes a model bundle into a copy of it, for linux/amd64,
// linux/arm64, linux/arm, darwin/arm64, windows/amd64 or WASI (wasm).
// Run the exported file with --help for its command line; docs/export.md
// describes it. A bare runtime (no model inside) says so and exits.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/kiln-ml/kiln/internal/edge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := edge.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
