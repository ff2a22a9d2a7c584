package pipelines

import (
	"net/url"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decoding of the data plane's configuration: ingest (sources, formats,
// schema overrides, expectations) and preprocess transforms.

var (
	ingestTypes    = []string{"int64", "float64", "string", "bool"}
	expectKeys     = []string{"min_rows", "columns", "not_null", "ranges", "allowed", "unique"}
	handleUnknowns = []string{"ignore", "error", "as_category"}
	onInvalids     = []string{"error", "clip"}
	// objectStores are the URL schemes of the object stores ingest reads
	// (as internal/artifact.RemoteSchemes); otherStores are object stores
	// it does not.
	objectStores = []string{"s3", "gs"}
	otherStores  = []string{"gcs", "az", "azblob", "abfs", "abfss", "wasb", "wasbs"}
)

// FormatOf returns the ingest format a source's extension implies ("csv",
// "jsonl" or "parquet"), or "" when it implies none. A trailing .gz is
// allowed for CSV and JSON Lines. URLs are judged by their path.
func FormatOf(source string) string {
	p := strings.ToLower(sourcePath(source))
	gz := false
	if rest, ok := strings.CutSuffix(p, ".gz"); ok {
		p, gz = rest, true
	}
	switch path.Ext(p) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson":
		return "jsonl"
	case ".parquet", ".pq":
		if !gz {
			return "parquet"
		}
	}
	return ""
}

// sourcePath returns the path part of a source: a plain path or the path of
// a file:// or http(s):// URL.
func sourcePath(source string) string {
	if i := strings.Index(source, "://"); i > 0 {
		if u, err := url.Parse(source); err == nil {
			return u.Path
		}
		return source[i+3:]
	}
	return source
}

// decodeIngest reads an ingest step's with; fe is the step's foreach, whose
// files pattern gives the format of a source such as ${item}.
func (d *decoder) decodeIngest(o *object, fe *Foreach) *IngestConfig {
	c := &IngestConfig{}
	o.requiredString("source", &c.Source)
	if c.Source != "" {
		d.checkLocation(o, "source", c.Source, sourceLocation)
	}
	if o.str("format", &c.Format) {
		o.oneOf("format", c.Format, "format", formats)
	} else if c.Source != "" {
		source := c.Source
		if fe != nil && fe.Files != "" {
			source = strings.ReplaceAll(source, "${item}", fe.Files)
		}
		if c.Format = FormatOf(source); c.Format == "" {
			n, p := o.where("source")
			d.errorf(n, p, "cannot tell the format of %q from its extension (.csv, .jsonl, .ndjson, optionally .gz, or .parquet); set format: csv, jsonl or parquet", c.Source)
		}
	}
	if n, p, ok := o.get("schema"); ok {
		d.columnMap(n, p, func(k, v *yaml.Node, name, vpath string) {
			s, ok := d.scalar(v, vpath, "a column type ("+quoteList(ingestTypes)+")")
			if !ok {
				return
			}
			t, ok := d.asString(s, vpath)
			if !ok {
				return
			}
			if !contains(ingestTypes, t) {
				d.errorf(v, vpath, "unknown column type %q%s (types: %s)", t, didYouMean(t, ingestTypes), quoteList(ingestTypes))
				return
			}
			if c.Schema == nil {
				c.Schema = map[string]string{}
			}
			c.Schema[name] = t
		})
		if c.Format == "parquet" {
			k := o.keys["schema"]
			d.errorf(k, p, "schema overrides apply to csv and jsonl sources; a parquet file's types are its own")
		}
	}
	d.decodeExpect(d.object(o.vals["expect"], o.at, joinPath(o.path, "expect"), expectKeys), &c.Expect)
	return c
}

// locationKind says what a path-or-URL field accepts.
type locationKind int

const (
	// sourceLocation: ingest's source, one file: a path, file://,
	// http(s):// or an object URL naming one object.
	sourceLocation locationKind = iota
	// scoreInputLocation: a score step's input: a path (file, directory,
	// glob, prefix), file:// or an object URL naming an object or prefix.
	scoreInputLocation
	// outputLocation: a path or file:// URL.
	outputLocation
)

// checkLocation reports a value of field that the step cannot use: an
// unknown URL scheme, an object store other than S3 and GCS (or one where
// only local paths work), an object URL without a bucket, or (for a
// source) without a key. In a value with runtime references (${run.*},
// ${steps.*}, ${item}) only what they cannot change is checked: the scheme,
// and an object URL's bucket and trailing "/" when written out; the rest is
// checked when the references are resolved.
func (d *decoder) checkLocation(o *object, field, value string, kind locationKind) {
	i := strings.Index(value, "://")
	if i <= 0 || strings.Contains(value[:i], "${") {
		return
	}
	if hasRuntimeRef(value) {
		if contains(objectStores, strings.ToLower(value[:i])) && kind != outputLocation {
			scheme := strings.ToLower(value[:i])
			bucket, key, _ := strings.Cut(value[i+3:], "/")
			key, _, _ = strings.Cut(key, "?")
			n, p := o.where(field)
			switch {
			case bucket == "":
				d.errorf(n, p, "%s:// URL without a bucket: want %s://bucket/key, found %q", scheme, scheme, value)
			case kind == sourceLocation && strings.HasSuffix(key, "/"):
				d.errorf(n, p, "%s:// sources name one object: %s://bucket/key, found %q", scheme, scheme, value)
			}
			return
		}
	}
	scheme := strings.ToLower(value[:i])
	n, p := o.where(field)
	var accepts string
	switch kind {
	case sourceLocation:
		accepts = "a local path, a file://, http(s)://, s3:// or gs:// URL"
	case scoreInputLocation:
		accepts = "a local path, a file://, s3:// or gs:// URL"
	default:
		accepts = "a local path or a file:// URL"
	}
	switch {
	case scheme == "file":
	case (scheme == "http" || scheme == "https") && kind == sourceLocation:
	case contains(objectStores, scheme) && kind != outputLocation:
		u, err := url.Parse(value)
		key := ""
		if err == nil {
			key = strings.TrimPrefix(u.Path, "/")
		}
		switch {
		case err != nil:
			d.errorf(n, p, "invalid %s:// URL: %v", scheme, err)
		case u.Host == "":
			d.errorf(n, p, "%s:// URL without a bucket: want %s://bucket/key, found %q", scheme, scheme, value)
		case kind == sourceLocation && (key == "" || strings.HasSuffix(key, "/")):
			d.errorf(n, p, "%s:// sources name one object: %s://bucket/key, found %q", scheme, scheme, value)
		}
	case scheme == "gcs":
		d.errorf(n, p, "Google Cloud Storage objects are gs://bucket/key, found %q", value)
	case contains(objectStores, scheme), contains(otherStores, scheme), scheme == "http", scheme == "https":
		d.errorf(n, p, "%s %s:// is not supported; use %s", field, scheme, accepts)
	default:
		d.errorf(n, p, "unsupported %s scheme %q (use %s)", field, scheme, accepts)
	}
}

// decodeExpect reads the expect mapping of an ingest step.
func (d *decoder) decodeExpect(e *object, x *Expectations) {
	if e.int64("min_rows", &x.MinRows) && x.MinRows < 0 {
		n, p := e.where("min_rows")
		d.errorf(n, p, "min_rows must not be negative, found %d", x.MinRows)
	}
	e.strings("columns", &x.Columns)
	e.strings("not_null", &x.NotNull)
	e.strings("unique", &x.Unique)
	if n, p, ok := e.get("ranges"); ok {
		d.columnMap(n, p, func(k, v *yaml.Node, name, vpath string) {
			r := d.object(v, k, vpath, []string{"min", "max"})
			if !r.ok {
				return
			}
			var rg Range
			var lo, hi float64
			if r.float("min", &lo) {
				rg.Min = &lo
			}
			if r.float("max", &hi) {
				rg.Max = &hi
			}
			switch {
			case rg.Min == nil && rg.Max == nil:
				if r.size == len(r.keys) && !r.has("min") && !r.has("max") {
					d.errorf(r.at, vpath, "a range needs min, max or both")
				}
				return
			case rg.Min != nil && rg.Max != nil && lo > hi:
				n, p := r.where("max")
				d.errorf(n, p, "max (%g) must not be below min (%g)", hi, lo)
				return
			}
			if x.Ranges == nil {
				x.Ranges = map[string]Range{}
			}
			x.Ranges[name] = rg
		})
	}
	if n, p, ok := e.get("allowed"); ok {
		d.columnMap(n, p, func(k, v *yaml.Node, name, vpath string) {
			items, paths, ok := d.list(v, vpath, false)
			if !ok {
				return
			}
			if len(items) == 0 {
				d.errorf(v, vpath, "list at least one allowed value")
				return
			}
			vals := make([]string, 0, len(items))
			for i, it := range items {
				s, ok := d.scalar(it, paths[i], wantString)
				if !ok {
					return
				}
				str, ok := d.asString(s, paths[i])
				if !ok {
					return
				}
				vals = append(vals, str)
			}
			if x.Allowed == nil {
				x.Allowed = map[string][]string{}
			}
			x.Allowed[name] = vals
		})
	}
}

// columnMap calls fn for each key/value pair of the mapping n, whose keys
// are column names, reporting non-mappings, non-string and duplicate keys.
func (d *decoder) columnMap(n *yaml.Node, path string, fn func(k, v *yaml.Node, name, vpath string)) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping from column names, found %s", describeNode(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for _, pr := range d.pairs(n, path) {
		k, v := d.deref(pr.key), d.deref(pr.value)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(k, path, "column names must be non-empty strings, found %s", describeNode(k))
			continue
		}
		vpath := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			if !pr.merged {
				d.errorf(k, vpath, "duplicate key %q (first at line %d)", k.Value, first.Line)
			}
			continue
		}
		seen[k.Value] = k
		if v == nil || isNull(v) {
			d.errorf(k, vpath, "column %q has no value", k.Value)
			continue
		}
		fn(k, v, k.Value, vpath)
	}
}

// floats reads a list of finite numbers.
func (o *object) floats(key string, dst *[]float64) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	items, paths, ok := o.d.list(n, path, false)
	if !ok {
		return false
	}
	out := make([]float64, 0, len(items))
	for i, item := range items {
		s, ok := o.d.scalar(item, paths[i], wantNumber)
		if !ok {
			return false
		}
		v, ok := o.d.asFloat(s, paths[i])
		if !ok {
			return false
		}
		out = append(out, v)
	}
	*dst = out
	return true
}

// transformOptions are the keys each transform kind accepts.
var transformOptions = map[string][]string{
	"impute":      {"columns", "strategy", "value"},
	"standardize": {"columns"},
	"minmax":      {"columns"},
	"onehot":      {"columns", "max_categories", "handle_unknown"},
	"ordinal":     {"columns", "max_categories", "handle_unknown"},
	"bucketize":   {"columns", "boundaries", "quantiles"},
	"log1p":       {"columns", "on_invalid"},
	"clip":        {"columns", "min", "max", "percentiles"},
}

func (d *decoder) decodeTransform(item *yaml.Node, path string) (Transform, bool) {
	o := d.object(item, item, path, transformKeys)
	if !o.ok {
		return Transform{}, false
	}
	var present []string
	for _, k := range transformKeys {
		if _, ok := o.keys[k]; ok {
			present = append(present, k)
		}
	}
	switch len(present) {
	case 0:
		if o.size == 0 {
			d.errorf(o.at, path, "a transform is a mapping with one key: %s", quoteList(transformKeys))
		}
		return Transform{}, false
	case 1:
	default:
		d.errorf(o.keys[present[1]], path, "a transform has exactly one key (%s), found %d: %s; write each as its own list item",
			quoteList(transformKeys), len(present), quoteList(present))
		return Transform{}, false
	}
	t := Transform{Kind: present[0], Columns: []string{"*"}}
	bpath := joinPath(path, t.Kind)
	b := d.object(o.vals[t.Kind], o.keys[t.Kind], bpath, transformOptions[t.Kind])
	switch t.Kind {
	case "impute":
		t.Strategy = "median"
		if b.str("strategy", &t.Strategy) {
			b.oneOf("strategy", t.Strategy, "impute strategy", strategies)
			if t.Strategy == "mode" {
				t.Strategy = "most_frequent"
			}
		}
		if n, p, ok := b.get("value"); ok {
			if t.Strategy != "constant" {
				k := b.keys["value"]
				d.errorf(k, p, "value is only used with strategy: constant")
			} else if s, ok := d.scalar(n, p, "a number or a string"); ok {
				switch s.tag {
				case "!!int":
					t.Value = s.i
				case "!!float":
					t.Value, _ = d.asFloat(s, p)
				case "!!str":
					t.Value = s.str
				default:
					d.typeError(s, p, "a number or a string")
				}
			}
		} else if t.Strategy == "constant" && b.ok {
			d.errorf(b.at, bpath, "strategy constant needs a value to fill in; add value: <number or string>")
		}
	case "onehot", "ordinal":
		t.MaxCategories = 50
		if b.int("max_categories", &t.MaxCategories) && t.MaxCategories < 1 {
			n, p := b.where("max_categories")
			d.errorf(n, p, "max_categories must be at least 1, found %d", t.MaxCategories)
		}
		if b.str("handle_unknown", &t.HandleUnknown) {
			b.oneOf("handle_unknown", t.HandleUnknown, "handle_unknown", handleUnknowns)
		}
	case "bucketize":
		hasB := b.floats("boundaries", &t.Boundaries)
		hasQ := b.int("quantiles", &t.Quantiles)
		switch {
		case hasB && hasQ:
			k := b.keys["quantiles"]
			d.errorf(k, joinPath(bpath, "quantiles"), "give boundaries or quantiles, not both")
		case hasB:
			if len(t.Boundaries) == 0 {
				n, p := b.where("boundaries")
				d.errorf(n, p, "list at least one boundary")
			}
			for i := 1; i < len(t.Boundaries); i++ {
				if t.Boundaries[i] <= t.Boundaries[i-1] {
					n, p := b.where("boundaries")
					d.errorf(n, p, "boundaries must be strictly increasing: %g follows %g", t.Boundaries[i], t.Boundaries[i-1])
					break
				}
			}
		case hasQ:
			if t.Quantiles < 2 || t.Quantiles > 1000 {
				n, p := b.where("quantiles")
				d.errorf(n, p, "quantiles must be from 2 to 1000, found %d", t.Quantiles)
			}
		case b.ok && !b.has("boundaries") && !b.has("quantiles") && b.unknown == 0:
			d.errorf(b.at, bpath, "bucketize needs boundaries: [..] or quantiles: n")
		}
	case "log1p":
		if b.str("on_invalid", &t.OnInvalid) {
			b.oneOf("on_invalid", t.OnInvalid, "on_invalid", onInvalids)
		}
	case "clip":
		var lo, hi float64
		if b.float("min", &lo) {
			t.Min = &lo
		}
		if b.float("max", &hi) {
			t.Max = &hi
		}
		hasP := b.floats("percentiles", &t.Percentiles)
		switch {
		case hasP && (t.Min != nil || t.Max != nil):
			k := b.keys["percentiles"]
			d.errorf(k, joinPath(bpath, "percentiles"), "give min/max or percentiles, not both")
		case hasP:
			ps := t.Percentiles
			if len(ps) != 2 || ps[0] < 0 || ps[1] > 100 || ps[0] >= ps[1] {
				n, p := b.where("percentiles")
				d.errorf(n, p, "percentiles must be [low, high] with 0 <= low < high <= 100")
			}
		case t.Min != nil && t.Max != nil && lo > hi:
			n, p := b.where("max")
			d.errorf(n, p, "max (%g) must not be below min (%g)", hi, lo)
		case t.Min == nil && t.Max == nil && b.ok && !b.has("min") && !b.has("max") && !b.has("percentiles") && b.unknown == 0:
			d.errorf(b.at, bpath, "clip needs min, max or percentiles: [low, high]")
		}
	}
	if b.strings("columns", &t.Columns) && len(t.Columns) == 0 {
		n, p := b.where("columns")
		d.errorf(n, p, `list at least one column, or ["*"] for all`)
	}
	return t, true
}
