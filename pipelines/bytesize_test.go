package pipelines

import (
	"encoding/json"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{"0", 0, ""},
		{"1048576", MiB, ""},
		{"512MiB", 512 * MiB, ""},
		{"512Mi", 512 * MiB, ""},
		{"1GiB", GiB, ""},
		{"1gib", GiB, ""},
		{"1.5G", 1_500_000_000, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"1.5Gi", 3 * GiB / 2, ""},
		{"100k", 100_000, ""},
		{"100K", 100_000, ""},
		{"100kB", 100_000, ""},
		{"4KiB", 4096, ""},
		{"2T", 2_000_000_000_000, ""},
		{"1TiB", TiB, ""},
		{"10B", 10, ""},
		{" 64 MiB ", 64 * MiB, ""},
		{".5k", 500, ""},
		{"9000000TiB", 0, `invalid byte size "9000000TiB": too large`},
		{"1.0001k", 0, `invalid byte size "1.0001k": not a whole number of bytes`},
		{"0.5", 0, `invalid byte size "0.5": not a whole number of bytes`},
		{"", 0, `invalid byte size "": expected a number with an optional unit, e.g. 512MiB or 1G`},
		{"MiB", 0, `invalid byte size "MiB": expected a number with an optional unit, e.g. 512MiB or 1G`},
		{"-1G", 0, `invalid byte size "-1G": expected a number with an optional unit, e.g. 512MiB or 1G`},
		{"1.2.3M", 0, `invalid byte size "1.2.3M": expected a number with an optional unit, e.g. 512MiB or 1G`},
		{"1e3", 0, `invalid byte size "1e3": unknown unit "e3" (use B, k, M, G, T or Ki, Mi, Gi, Ti, optionally followed by B)`},
		{"2 gigs", 0, `invalid byte size "2 gigs": unknown unit " gigs" (use B, k, M, G, T or Ki, Mi, Gi, Ti, optionally followed by B)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseByteSize(%q) error = %v, want %s", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{123, "123"},
		{1000, "1kB"},
		{1024, "1KiB"},
		{GiB, "1GiB"},
		{512 * MiB, "512MiB"},
		{1_500_000_000, "1500MB"},
		{3 * GiB / 2, "1536MiB"},
		{2 * TiB, "2TiB"},
		{-5, "-5"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if tt.in >= 0 {
			if back, err := ParseByteSize(tt.want); err != nil || back != tt.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
			}
		}
	}
}

func TestByteSizeJSON(t *testing.T) {
	b, err := json.Marshal(struct{ M ByteSize }{512 * MiB})
	if err != nil || string(b) != `{"M":"512MiB"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	for _, in := range []string{`"512MiB"`, `536870912`} {
		var got ByteSize
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != 512*MiB {
			t.Errorf("Unmarshal(%s) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{`"lots"`, `true`} {
		var got ByteSize
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}

func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"512MiB", "1.5G", "100k", "0", "1e3", ".5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, v)
		}
		if back, err := ParseByteSize(v.String()); err != nil || back != v {
			t.Fatalf("round trip of %d via %q = %d, %v", v, v.String(), back, err)
		}
	})
}
