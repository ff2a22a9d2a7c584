package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/transform"
)

// MultiPredictor is a Predictor of a TaskMulticlass model. Its
// PredictMatrix writes the index of each row's most probable class (the
// first on ties, as numpy's argmax), as a float64.
type MultiPredictor interface {
	Predictor
	// NumClass is the number of classes K (at least 2).
	NumClass() int
	// PredictProba writes the K class probabilities of row i of x into
	// out[i*K : (i+1)*K]; len(out) must be x.Rows*K. On error the contents
	// of out are unspecified.
	PredictProba(x *transform.Matrix, out []float64) error
}

// Argmax writes into classes[i] the index of the largest of the k
// probabilities proba[i*k : (i+1)*k], the first on ties. A NaN probability
// is never the largest unless all are NaN (then 0).
func Argmax(proba []float64, k int, classes []float64) {
	for i := range classes {
		row := proba[i*k : (i+1)*k : (i+1)*k]
		best := 0
		for c := 1; c < k; c++ {
			if row[c] > row[best] || row[best] != row[best] && row[c] == row[c] {
				best = c
			}
		}
		classes[i] = float64(best)
	}
}

// NumClass returns the number of classes of a TaskMulticlass model, 0 for
// the other tasks.
func (m *Model) NumClass() int {
	if mp, ok := m.predictor.(MultiPredictor); ok && m.Manifest.Task == TaskMulticlass {
		return mp.NumClass()
	}
	return 0
}

// PredictProbaMatrix writes the class probabilities of row i of x into
// out[i*K : (i+1)*K] for a TaskMulticlass model with K = NumClass(); it is
// an error for the other tasks.
func (m *Model) PredictProbaMatrix(x *Matrix, out []float64) error {
	mp, ok := m.predictor.(MultiPredictor)
	if !ok || m.Manifest.Task != TaskMulticlass {
		return fmt.Errorf("model: a %s model has no class probabilities", m.Manifest.Task)
	}
	if k := mp.NumClass(); len(out) != x.Rows*k {
		return fmt.Errorf("model: %d probabilities for %d rows of %d classes", len(out), x.Rows, k)
	}
	return mp.PredictProba(x, out)
}

// PredictProba scores a batch of a TaskMulticlass model (see Predict) and
// returns its class probabilities, row-major: out[i*K+k] is P(row i is
// Classes[k]).
func (m *Model) PredictProba(rec arrow.Record) ([]float64, error) {
	x, err := m.Manifest.Transforms.Apply(rec)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	out := make([]float64, x.Rows*m.NumClass())
	if err := m.PredictProbaMatrix(x, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Scores are a model's predictions for a batch of rows.
type Scores struct {
	// Values has one prediction per row: a probability, a value, or for a
	// TaskMulticlass model the index of the most probable class.
	Values []float64
	// Proba holds a TaskMulticlass model's class probabilities, row-major
	// (Proba[i*K+k]); nil for the other tasks.
	Proba []float64
	// Respelled reports string values read as a numeric-looking category
	// (see PredictRowsReport).
	Respelled []transform.Respelling
}

// ScoreRows is PredictRowsReport that also returns a TaskMulticlass model's
// class probabilities.
func (m *Model) ScoreRows(rows []map[string]any) (Scores, error) {
	k := m.NumClass()
	if k == 0 {
		v, r, err := m.PredictRowsReport(rows)
		return Scores{Values: v, Respelled: r}, err
	}
	x, scratch, err := m.rowsMatrix(rows)
	if err != nil {
		return Scores{}, err
	}
	s := Scores{Values: make([]float64, x.Rows), Proba: make([]float64, x.Rows*k), Respelled: x.Respelled}
	err = m.PredictProbaMatrix(x, s.Proba)
	scratch.release()
	if err != nil {
		return Scores{}, err
	}
	Argmax(s.Proba, k, s.Values)
	return s, nil
}

// ClassOf returns the class name of a TaskMulticlass model's predicted
// class index (a Values entry of Scores), or "" when it is out of range.
func (m *Model) ClassOf(index float64) string {
	i := int(index)
	if float64(i) != index || i < 0 || i >= len(m.Manifest.Classes) {
		return ""
	}
	return m.Manifest.Classes[i]
}

// ReadClasses reads only the manifest of the bundle in dir and returns the
// classes of a TaskMulticlass model, nil for the other tasks: what callers
// that need not predict (a labels push) ask of a bundle.
func ReadClasses(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("model: reading bundle: %w", err)
	}
	var m struct {
		Task    string   `json:"task"`
		Classes []string `json:"classes"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("model: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Task != TaskMulticlass {
		return nil, nil
	}
	if err := checkClasses(m.Task, m.Classes); err != nil {
		return nil, fmt.Errorf("model: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m.Classes, nil
}
