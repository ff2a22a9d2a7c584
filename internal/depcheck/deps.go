// Package depcheck pins Kiln's direct dependencies while the packages that use
// them are being written, so `go mod tidy` keeps the versions in go.mod.
package depcheck

import (
	_ "github.com/apache/arrow/go/v17/arrow"
	_ "github.com/docker/docker/client"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/robfig/cron/v3"
	_ "github.com/spf13/cobra"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
