package pipelines

import (
	"encoding/json"
	"fmt"
)

// UnmarshalJSON reads a param and restores its Value's Go type from Type
// (JSON numbers would otherwise all decode as float64), so that a Spec
// survives a JSON round trip, as through a workflow's history.
func (p *Param) UnmarshalJSON(b []byte) error {
	type plain Param
	var raw struct {
		plain
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("param: %w", err)
	}
	*p = Param(raw.plain)
	var err error
	switch p.Type {
	case ParamInt:
		var v int64
		if err = json.Unmarshal(raw.Value, &v); err == nil {
			p.Value = v
		}
	case ParamFloat:
		var v float64
		if err = json.Unmarshal(raw.Value, &v); err == nil {
			p.Value = v
		}
	case ParamBool:
		var v bool
		if err = json.Unmarshal(raw.Value, &v); err == nil {
			p.Value = v
		}
	case ParamString:
		var v string
		if err = json.Unmarshal(raw.Value, &v); err == nil {
			p.Value = v
		}
	default:
		return fmt.Errorf("param %q: unknown type %q", p.Name, p.Type)
	}
	if err != nil {
		return fmt.Errorf("param %q of type %s: %w", p.Name, p.Type, err)
	}
	return nil
}
