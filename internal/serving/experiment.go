package serving

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/kiln-ml/kiln/internal/model"
)

// Experiment is an A/B (or A/B/n) test: a model's traffic split between
// fixed variants by weight, each request assigned by a key it carries so
// that the same key (a user, a session, an account) always meets the same
// variant, on every replica and after restarts. Outcomes are compared later
// from labels joined to the request log by prediction ID
// (internal/experiment).
type Experiment struct {
	// Name names the experiment; it salts the assignment, so two
	// experiments on one key assign independently.
	Name string `json:"name"`
	// Key is what assigns a request: "header:NAME" (an HTTP header, or
	// gRPC metadata, e.g. "header:X-User-ID") or "field:NAME" (a field
	// of the request's first instance, e.g. "field:customer_id"). A request
	// without the key is assigned at random by weight, and counted in
	// kiln_experiment_unkeyed_total.
	Key string `json:"key"`
	// Variants are the arms, at least two; the first is the control.
	Variants []Variant `json:"variants"`
}

// Variant is one arm of an Experiment.
type Variant struct {
	// Name is the arm's name, logged as the request log's variant and
	// returned in responses ("control", "treatment", ...).
	Name string `json:"name"`
	// Version and BundleURI are the model version the arm serves.
	Version   int64  `json:"version"`
	BundleURI string `json:"bundle_uri"`
	// Weight is the arm's share of the keys, relative to the others' (> 0).
	Weight int `json:"weight"`
}

// reservedVariants are variant names the server uses itself.
var reservedVariants = map[string]bool{"stable": true, "canary": true, "shadow": true}

// Check validates the experiment.
func (e *Experiment) Check() error {
	var errs []error
	if !validName(e.Name) {
		errs = append(errs, fmt.Errorf("experiment name %q: use lowercase letters, digits, '-' and '_'", e.Name))
	}
	if _, _, err := parseKey(e.Key); err != nil {
		errs = append(errs, err)
	}
	if len(e.Variants) < 2 {
		errs = append(errs, fmt.Errorf("an experiment needs at least two variants, found %d", len(e.Variants)))
	}
	seen := map[string]bool{}
	for i, v := range e.Variants {
		switch {
		case !validName(v.Name):
			errs = append(errs, fmt.Errorf("variants[%d]: name %q: use lowercase letters, digits, '-' and '_'", i, v.Name))
		case reservedVariants[v.Name]:
			errs = append(errs, fmt.Errorf("variants[%d]: name %q is reserved (stable, canary and shadow are the server's own)", i, v.Name))
		case seen[v.Name]:
			errs = append(errs, fmt.Errorf("variants[%d]: name %q is used twice", i, v.Name))
		}
		seen[v.Name] = true
		if v.Version < 1 || v.BundleURI == "" {
			errs = append(errs, fmt.Errorf("variants[%d] (%s): version and bundle_uri are required", i, v.Name))
		}
		if v.Weight < 1 || v.Weight > 1_000_000 {
			errs = append(errs, fmt.Errorf("variants[%d] (%s): weight %d is outside 1..1000000", i, v.Name, v.Weight))
		}
	}
	return errors.Join(errs...)
}

// parseKey splits an experiment key into its kind ("header" or "field")
// and name.
func parseKey(key string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(key, ":")
	if !ok || (kind != "header" && kind != "field") || name == "" {
		return "", "", fmt.Errorf(`experiment key %q: want "header:NAME" or "field:NAME"`, key)
	}
	return kind, name, nil
}

// arm is one loaded variant of an experiment.
type arm struct {
	v   Variant
	mdl *model.Model
	m   *variantMetrics
	// upTo is the cumulative weight up to and including this arm.
	upTo uint64
}

// assigner picks experiment arms.
type assigner struct {
	salt    string
	kind    string // "header" or "field"
	name    string
	arms    []arm
	total   uint64
	unkeyed interface{ Inc() }
}

// keyOf returns the request's assignment key, "" when it carries none.
func (a *assigner) keyOf(rows []map[string]any, header func(string) string) string {
	if a.kind == "header" {
		if header == nil {
			return ""
		}
		return header(a.name)
	}
	if len(rows) == 0 {
		return ""
	}
	v, ok := rows[0][a.name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// pick assigns a request: by the FNV-1a hash of the experiment's name and
// the key, so the same key always meets the same arm, on every replica;
// at random by weight when the key is missing.
func (a *assigner) pick(key string) *arm {
	var r uint64
	if key == "" {
		a.unkeyed.Inc()
		r = rand.Uint64N(a.total)
	} else {
		r = Assign(a.salt, key) % a.total
	}
	for i := range a.arms {
		if r < a.arms[i].upTo {
			return &a.arms[i]
		}
	}
	return &a.arms[len(a.arms)-1]
}

// Assign is the hash that places a key in an experiment: FNV-1a (64-bit)
// of the experiment's name, a NUL byte and the key. An arm's keys are those
// whose Assign modulo the total weight falls in its share, in the order of
// the variants.
func Assign(experiment, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(experiment))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum64()
}

// AssignVariant returns the name of the variant a key is assigned to, as
// the server would assign it.
func (e *Experiment) AssignVariant(key string) string {
	var total uint64
	for _, v := range e.Variants {
		total += uint64(v.Weight)
	}
	if total == 0 {
		return ""
	}
	r := Assign(e.Name, key) % total
	var upTo uint64
	for _, v := range e.Variants {
		upTo += uint64(v.Weight)
		if r < upTo {
			return v.Name
		}
	}
	return e.Variants[len(e.Variants)-1].Name
}
