package serving

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// v1Bodies are v1 predict bodies, usual and not: parseV1Request must parse
// the usual ones and leave the others to encoding/json, and
// decodeV1Request must decode all of them as decodeBody does.
var v1Bodies = []string{
	`{"instances":[{"plan":"pro","tenure":3,"charges":20.5,"discount":0.1,"active":true}]}`,
	` { "instances" : [ { "a" : -0 , "b" : 1e3 , "c" : -1.5E-7 , "d" : null , "e" : false } , null , [ 1 , "x" , null , true ] , [ ] , { } ] , "ids" : [ "p" , "q" , "" , "r" , "s" ] } ` + "\n\t\r",
	`{"ids":["a","b"],"instances":[{"charges":1},{"charges":2}]}`,
	`{"instances":[{"a":1,"a":2}]}`,
	`{"instances":[1,"a",true,null]}`,
	`{"instances":[]}`,
	`{"instances":null,"ids":null}`,
	`{"instances":[{"a":1}],"ids":[]}`,
	`{}`,
	`{"instances":[{"a":1.7976931348623157e308,"b":5e-324,"c":123456789012345678901234567890,"d":0.1e1,"e":-0.0}]}`,
	`{"instances":[{"a":1}]}` + strings.Repeat(" ", 10),
	// Left to encoding/json: errors, escapes, non-ASCII, nesting, other
	// or repeated or differently cased keys, numbers out of range.
	`{"instances":[{"a":1e400}]}`,
	`{"instances":[{"a":"tab\tin"}]}`,
	`{"instances":[{"a":"esc\"aped","b\u0041":"\u00e9"}]}`,
	`{"instances":[{"plan":"café"}]}`,
	`{"instances":[{"a":"` + "\xff" + `"}]}`,
	`{"instances":[{"a":{"b":1}}]}`,
	`{"instances":[{"a":[1]}]}`,
	`{"instances":[[[1]]]}`,
	`{"instances":[{"a":1}],"extra":{"x":[1,2]}}`,
	`{"Instances":[{"a":1}]}`,
	`{"INSTANCES":[{"a":1}],"IDs":["x"]}`,
	`{"instances":[{"a":1}],"instances":[{"b":2}]}`,
	`{"instances":[{"a":1}],"ids":["x"],"ids":["y"]}`,
	`{"instances":[{"a":1}],"ids":[null]}`,
	`{"instances":[{"a":1}],"ids":[1]}`,
	`{"instances":{"a":1}}`,
	`{"instances":"x"}`,
	`{"instances":[{"a":01}]}`,
	`{"instances":[{"a":1.}]}`,
	`{"instances":[{"a":.5}]}`,
	`{"instances":[{"a":+1}]}`,
	`{"instances":[{"a":1e}]}`,
	`{"instances":[{"a":-}]}`,
	`{"instances":[{"a":NaN}]}`,
	`{"instances":[{"a":0x10}]}`,
	`{"instances":[{"a":truex}]}`,
	`{"instances":[{"a":1,}]}`,
	`{"instances":[{"a":1}],}`,
	`{"instances":[{"a":1}]`,
	`{"instances":[{"a":1}]} {}`,
	`{"instances":[{"a":1}]} x`,
	`{"instances":[{a:1}]}`,
	`{"instances":[{"a" 1}]}`,
	`{"instances" [{"a":1}]}`,
	`[]`,
	`null`,
	``,
	` `,
	"\xef\xbb\xbf{}",
}

// canon is v as encoding/json writes it (nil and empty slices and maps, and
// -0, differ).
func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkV1Body checks parseV1Request and decodeV1Request on body against
// decodeBody, and returns whether parseV1Request parsed it.
func checkV1Body(t *testing.T, s *Server, body string) bool {
	t.Helper()
	var want v1Request
	wantErr := decodeBody(httptest.NewRequest("POST", "/", strings.NewReader(body)), &want)
	var fast v1Request
	parsed := parseV1Request([]byte(body), nil, &fast)
	if parsed && (wantErr != nil || canon(t, fast) != canon(t, want)) {
		t.Errorf("%q: parsed as %s, encoding/json gives %s, %v", body, canon(t, fast), canon(t, want), wantErr)
	}
	var got v1Request
	gotErr := decodeV1Request(httptest.NewRequest("POST", "/", strings.NewReader(body)), s.model("churn"), &got)
	switch {
	case (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error():
		t.Errorf("%q: error %v, decodeBody's %v", body, gotErr, wantErr)
	case gotErr == nil && canon(t, got) != canon(t, want):
		t.Errorf("%q: decoded %s, decodeBody %s", body, canon(t, got), canon(t, want))
	}
	return parsed
}

func TestDecodeV1Request(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	usual := 0
	for i, body := range v1Bodies {
		if checkV1Body(t, s, body) {
			usual++
		} else if i < 11 {
			t.Errorf("%q was not parsed by hand", body)
		}
	}
	if usual != 11 {
		t.Errorf("%d bodies parsed by hand, want the first 11", usual)
	}
	// Over the size limit: 413 as before.
	big := `{"instances":[{"a":"` + strings.Repeat("x", maxBodyBytes) + `"}]}`
	for _, decode := range []func(*v1Request) error{
		func(req *v1Request) error {
			return decodeBody(httptest.NewRequest("POST", "/", strings.NewReader(big)), req)
		},
		func(req *v1Request) error {
			return decodeV1Request(httptest.NewRequest("POST", "/", strings.NewReader(big)), s.model("churn"), req)
		},
	} {
		rec := httptest.NewRecorder()
		var req v1Request
		bodyError(rec, decode(&req))
		if rec.Code != 413 {
			t.Errorf("body over the limit: status %d, want 413", rec.Code)
		}
	}
	// A read error is decodeBody's too.
	r := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"instances":[{"a":1}`), errReader{}))
	var req v1Request
	if err := decodeV1Request(r, s.model("churn"), &req); err == nil || !strings.Contains(err.Error(), "decoding request body: read failed") {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }

// FuzzDecodeV1Request: whatever the body, decodeV1Request decodes it as
// decodeBody does, and what parseV1Request parses encoding/json decodes
// the same.
func FuzzDecodeV1Request(f *testing.F) {
	uri, _ := churnBundle(f, 1)
	s := New(Options{Logger: quietLogger})
	f.Cleanup(func() { s.Close() })
	deploy(f, s, "churn", stable(1, uri))
	for _, b := range v1Bodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkV1Body(t, s, string(body))
	})
}
