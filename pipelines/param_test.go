package pipelines

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParamUnmarshalJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Param
		wantErr string // a prefix: the rest comes from encoding/json
	}{
		{`{"name":"seed","type":"int","value":42}`, Param{Name: "seed", Type: ParamInt, Value: int64(42)}, ""},
		{`{"name":"f","type":"float","value":1}`, Param{Name: "f", Type: ParamFloat, Value: 1.0}, ""},
		{`{"name":"b","type":"bool","value":true,"overridden":true}`, Param{Name: "b", Type: ParamBool, Value: true, Overridden: true}, ""},
		{`{"name":"s","type":"string","value":"v1"}`, Param{Name: "s", Type: ParamString, Value: "v1"}, ""},
		{`{"name":"seed","type":"int","value":4.5}`, Param{}, `param "seed" of type int: `},
		{`{"name":"x","type":"list","value":[]}`, Param{}, `param "x": unknown type "list"`},
		{`[]`, Param{}, `param: `},
	}
	for _, tt := range tests {
		var got Param
		err := json.Unmarshal([]byte(tt.in), &got)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Unmarshal(%s) error = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Unmarshal(%s) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}
