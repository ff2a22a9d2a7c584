package pipelines

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Byte size units. SI units are powers of 1000, binary units powers of 1024.
const (
	KB ByteSize = 1000
	MB          = 1000 * KB
	GB          = 1000 * MB
	TB          = 1000 * GB

	KiB ByteSize = 1 << 10
	MiB          = 1 << 20
	GiB          = 1 << 30
	TiB          = 1 << 40
)

var byteUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"k": KB, "kb": KB, "ki": KiB, "kib": KiB,
	"m": MB, "mb": MB, "mi": MiB, "mib": MiB,
	"g": GB, "gb": GB, "gi": GiB, "gib": GiB,
	"t": TB, "tb": TB, "ti": TiB, "tib": TiB,
}

// ParseByteSize reads a byte size: a plain number of bytes ("1048576") or a
// number with a unit, SI ("100k", "1.5G", "2GB": powers of 1000) or binary
// ("512MiB", "1Gi": powers of 1024). Units are case-insensitive. The result
// must be a whole, non-negative number of bytes that fits in an int64.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || num == "." || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("invalid byte size %q: expected a number with an optional unit, e.g. 512MiB or 1G", s)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit %q (use B, k, M, G, T or Ki, Mi, Gi, Ti, optionally followed by B)", s, t[i:])
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid byte size %q: not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("invalid byte size %q: too large", s)
	}
	return ByteSize(r.Num().Int64()), nil
}

// String formats b with the largest unit that divides it exactly, preferring
// binary units: "1GiB", "512MiB", "1500MB", "123". ParseByteSize reads it back.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}, {TB, "TB"}, {GB, "GB"}, {MB, "MB"}, {KB, "kB"}} {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalJSON writes b as a string such as "1GiB".
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads a byte size string or a number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(data, &n); err2 != nil {
			return fmt.Errorf("byte size: %w", err)
		}
		*b = ByteSize(n)
		return nil
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
