package serving

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// envLogWriter makes this test binary a request log writer child
// (RunLogWriter), for the tests of Options.LogWriter.
const envLogWriter = "KILN_SERVING_TEST_LOG_WRITER"

func TestMain(m *testing.M) {
	if os.Getenv(envLogWriter) != "" {
		if err := RunLogWriter(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
