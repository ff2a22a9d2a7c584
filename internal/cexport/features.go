package cexport

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/transform"
)

// inputPlan is what the generated code does with one raw input column: a
// numeric column runs its numeric steps; a string column is imputed,
// encoded (onehot or ordinal) and, after ordinal, runs numeric steps.
type inputPlan struct {
	in dataset.Field
	// feature is the index of the column's first feature; nfeat how many
	// it produces.
	feature, nfeat int
	// fill is the string column's impute value (the first impute step;
	// later ones find no nulls); nil without one.
	fill *string
	// fillStep is the impute step that set fill.
	fillStep *transform.Step
	// enc is the string column's onehot or ordinal step.
	enc *transform.Step
	// num are the numeric steps, in order (after enc for string columns).
	num []*transform.Step
}

// planColumns groups the steps of t (valid) by input column, in order, and
// checks each column's steps form a sequence the generator expresses:
// numeric steps on numeric columns; impute, then onehot or ordinal (and
// numeric steps after ordinal) on string columns.
func planColumns(t *transform.Fitted) ([]inputPlan, error) {
	idx := make(map[string]int, len(t.Inputs))
	plans := make([]inputPlan, len(t.Inputs))
	for i, in := range t.Inputs {
		idx[in.Name] = i
		plans[i].in = in
		switch in.Type {
		case dataset.Float64, dataset.Int64, dataset.Bool, dataset.String:
		default:
			return nil, fmt.Errorf("input %q has type %q, which the C export does not support", in.Name, in.Type)
		}
	}
	for si := range t.Steps {
		s := &t.Steps[si]
		i, ok := idx[s.Column]
		if !ok {
			return nil, fmt.Errorf("steps[%d] (%s): no input column %q", si, s.Kind, s.Column)
		}
		p := &plans[i]
		bad := func(why string) error {
			return fmt.Errorf("steps[%d] (%s %s): %s", si, s.Kind, s.Column, why)
		}
		text := p.in.Type == dataset.String && p.enc == nil
		switch s.Kind {
		case transform.KindImpute:
			if text {
				if s.Text == nil {
					return nil, bad("a string column needs a string fill value")
				}
				if p.fill == nil {
					p.fill, p.fillStep = s.Text, s
				}
				continue
			}
			if s.Number == nil {
				return nil, bad("a numeric column needs a numeric fill value")
			}
		case transform.KindStandardize, transform.KindMinMax, transform.KindBucketize,
			transform.KindLog1p, transform.KindClip:
			if text {
				return nil, bad("the column is a string")
			}
		case transform.KindOnehot, transform.KindOrdinal:
			if !text {
				return nil, bad("the column is not an unencoded string column")
			}
			switch s.HandleUnknown {
			case "", transform.UnknownIgnore, transform.UnknownError, transform.UnknownAsCategory:
			default:
				return nil, bad(fmt.Sprintf("handle_unknown %q is not supported by the C export", s.HandleUnknown))
			}
			if s.NumericSpellings {
				// Matching "2" to the category "2.0" by value needs Go's
				// number syntax (strconv.ParseFloat), which C's strtod
				// does not share: refused rather than exported different.
				return nil, bad("its categories read as numbers and values are matched to them by value (numeric_spellings), which the C export does not express; encode such a column as numbers, or spell its categories as words")
			}
			p.enc = s
			continue
		default:
			return nil, bad(fmt.Sprintf("transform kind %q is not supported by the C export", s.Kind))
		}
		if p.enc != nil && p.enc.Kind == transform.KindOnehot {
			return nil, bad("the column is already one-hot encoded")
		}
		p.num = append(p.num, s)
	}
	j := 0
	for i := range plans {
		p := &plans[i]
		p.feature = j
		switch {
		case p.in.Type != dataset.String:
			p.nfeat = 1
		case p.enc == nil:
			return nil, fmt.Errorf("input %q is a string column without onehot or ordinal", p.in.Name)
		case p.enc.Kind == transform.KindOnehot:
			p.nfeat = len(p.enc.Categories)
			if p.enc.HandleUnknown == transform.UnknownAsCategory {
				p.nfeat++
			}
		default:
			p.nfeat = 1
		}
		j += p.nfeat
	}
	if j != len(t.Features) {
		return nil, fmt.Errorf("the steps produce %d features but the transforms list %d", j, len(t.Features))
	}
	return plans, nil
}

// lookupTable is a string column's categories as the generated code
// searches them: sorted byte-wise (strcmp's order) with their positions
// in the step. Categories containing a NUL byte are left out: no C string
// can equal them.
type lookupTable struct {
	cats  []string
	index []int
}

// newLookupTable builds the lookup table of categories.
func newLookupTable(categories []string) lookupTable {
	var t lookupTable
	order := make([]int, 0, len(categories))
	for k, c := range categories {
		if !strings.ContainsRune(c, 0) {
			order = append(order, k)
		}
	}
	sort.Slice(order, func(a, b int) bool { return categories[order[a]] < categories[order[b]] })
	for _, k := range order {
		t.cats = append(t.cats, categories[k])
		t.index = append(t.index, k)
	}
	return t
}

// featureTables writes the constant tables the features function reads:
// category lookups and bucketize boundaries.
func (g *gen) featureTables(w *writer) {
	for i, p := range g.cols {
		if p.enc != nil {
			lt := newLookupTable(p.enc.Categories)
			if len(lt.cats) > 0 {
				g.use("find")
				w.l("/* Categories of input %d %s, sorted as strcmp orders them, and their positions in the %s step. */", i, comment(p.in.Name), p.enc.Kind)
				w.l("static const char *const %s_cats_%d[%d] = {", g.p, i, len(lt.cats))
				for _, c := range lt.cats {
					w.l("    %s,", cstr(c))
				}
				w.l("};")
				w.f("static const int %s_cats_%d_index[%d] = {", g.p, i, len(lt.index))
				for k, x := range lt.index {
					if k%16 == 0 {
						w.f("\n   ")
					}
					w.f(" %d,", x)
				}
				w.l("\n};")
			}
		}
		for k, s := range p.num {
			if s.Kind == transform.KindBucketize {
				g.use("bucketize")
				w.l("/* Bucketize boundaries of input %d %s (step %d of the column). */", i, comment(p.in.Name), k)
				w.f("static const double %s_bounds_%d_%d[%d] = {", g.p, i, k, len(s.Boundaries))
				for b, x := range s.Boundaries {
					if b%4 == 0 {
						w.f("\n   ")
					}
					w.f(" %s,", dbl(x))
				}
				w.l("\n};")
			}
		}
	}
}

// featuresFunc writes <prefix>_features, which runs the fitted transforms
// on one row.
func (g *gen) featuresFunc(w *writer) {
	w.l("int %s_features(const struct %s_row *row, double *f)", g.p, g.p)
	w.l("{")
	w.l("    if (row == NULL || f == NULL) {")
	w.l("        return %s_EBAD_ARGUMENT;", g.P)
	w.l("    }")
	for i, p := range g.cols {
		fld := g.fields[i]
		w.l("    /* Input %d %s (%s) -> %s. */", i, comment(p.in.Name), p.in.Type, g.featureRange(p))
		w.l("    {")
		if p.in.Type == dataset.String {
			g.stringInput(w, i, p, fld)
		} else {
			w.l("        double x = row->%s;", fld.Member)
			if p.in.Type == dataset.Bool {
				w.l("        if (x == 0.0) {")
				w.l("            x = 0.0; /* -0 is false, as Go's 0 */")
				w.l("        } else if (!(x != x || x == 1.0)) {")
				w.l("            return %s_EBAD_BOOL;", g.P)
				w.l("        }")
			}
			g.numericSteps(w, i, p.num)
			w.l("        f[%d] = x;", p.feature)
		}
		w.l("    }")
	}
	w.l("    return %s_OK;", g.P)
	w.l("}")
}

// featureRange describes the features an input produces, for comments.
func (g *gen) featureRange(p inputPlan) string {
	names := g.t.Features[p.feature : p.feature+p.nfeat]
	if len(names) == 1 {
		return fmt.Sprintf("f[%d] %s", p.feature, comment(names[0]))
	}
	return fmt.Sprintf("f[%d..%d] %s..%s", p.feature, p.feature+p.nfeat-1, comment(names[0]), comment(names[len(names)-1]))
}

// stringInput writes the code of string input i.
func (g *gen) stringInput(w *writer, i int, p inputPlan, fld Field) {
	s := p.enc
	lt := newLookupTable(s.Categories)
	w.l("        const char *s = row->%s;", fld.Member)
	w.l("        int k;")
	// A NULL becomes the fill value when the column is imputed; its
	// category is known now (Go looks the fill up as it looks up any
	// value).
	nullK := -1
	if p.fill != nil {
		for k, c := range s.Categories {
			if c == *p.fill {
				nullK = k
			}
		}
		w.l("        /* impute (%s): NULL -> %s, category %d */", p.fillStep.Strategy, comment(*p.fill), nullK)
	}
	w.l("        if (s == NULL) {")
	w.l("            k = %d;", nullK)
	w.l("        } else {")
	if len(lt.cats) > 0 {
		w.l("            k = %s_find(s, %s_cats_%d, %s_cats_%d_index, %d);", g.p, g.p, i, g.p, i, len(lt.cats))
	} else {
		w.l("            k = -1; /* no category is a C string */")
	}
	w.l("        }")
	unknown := s.HandleUnknown
	if unknown == "" {
		unknown = transform.UnknownIgnore
	}
	n := len(s.Categories)
	if s.Kind == transform.KindOnehot {
		w.l("        /* onehot, %d categories, handle_unknown %s */", n, unknown)
		w.l("        {")
		w.l("            int j;")
		w.l("            for (j = 0; j < %d; j++) {", p.nfeat)
		w.l("                f[%d + j] = 0.0;", p.feature)
		w.l("            }")
		w.l("        }")
		w.l("        if (k >= 0) {")
		w.l("            f[%d + k] = 1.0;", p.feature)
		switch unknown {
		case transform.UnknownError:
			w.l("        } else {")
			w.l("            return %s_EUNKNOWN_CATEGORY;", g.P)
		case transform.UnknownAsCategory:
			w.l("        } else {")
			w.l("            f[%d] = 1.0; /* %s */", p.feature+n, comment(transform.UnknownCategory))
		}
		w.l("        }")
		return
	}
	w.l("        /* ordinal, %d categories, handle_unknown %s */", n, unknown)
	w.l("        double x;")
	w.l("        if (k >= 0) {")
	w.l("            x = (double)k;")
	w.l("        } else {")
	switch unknown {
	case transform.UnknownError:
		w.l("            return %s_EUNKNOWN_CATEGORY;", g.P)
	case transform.UnknownAsCategory:
		w.l("            x = %d.0;", n)
	default:
		w.l("            x = -1.0;")
	}
	w.l("        }")
	g.numericSteps(w, i, p.num)
	w.l("        f[%d] = x;", p.feature)
}

// numericSteps writes the numeric steps of input i on the double x, as
// transform.applyNumeric runs them.
func (g *gen) numericSteps(w *writer, i int, steps []*transform.Step) {
	for k, s := range steps {
		switch s.Kind {
		case transform.KindImpute:
			w.l("        if (x != x) { /* impute (%s): %s */", s.Strategy, dec(*s.Number))
			w.l("            x = %s;", dbl(*s.Number))
			w.l("        }")
		case transform.KindStandardize:
			w.l("        x = (x - %s) / %s; /* standardize: mean %s, std %s */", dbl(s.Mean), dbl(s.Std), dec(s.Mean), dec(s.Std))
		case transform.KindMinMax:
			w.l("        x = (x - %s) / %s; /* minmax: min %s, range %s */", dbl(s.Min), dbl(s.Range), dec(s.Min), dec(s.Range))
		case transform.KindBucketize:
			w.l("        if (x == x) { /* bucketize: the number of boundaries <= x */")
			w.l("            x = %s_bucketize(x, %s_bounds_%d_%d, %d);", g.p, g.p, i, k, len(s.Boundaries))
			w.l("        }")
		case transform.KindLog1p:
			g.use("log1p")
			w.l("        if (x <= -1.0) {")
			if s.OnInvalid == transform.InvalidClip {
				w.l("            x = %s; /* log1p on_invalid clip: %s */", dbl(*s.Low), dec(*s.Low))
			} else {
				w.l("            return %s_EINVALID_LOG1P;", g.P)
			}
			w.l("        }")
			w.l("        x = %s_log1p(x);", g.p)
		case transform.KindClip:
			var conds []string
			if s.Low != nil {
				conds = append(conds, fmt.Sprintf("if (x < %s) { /* clip low %s */\n            x = %s;\n        }", dbl(*s.Low), dec(*s.Low), dbl(*s.Low)))
			}
			if s.High != nil {
				conds = append(conds, fmt.Sprintf("if (x > %s) { /* clip high %s */\n            x = %s;\n        }", dbl(*s.High), dec(*s.High), dbl(*s.High)))
			}
			w.l("        %s", strings.Join(conds, " else "))
		}
	}
}

// use records that the source needs the named static helper.
func (g *gen) use(name string) {
	if g.helpers == nil {
		g.helpers = map[string]bool{}
	}
	g.helpers[name] = true
}
