package serving

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
)

// The v1 answer is written by hand rather than by encoding/json's
// reflection, which took ~7% of a one-row request's CPU time; the bytes are
// the same as json.Encoder's (TestAppendPredictResponse compares them).

// encodeBufs recycles answer buffers.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writePredictResponse writes r as JSON with status 200.
func writePredictResponse(w http.ResponseWriter, r PredictResponse) {
	bp := encodeBufs.Get().(*[]byte)
	b := appendPredictResponse((*bp)[:0], r)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		encodeBufs.Put(bp)
	}
}

// appendPredictResponse appends json.Marshal(r) to b. The predictions
// must be finite (predict refuses others).
func appendPredictResponse(b []byte, r PredictResponse) []byte {
	b = append(b, `{"predictions":`...)
	if r.Predictions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range r.Predictions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONFloat(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"prediction_ids":`...)
	if r.PredictionIDs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range r.PredictionIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, id)
		}
		b = append(b, ']')
	}
	b = append(b, `,"model_name":`...)
	b = appendJSONString(b, r.ModelName)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendInt(b, r.ModelVersion, 10)
	b = append(b, `,"variant":`...)
	b = appendJSONString(b, r.Variant)
	if len(r.Classes) > 0 {
		b = appendStrings(append(b, `,"classes":`...), r.Classes)
	}
	if len(r.Labels) > 0 {
		b = appendStrings(append(b, `,"labels":`...), r.Labels)
	}
	if len(r.Probabilities) > 0 {
		b = append(b, `,"probabilities":[`...)
		for i, row := range r.Probabilities {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for j, p := range row {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONFloat(b, p)
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONFloat formats f as encoding/json does: shortest round-trip
// digits, exponent form below 1e-6 and from 1e21 on, "e-7" not "e-07".
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...) // not reached: predict refuses them
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString quotes s as encoding/json does (HTML-safe): strings of
// plain printable ASCII directly, others through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
