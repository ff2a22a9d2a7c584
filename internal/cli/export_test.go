package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// NewRootCommand builds the kiln command tree, for tests that walk it.
func NewRootCommand() *cobra.Command {
	return newRoot(&Config{stdout: io.Discard, stderr: io.Discard})
}
