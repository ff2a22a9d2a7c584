package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
)

// ExpandForeach lists the items of a foreach step whose items are not
// literal:
//
//   - files: the regular files matching the glob (relative to the spec's
//     directory; absolute patterns are allowed), as absolute paths in
//     lexical order;
//   - row_groups: the row groups of the upstream dataset, "0" to "n-1".
//
// Literal items are returned as they are. No match is not an error (no
// items); a malformed pattern is InvalidInput.
func (a *Activities) ExpandForeach(ctx context.Context, in ExpandForeachInput) (ExpandForeachOutput, error) {
	fe := in.Foreach
	switch {
	case fe.Files != "":
		items, err := scorer.GlobFiles(fe.Files, in.Run.SpecDir)
		if err != nil {
			return ExpandForeachOutput{}, invalid("step %q: foreach files: %v", in.Step, err)
		}
		if err := a.confineAll(items); err != nil {
			return ExpandForeachOutput{}, err
		}
		return ExpandForeachOutput{Items: items}, nil
	case fe.RowGroups:
		ds := in.Inputs.Dataset
		if ds == nil {
			return ExpandForeachOutput{}, invalid("step %q: foreach row_groups needs an ingested dataset upstream", in.Step)
		}
		path, err := a.Store.Local(ctx, ds.URI)
		if err != nil {
			return ExpandForeachOutput{}, invalid("step %q: dataset: %v", in.Step, err)
		}
		r, err := dataset.OpenParquet(path)
		if err != nil {
			return ExpandForeachOutput{}, fmt.Errorf("step %q: reading the row groups of %s: %w", in.Step, path, err)
		}
		defer r.Close()
		items := make([]string, r.NumRowGroups())
		for i := range items {
			items[i] = strconv.Itoa(i)
		}
		return ExpandForeachOutput{Items: items}, nil
	}
	return ExpandForeachOutput{Items: append([]string{}, fe.Items...)}, nil
}

// WriteItemResults stores a chunk of a foreach step's item results as JSON
// lines (one ItemResult per line) at
// foreach/<run>/<step>/<chunk>.jsonl in the artifact store and returns its
// URI. The file is replaced atomically, so a retried chunk rewrites it whole.
func (a *Activities) WriteItemResults(ctx context.Context, in WriteItemResultsInput) (WriteItemResultsOutput, error) {
	if in.Step == "" || in.Chunk < 0 {
		return WriteItemResultsOutput{}, invalid("item results need a step and a chunk >= 0 (got step %q, chunk %d)", in.Step, in.Chunk)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range in.Results {
		if err := enc.Encode(r); err != nil {
			return WriteItemResultsOutput{}, invalid("step %q: encoding the result of item %d: %v", in.Step, r.Item.Index, err)
		}
	}
	rel := fmt.Sprintf("foreach/%s/%s/%d.jsonl", sanitize(in.Run.WorkflowID), sanitize(in.Step), in.Chunk)
	if err := a.writeAtomic(a.Store.LocalPath(rel), buf.Bytes()); err != nil {
		return WriteItemResultsOutput{}, fmt.Errorf("step %q: storing item results: %w", in.Step, err)
	}
	uri, err := a.Store.Put(ctx, rel)
	if err != nil {
		return WriteItemResultsOutput{}, fmt.Errorf("step %q: storing item results: %w", in.Step, err)
	}
	return WriteItemResultsOutput{URI: uri}, nil
}
