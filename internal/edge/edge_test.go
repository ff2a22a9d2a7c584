package edge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/model"
)

// TestPayloadRoundTrip encodes a payload, finds it after an executable's
// bytes, and decodes it; a changed byte is caught by the bundle hash.
func TestPayloadRoundTrip(t *testing.T) {
	files := map[string][]byte{"manifest.json": []byte(`{"a":1}`), "model.json": bytes.Repeat([]byte("x"), 5000)}
	p := Payload{Files: files, Header: Header{Model: "churn", Version: 3, BundleSHA256: model.HashFiles(files), Kiln: "test", Target: "linux/amd64", ExportedAt: time.Unix(0, 0).UTC()}}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	exe := append([]byte("\x7fELF program"), b...)
	exe = binary.LittleEndian.AppendUint64(exe, uint64(len(b)))
	exe = append(exe, TrailerMagic...)
	got, err := payloadAt(bytes.NewReader(exe), int64(len(exe)))
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header != p.Header || !bytes.Equal(q.Files["model.json"], files["model.json"]) || len(q.Files) != 2 {
		t.Errorf("decoded %+v", q.Header)
	}
	got[bytes.Index(got, []byte("xxxx"))+100] ^= 1 // inside model.json's content
	if _, err := Decode(got); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged payload decoded: %v", err)
	}
	if _, err := payloadAt(bytes.NewReader([]byte("\x7fELF bare runtime, no trailer")), 29); !errors.Is(err, ErrNoPayload) {
		t.Errorf("bare runtime: %v, want ErrNoPayload", err)
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Options
		err  string
	}{
		{args: []string{"rows.csv"}, want: Options{Input: "rows.csv", Format: "csv", OutputFormat: "csv"}},
		{args: []string{"--passthrough", "id,ts", "rows.jsonl"}, want: Options{Input: "rows.jsonl", Format: "jsonl", OutputFormat: "jsonl", Passthrough: []string{"id", "ts"}}},
		{args: []string{"-o", "out.parquet", "rows.csv"}, want: Options{Input: "rows.csv", Output: "out.parquet", Format: "csv", OutputFormat: "parquet"}},
		{args: []string{"--format", "jsonl", "--output-format", "csv"}, want: Options{Format: "jsonl", OutputFormat: "csv"}},
		{args: []string{"--format", "parquet"}, err: "Parquet input must be a file"},
		{args: []string{"--output-format", "parquet", "rows.csv"}, err: "Parquet output must be a file"},
		{args: []string{"--format", "xml", "rows.csv"}, err: `unknown format "xml"`},
		{args: []string{"a.csv", "b.csv"}, err: "one input FILE at most"},
		{args: []string{"--nope"}, err: "not defined"},
	} {
		got, err := ParseArgs("p", tc.args, io.Discard)
		if tc.err != "" {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ue) {
				t.Errorf("%v: error %v, want a usage error %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
