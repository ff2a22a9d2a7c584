package main

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// paramSpec describes one numeric parameter of an algorithm.
type paramSpec struct {
	name    string
	aliases []string
	// whole requires a whole number; lo and hi bound the value, loOpen
	// excludes lo itself.
	whole  bool
	lo, hi float64
	loOpen bool
	// set stores the value.
	set func(float64)
}

// parseParams checks raw against specs (all numbers) and calls set for each
// given value; names may also be given by an alias, but not both. strs are
// string parameters handled by the caller, which also reports their errors.
func parseParams(algo string, raw map[string]any, specs []paramSpec, strs map[string]func(string) error) error {
	byName := map[string]*paramSpec{}
	var known []string
	for i := range specs {
		s := &specs[i]
		byName[s.name] = s
		known = append(known, s.name)
		for _, a := range s.aliases {
			byName[a] = s
		}
	}
	for k := range strs {
		known = append(known, k)
	}
	sort.Strings(known)
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, k := range names {
		v := raw[k]
		if set, ok := strs[k]; ok {
			s, isStr := v.(string)
			if !isStr {
				return badInput("%s: params.%s must be a string, got %v", paramsFile, k, v)
			}
			if err := set(s); err != nil {
				return err
			}
			continue
		}
		s, ok := byName[k]
		if !ok {
			return badInput("%s: unknown parameter %q for algorithm %s (known: %s)", paramsFile, k, algo, strings.Join(known, ", "))
		}
		if other, dup := seen[s.name]; dup {
			return badInput("%s: params.%s and params.%s are the same parameter; give one", paramsFile, other, k)
		}
		seen[s.name] = k
		x, ok := v.(float64)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			return badInput("%s: params.%s must be a number, got %v", paramsFile, k, v)
		}
		bad := x < s.lo || x > s.hi || (s.loOpen && x == s.lo) || (s.whole && x != math.Trunc(x))
		if bad {
			return badInput("%s: params.%s must be %s, got %v", paramsFile, k, s.describe(), x)
		}
		s.set(x)
	}
	return nil
}

// describe says what values s accepts.
func (s *paramSpec) describe() string {
	num := "a number"
	if s.whole {
		num = "a whole number"
	}
	switch {
	case math.IsInf(s.hi, 1) && s.loOpen:
		return num + " > " + fmtNum(s.lo)
	case math.IsInf(s.hi, 1):
		return num + " >= " + fmtNum(s.lo)
	case s.loOpen:
		return num + " in (" + fmtNum(s.lo) + ", " + fmtNum(s.hi) + "]"
	default:
		return num + " from " + fmtNum(s.lo) + " to " + fmtNum(s.hi)
	}
}

// fmtNum formats x as the shortest decimal.
func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
