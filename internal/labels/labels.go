// Package labels ingests late labels and joins them to served predictions.
//
// Labels are data (DESIGN.md §13): a pushed labels file (CSV, JSON Lines or
// Parquet) is normalised to a Parquet file of (id, label, time), stored
// content-addressed under the artifact store at
// labels/<model>/<sha256>.parquet and recorded in the registry as a label
// batch (Push). Rows that cannot be used are counted and reported with
// examples, never dropped silently. Poll pushes every new file of a
// directory, glob, path prefix or object-store prefix, idempotently.
//
// Join matches label batches to the request logs the model server writes
// (one Parquet file per flush, with a prediction ID column) by prediction
// ID, streaming the logs so that memory grows with the number of labels,
// not of predictions. JoinRows writes the joined rows with the model's
// input features as a training dataset.
package labels

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Request log columns read by Join, equal to the model server's
// (internal/serving: LogPrediction, LogVersion, LogTimeMs and the
// prediction ID column). Input features are the request log's other
// columns: every column the server adds starts with LogColumnPrefix.
const (
	LogPredictionID = "_kiln_prediction_id"
	LogPrediction   = "_kiln_prediction"
	LogVersion      = "_kiln_model_version"
	LogTimeMs       = "_kiln_ts_ms"
	// LogVariant is the variant that answered ("stable", "canary" or an
	// experiment's variant); logs written before it existed lack it.
	LogVariant      = "_kiln_variant"
	LogColumnPrefix = "_kiln_"
)

// Columns of a normalised label batch file, in file order: the prediction
// ID (string), the label (float64; booleans as 1 and 0) and the label's
// event time (int64 Unix milliseconds). No value is null.
const (
	ColumnID    = "id"
	ColumnLabel = "label"
	ColumnTime  = "time"
)

// Default column names of a pushed labels file.
const (
	DefaultIDColumn    = "id"
	DefaultLabelColumn = "label"
	DefaultTimeColumn  = "time"
)

// DefaultWindow is the default join window: a label joins a prediction made
// at most this long before it.
const DefaultWindow = 14 * 24 * time.Hour

// MaxExamples is how many examples reports keep per kind of problem.
const MaxExamples = 5

// batchRows is the number of rows per row group of written files and per
// batch of streamed reads.
const batchRows = 65536

// Bounds telling Unix seconds from milliseconds: a number of magnitude
// below secondsBelow is seconds (up to the year 5138), else milliseconds up
// to msBelow (the same year); larger numbers are microseconds or
// nanoseconds, which are refused rather than guessed.
const (
	secondsBelow = 1e11
	msBelow      = 1e14
)

// cellKind is the kind of a value read from a labels file.
type cellKind uint8

const (
	cellNull cellKind = iota
	cellText
	cellNumber // a float (num), with its text when read from text
	cellInt
	cellBool
	cellMillis // a time in Unix milliseconds (i), from a TIMESTAMP column
	cellOther  // a JSON object or array
)

// cell is one value of a labels file before validation.
type cell struct {
	kind cellKind
	text string // cellText, and the source text of a cellNumber if any
	num  float64
	i    int64
	b    bool
}

// show renders a cell for messages, cut to a readable length.
func (c cell) show() string {
	var s string
	switch c.kind {
	case cellNull:
		return "null"
	case cellText:
		s = strconv.Quote(c.text)
	case cellNumber:
		s = c.text
		if s == "" {
			s = strconv.FormatFloat(c.num, 'g', -1, 64)
		}
	case cellInt:
		s = strconv.FormatInt(c.i, 10)
	case cellBool:
		s = strconv.FormatBool(c.b)
	case cellMillis:
		s = time.UnixMilli(c.i).UTC().Format(time.RFC3339Nano)
	default:
		s = c.text
		if s == "" {
			s = "a nested value"
		}
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// Rejection reasons, in report order.
const (
	ReasonMissingID    = "missing id"
	ReasonInvalidID    = "invalid id"
	ReasonMissingLabel = "missing label"
	ReasonInvalidLabel = "invalid label"
	ReasonInvalidTime  = "invalid time"
)

var reasonOrder = []string{ReasonMissingID, ReasonInvalidID, ReasonMissingLabel, ReasonInvalidLabel, ReasonInvalidTime}

// parseID turns a cell into a prediction ID: text (trimmed of surrounding
// white space, never reinterpreted: "007" stays "007") or a number written
// as its text (an integral float without exponent or fraction).
func parseID(c cell) (id, reason, msg string) {
	switch c.kind {
	case cellNull:
		return "", ReasonMissingID, "no id"
	case cellText:
		id = strings.TrimSpace(c.text)
		if id == "" {
			return "", ReasonMissingID, "empty id"
		}
		return id, "", ""
	case cellNumber:
		if c.text != "" {
			return strings.TrimSpace(c.text), "", ""
		}
		if math.IsNaN(c.num) || math.IsInf(c.num, 0) {
			return "", ReasonMissingID, "id is " + c.show()
		}
		return strconv.FormatFloat(c.num, 'f', -1, 64), "", ""
	case cellInt:
		return strconv.FormatInt(c.i, 10), "", ""
	}
	return "", ReasonInvalidID, fmt.Sprintf("id %s is neither text nor a number", c.show())
}

// parseLabel turns a cell into a label: a finite number, or a boolean (true
// is 1, false 0), or text holding either.
func parseLabel(c cell) (v float64, reason, msg string) {
	bad := func() (float64, string, string) {
		return 0, ReasonInvalidLabel, fmt.Sprintf("label %s is not a finite number or a boolean", c.show())
	}
	switch c.kind {
	case cellNull:
		return 0, ReasonMissingLabel, "no label"
	case cellText:
		s := strings.TrimSpace(c.text)
		if s == "" {
			return 0, ReasonMissingLabel, "empty label"
		}
		switch {
		case strings.EqualFold(s, "true"):
			return 1, "", ""
		case strings.EqualFold(s, "false"):
			return 0, "", ""
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return bad()
		}
		return x, "", ""
	case cellNumber:
		if math.IsNaN(c.num) || math.IsInf(c.num, 0) {
			return bad()
		}
		return c.num, "", ""
	case cellInt:
		return float64(c.i), "", ""
	case cellBool:
		if c.b {
			return 1, "", ""
		}
		return 0, "", ""
	}
	return bad()
}

// parseTime turns a cell into Unix milliseconds: RFC 3339 text (a "T" or a
// space between date and time, a zone required), or Unix seconds or
// milliseconds as a number or numeric text (see secondsBelow). ok is false
// for a null or empty cell: the row takes the push time.
func parseTime(c cell) (ms int64, present bool, msg string) {
	fromNumber := func(x float64) (int64, bool, string) {
		a := math.Abs(x)
		switch {
		case math.IsNaN(x) || math.IsInf(x, 0):
		case a < secondsBelow:
			return int64(math.Round(x * 1000)), true, ""
		case a < msBelow:
			return int64(math.Round(x)), true, ""
		default:
			return 0, true, fmt.Sprintf("time %s is too large for Unix seconds or milliseconds (microseconds or nanoseconds are not read)", c.show())
		}
		return 0, true, fmt.Sprintf("time %s is not a time", c.show())
	}
	switch c.kind {
	case cellNull:
		return 0, false, ""
	case cellText:
		s := strings.TrimSpace(c.text)
		if s == "" {
			return 0, false, ""
		}
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			return fromNumber(x)
		}
		if len(s) > 10 && s[10] == ' ' {
			s = s[:10] + "T" + s[11:]
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, true, fmt.Sprintf("time %s is not RFC 3339 (2026-12-02T15:04:05Z, with a zone), Unix seconds or milliseconds", c.show())
		}
		return t.UnixMilli(), true, ""
	case cellNumber:
		return fromNumber(c.num)
	case cellMillis:
		return c.i, true, ""
	case cellInt:
		if c.i > -secondsBelow && c.i < secondsBelow {
			return c.i * 1000, true, ""
		}
		return fromNumber(float64(c.i))
	}
	return 0, true, fmt.Sprintf("time %s is not a time", c.show())
}
