package pipelines

import (
	"errors"
	"strings"
	"testing"
)

// TestContainerGPUs checks container.gpus: "all" or a count, from the spec
// or a parameter, with positioned errors for anything else.
func TestContainerGPUs(t *testing.T) {
	spec := func(gpus string) string {
		return `apiVersion: kiln/v1
kind: Pipeline
name: g
params: {n: 2, word: many}
steps:
  - name: ingest
    uses: ingest
    with: {source: a.csv}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with: {target: y}
  - name: train
    uses: train
    needs: [prep]
    container: {image: kiln/xgboost:dev, gpus: ` + gpus + `}
    with: {algorithm: logistic}
`
	}
	tests := []struct {
		gpus string
		want int
		err  string // "file:line:col: path: message"
	}{
		{gpus: "all", want: GPUsAll},
		{gpus: "ALL", want: GPUsAll},
		{gpus: "0", want: 0},
		{gpus: "2", want: 2},
		{gpus: `"3"`, want: 3},
		{gpus: `"${params.n}"`, want: 2},
		{gpus: "-1", err: "f.yaml:16:48: steps[2].container.gpus: gpus must be `all` or a number of GPUs (0 to 1024), found \"-1\""},
		{gpus: "many", err: "f.yaml:16:48: steps[2].container.gpus: gpus must be `all` or a number of GPUs (0 to 1024), found \"many\""},
		{gpus: `"${params.word}"`, err: "gpus must be `all` or a number of GPUs (0 to 1024), found \"many\" (from ${params.word})"},
		{gpus: "1.5", err: "f.yaml:16:48: steps[2].container.gpus: gpus must be `all` or a number of GPUs"},
		{gpus: "[1]", err: "f.yaml:16:48: steps[2].container.gpus: expected `all` or a number of GPUs, found a list"},
	}
	for _, tt := range tests {
		t.Run(tt.gpus, func(t *testing.T) {
			s, err := Parse("f.yaml", []byte(spec(tt.gpus)), nil)
			if tt.err != "" {
				var ps Problems
				if !errors.As(err, &ps) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: err = %v, want problems containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := s.Step("train").Container.GPUs; got != tt.want {
				t.Errorf("gpus = %d, want %d", got, tt.want)
			}
		})
	}
}
