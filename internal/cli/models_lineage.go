package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/registry"
)

// lineageLink is one link of a version's lineage chain, from source data to
// the aliases serving it.
type lineageLink struct {
	// Stage is "source", "dataset", "spec", "run", "trigger", "training", "version",
	// "alias", "move" or "export".
	Stage string `json:"stage"`
	// ID identifies the thing: a URI, hash, workflow ID, name:version...
	ID string `json:"id"`
	// Detail says more, for people.
	Detail string `json:"detail,omitempty"`
}

// lineageChain lists v's lineage, source data first; history is the model's
// alias history (the moves that involve v are kept).
func lineageChain(v registry.Version, history []registry.AliasEvent, exports []registry.Export) []lineageLink {
	var out []lineageLink
	for _, d := range v.Datasets {
		if d.Role == registry.DatasetSource {
			out = append(out, lineageLink{Stage: "source", ID: d.URI, Detail: "as the spec names it"})
		}
	}
	for _, d := range v.Datasets {
		if d.Role == registry.DatasetSource {
			continue
		}
		var det []string
		det = append(det, d.Role)
		if d.SHA256 != "" {
			det = append(det, "sha256 "+d.SHA256)
		}
		if d.Rows > 0 {
			det = append(det, fmt.Sprintf("%d rows", d.Rows))
		}
		out = append(out, lineageLink{Stage: "dataset", ID: d.URI, Detail: strings.Join(det, ", ")})
	}
	if len(v.Datasets) == 0 && v.DatasetHash != "" {
		out = append(out, lineageLink{Stage: "dataset", ID: "sha256 " + v.DatasetHash, Detail: "training data (no URIs recorded)"})
	}
	if v.SpecHash != "" || v.GitCommit != "" {
		det := "git: not in a work tree"
		if v.GitCommit != "" {
			det = "git commit " + v.GitCommit
			if v.GitDirty {
				det += " (uncommitted changes)"
			}
		}
		out = append(out, lineageLink{Stage: "spec", ID: "sha256 " + v.SpecHash, Detail: det})
	}
	if v.RunID != "" {
		det := fmt.Sprintf("pipeline %s, step %s, by %s", dash(v.Pipeline), dash(v.Step), dash(v.CreatedBy))
		if v.WorkflowRunID != "" {
			det += ", Temporal run " + v.WorkflowRunID
		}
		out = append(out, lineageLink{Stage: "run", ID: v.RunID, Detail: det})
	}
	if v.Trigger != "" {
		out = append(out, lineageLink{Stage: "trigger", ID: v.Trigger, Detail: "what started the run"})
	}
	if v.Runtime != "" || v.Image != "" || v.TrainerVersion != "" {
		out = append(out, lineageLink{Stage: "training", ID: dash(v.Image),
			Detail: fmt.Sprintf("runtime %s, trainer %s", dash(v.Runtime), dash(v.TrainerVersion))})
	}
	vd := fmt.Sprintf("%s, created %s, bundle %s", v.Status, when(v.CreatedAt), v.BundleURI)
	if len(v.RequireApproval) > 0 {
		vd += ", approval required for " + strings.Join(v.RequireApproval, ", ")
	}
	out = append(out, lineageLink{Stage: "version", ID: fmt.Sprintf("%s:%d", v.Model, v.Version), Detail: vd})
	for _, a := range v.Aliases {
		out = append(out, lineageLink{Stage: "alias", ID: v.Model + "@" + a, Detail: "points here now"})
	}
	for _, e := range history {
		if e.To != v.Version && e.From != v.Version {
			continue
		}
		verb := "moved here"
		if e.To != v.Version {
			verb = fmt.Sprintf("moved away to %s", version(e.To))
		}
		out = append(out, lineageLink{Stage: "move", ID: v.Model + "@" + e.Alias,
			Detail: fmt.Sprintf("%s %s by %s: %s (%s)", verb, when(e.At), dash(e.Actor), dash(e.Reason), dash(e.RunID))})
	}
	for _, e := range exports {
		out = append(out, lineageLink{Stage: "export", ID: e.Path,
			Detail: fmt.Sprintf("%s for %s, %s by %s, sha256 %s, %d bytes", e.Format, e.Target, when(e.At), dash(e.By), e.SHA256, e.Bytes)})
	}
	return out
}

func newModelsLineageCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "lineage NAME:VERSION|NAME@ALIAS",
		Short: "Show where a version came from and where it is deployed",
		Long: `Print a version's lineage as a chain: the source data the spec names → the
ingested dataset and its splits (URIs, hashes, rows) → the spec (hash, git
commit) → the pipeline run (workflow ID, Temporal run ID, who) → training
(image, runtime, trainer version) → the version → the aliases pointing at it
now, every alias move that involved it, and every standalone predictor kiln
export wrote of it (where it runs outside Kiln). --json adds the full version
record, spec text included.`,
		Example: `  kiln models lineage churn:3
  kiln models lineage churn@production --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if _, err := registry.ParseRef(args[0]); err != nil {
				return &exitError{code: 2, err: err}
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			v, err := reg.Resolve(ctx, args[0])
			if err != nil {
				return err
			}
			history, err := reg.AliasHistory(ctx, v.Model, "")
			if err != nil {
				return err
			}
			exports, err := reg.Exports(ctx, v.Model, v.Version)
			if err != nil {
				return err
			}
			chain := lineageChain(v, history, exports)
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"version": v, "chain": chain})
			}
			t := newTable(cfg.stdout, "STAGE", "WHAT", "DETAILS")
			for _, l := range chain {
				t.row(l.Stage, l.ID, l.Detail)
			}
			return t.flush()
		},
	}
}
