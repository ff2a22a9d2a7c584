package labels

import (
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/serving"
)

// TestLogColumnsMatchServing: the request log columns Join reads are the
// ones the model server writes. (labels does not import serving, which
// would pull the server into every user of labels; the test does.)
func TestLogColumnsMatchServing(t *testing.T) {
	for _, c := range []struct{ ours, theirs string }{
		{LogPrediction, serving.LogPrediction},
		{LogVersion, serving.LogVersion},
		{LogTimeMs, serving.LogTimeMs},
	} {
		if c.ours != c.theirs {
			t.Errorf("labels reads %q, serving writes %q", c.ours, c.theirs)
		}
	}
	types := map[string]dataset.Type{}
	for _, f := range serving.LogFields {
		types[f.Name] = f.Type
		if !strings.HasPrefix(f.Name, LogColumnPrefix) {
			t.Errorf("serving's column %q does not start with %q: JoinRows would take it for an input", f.Name, LogColumnPrefix)
		}
	}
	for _, f := range logFields {
		if f.Name == LogPredictionID {
			continue
		}
		if types[f.Name] != f.Type {
			t.Errorf("column %s: serving writes %s, labels reads %s", f.Name, types[f.Name], f.Type)
		}
	}
	switch typ, ok := types[LogPredictionID]; {
	case !ok:
		for name := range types {
			if strings.Contains(name, "id") {
				t.Errorf("serving logs %q; labels reads prediction IDs from %q", name, LogPredictionID)
			}
		}
		t.Logf("serving does not log %s yet", LogPredictionID)
	case typ != dataset.String:
		t.Errorf("serving logs %s as %s, labels reads a string", LogPredictionID, typ)
	}
}
