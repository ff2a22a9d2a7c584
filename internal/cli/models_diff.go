package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/registry"
)

// diffRow is one compared field of two versions.
type diffRow struct {
	Field   string `json:"field"`
	A       string `json:"a"`
	B       string `json:"b"`
	Changed bool   `json:"changed"`
}

// diffVersions compares a and b field by field: parameters, metrics, data,
// spec and training environment.
func diffVersions(a, b registry.Version) []diffRow {
	var rows []diffRow
	add := func(field, x, y string) {
		rows = append(rows, diffRow{Field: field, A: x, B: y, Changed: x != y})
	}
	add("status", a.Status, b.Status)
	for _, k := range unionKeys(a.Params, b.Params) {
		add("params."+k, paramText(a.Params, k), paramText(b.Params, k))
	}
	mk := map[string]bool{}
	for k := range a.Metrics {
		mk[k] = true
	}
	for k := range b.Metrics {
		mk[k] = true
	}
	keys := make([]string, 0, len(mk))
	for k := range mk {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x, y := metricText(a.Metrics, k), metricText(b.Metrics, k)
		r := diffRow{Field: "metrics." + k, A: x, B: y, Changed: x != y}
		if xa, ok := a.Metrics[k]; ok {
			if yb, ok := b.Metrics[k]; ok && !math.IsNaN(xa) && !math.IsNaN(yb) && xa != yb {
				r.B += fmt.Sprintf(" (%+.4g)", yb-xa)
			}
		}
		rows = append(rows, r)
	}
	add("data.dataset_sha256", a.DatasetHash, b.DatasetHash)
	da, db := datasetsByRole(a.Datasets), datasetsByRole(b.Datasets)
	for _, role := range []string{registry.DatasetSource, registry.DatasetIngested, registry.DatasetTrain, registry.DatasetValid, registry.DatasetTest} {
		if da[role] == "" && db[role] == "" {
			continue
		}
		add("data."+role, da[role], db[role])
	}
	add("spec.sha256", a.SpecHash, b.SpecHash)
	add("spec.git_commit", gitText(a), gitText(b))
	add("train.image", a.Image, b.Image)
	add("train.runtime", a.Runtime, b.Runtime)
	add("train.trainer_version", a.TrainerVersion, b.TrainerVersion)
	add("run", a.RunID, b.RunID)
	return rows
}

func unionKeys(a, b map[string]any) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func paramText(p map[string]any, k string) string {
	v, ok := p[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func metricText(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func datasetsByRole(ds []registry.DatasetRef) map[string]string {
	out := map[string]string{}
	for _, d := range ds {
		s := d.URI
		if d.SHA256 != "" {
			s += " sha256:" + d.SHA256
		}
		out[d.Role] = s
	}
	return out
}

// longHex matches a hash (a git commit, a sha256).
var longHex = regexp.MustCompile(`[0-9a-f]{40,64}`)

// diffCellWidth keeps kiln models diff within 100 columns: the field name,
// two values and the mark.
const diffCellWidth = 36

// fitCell shortens a value for the diff table: hashes to 12 characters,
// then the middle of what is still too long.
func fitCell(s string) string {
	s = longHex.ReplaceAllStringFunc(strings.TrimSpace(s), func(h string) string { return h[:12] })
	if r := []rune(s); len(r) > diffCellWidth {
		s = string(r[:diffCellWidth/2-1]) + "…" + string(r[len(r)-diffCellWidth/2:])
	}
	return s
}

func gitText(v registry.Version) string {
	if v.GitCommit == "" {
		return ""
	}
	if v.GitDirty {
		return v.GitCommit + " (dirty)"
	}
	return v.GitCommit
}

func newModelsDiffCmd(cfg *Config) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two versions' parameters, metrics, data and training image",
		Long: `Compare two versions (NAME:VERSION or NAME@ALIAS; B may be a bare version
number of A's model): parameters, metrics (with B-A), datasets, spec and git
commit, trainer image, runtime and version. Only differing fields are shown
unless --all.`,
		Example: `  kiln models diff churn:2 churn:3
  kiln models diff churn@production 4 --all
  kiln models diff churn:2 churn:3 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			refA, refB := args[0], args[1]
			pa, err := registry.ParseRef(refA)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if n, err := strconv.ParseInt(refB, 10, 64); err == nil && n > 0 {
				refB = fmt.Sprintf("%s:%d", pa.Model, n)
			}
			if _, err := registry.ParseRef(refB); err != nil {
				return &exitError{code: 2, err: err}
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			a, err := reg.Resolve(ctx, refA)
			if err != nil {
				return err
			}
			b, err := reg.Resolve(ctx, refB)
			if err != nil {
				return err
			}
			rows := diffVersions(a, b)
			if !all {
				kept := rows[:0]
				for _, r := range rows {
					if r.Changed {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			if cfg.JSON {
				if rows == nil {
					rows = []diffRow{}
				}
				return printJSON(cfg.stdout, map[string]any{"a": fmt.Sprintf("%s:%d", a.Model, a.Version), "b": fmt.Sprintf("%s:%d", b.Model, b.Version), "fields": rows})
			}
			if len(rows) == 0 {
				fmt.Fprintf(cfg.stdout, "%s:%d and %s:%d do not differ in parameters, metrics, data or training\n", a.Model, a.Version, b.Model, b.Version)
				return nil
			}
			t := newTable(cfg.stdout, "FIELD", fmt.Sprintf("%s:%d", a.Model, a.Version), fmt.Sprintf("%s:%d", b.Model, b.Version), "")
			for _, r := range rows {
				mark := ""
				if r.Changed {
					mark = "*"
				}
				t.row(r.Field, dash(fitCell(r.A)), dash(fitCell(r.B)), mark)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(cfg.stdout, "(hashes and long values are shortened: --json prints them whole)")
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "show the fields that do not differ too")
	return cmd
}
