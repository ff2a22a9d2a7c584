package serving

import (
	"fmt"
	"net/http"
	"strings"
)

// v1Rows turns the instances of a KServe v1 predict request into rows. An
// instance is an object of column → value, or (as KServe's v1 examples
// send tabular rows) an array of the model's input values in the order of
// its inputs (the stable version's); null is an empty row.
func v1Rows(m *served, instances []any) ([]map[string]any, error) {
	rows := make([]map[string]any, len(instances))
	for i, inst := range instances {
		switch x := inst.(type) {
		case map[string]any:
			rows[i] = x
		case nil:
			rows[i] = map[string]any{}
		case []any:
			l := m.cur.Load()
			if l == nil {
				return nil, fmt.Errorf("model %q is not ready: it has no deployment", m.name)
			}
			inputs := l.stable.Manifest.Inputs
			if len(x) != len(inputs) {
				return nil, fmt.Errorf("instances[%d] has %d values but the model has %d inputs: %s", i, len(x), len(inputs), strings.Join(fieldNames(inputs), ", "))
			}
			row := make(map[string]any, len(x))
			for j, f := range inputs {
				row[f.Name] = x[j]
			}
			rows[i] = row
		default:
			return nil, fmt.Errorf("decoding request body: instances[%d] is %s: want an object {\"column\": value, ...} or an array of the model's inputs in order", i, describeJSON(inst))
		}
	}
	return rows, nil
}

// handleLiveV1 is KServe v1's liveness route, GET /.
func (s *Server) handleLiveV1(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}
