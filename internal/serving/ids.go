package serving

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Prediction IDs (DESIGN.md §13): every served prediction has an ID, which
// the request log, labels, A/B outcomes and live metrics join on. A client
// may supply its own IDs (CheckPredictionIDs says which are accepted);
// otherwise the server generates them with NewPredictionID.
//
// A generated ID is a ULID (https://github.com/ulid/spec): 128 bits, the
// first 48 the Unix time in milliseconds and the other 80 random, written as
// 26 characters of Crockford's base32 ("0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
// e.g. "01JE7Y4Q9T8M3V6WQ2X5R0ZKCB". IDs therefore sort as plain strings in
// time order (to the millisecond), across processes and machines. Within one
// process they are strictly increasing: an ID generated in the same
// millisecond as the previous one (or while the clock has stepped back) is
// the previous ID plus one in its random part, as ULID's monotonic rule
// says. Replicas draw their random parts independently, so two replicas
// collide only if they draw overlapping runs of the same 80-bit space in the
// same millisecond.

// MaxPredictionIDBytes bounds a client-supplied prediction ID.
const MaxPredictionIDBytes = 128

// crockford is Crockford's base32 alphabet.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen is the process's prediction ID generator.
var idGen struct {
	mu sync.Mutex
	ms uint64 // time of the last ID
	hi uint64 // the last ID's random part: 16 high bits
	lo uint64 // and 64 low bits
}

// NewPredictionID returns a new generated prediction ID (a ULID).
func NewPredictionID() string {
	var id [1]string
	newPredictionIDs(time.Now(), id[:])
	return id[0]
}

// newPredictionIDs fills ids with consecutive new IDs of time now (or of the
// last ID's time, if the clock reads earlier). The generator's lock covers
// reserving the run of IDs only; they are encoded after.
func newPredictionIDs(now time.Time, ids []string) {
	if len(ids) == 0 {
		return
	}
	ms := uint64(now.UnixMilli()) & (1<<48 - 1)
	n := uint64(len(ids))
	idGen.mu.Lock()
	if ms > idGen.ms {
		idGen.ms, idGen.hi, idGen.lo = ms, rand.Uint64()&0xffff, rand.Uint64()
	} else {
		idGen.lo++
		if idGen.lo == 0 {
			idGen.hi++
		}
	}
	// The run is [first, first+n-1]; if it would pass 2^80 (a chance of
	// n/2^80 for a fresh random start), it moves to the next millisecond
	// with a random start in the lower half.
	if lo := idGen.lo + (n - 1); idGen.hi > 0xffff || (lo < idGen.lo && idGen.hi == 0xffff) {
		idGen.ms, idGen.hi, idGen.lo = idGen.ms+1, rand.Uint64()&0x7fff, rand.Uint64()
	}
	first, hi, lo := idGen.ms, idGen.hi, idGen.lo
	idGen.lo += n - 1
	if idGen.lo < lo {
		idGen.hi++
	}
	idGen.mu.Unlock()
	for i := range ids {
		ids[i] = encodeULID(first<<16|hi, lo)
		lo++
		if lo == 0 {
			hi++
		}
	}
}

// encodeULID writes the 128-bit value hi:lo in 26 base32 digits.
func encodeULID(hi, lo uint64) string {
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// PredictionIDTime returns the time (to the millisecond) a generated
// prediction ID encodes, and false if id is not a ULID (client-supplied IDs
// usually are not).
func PredictionIDTime(id string) (time.Time, bool) {
	if len(id) != 26 || id[0] > '7' {
		return time.Time{}, false
	}
	var hi, lo uint64
	for i := 0; i < len(id); i++ {
		d := strings.IndexByte(crockford, upper(id[i]))
		if d < 0 {
			return time.Time{}, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(d)
	}
	return time.UnixMilli(int64(hi >> 16)), true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// CheckPredictionIDs checks client-supplied prediction IDs for rows
// predictions: exactly one per row, each non-empty, at most
// MaxPredictionIDBytes bytes, without control characters, and no two the
// same. field names the IDs in the error ("ids", "parameters.prediction_ids").
func CheckPredictionIDs(ids []string, rows int, field string) error {
	if len(ids) != rows {
		return fmt.Errorf("%s has %d IDs for %d rows: give one ID per row, or none to have the server generate them", field, len(ids), rows)
	}
	for i, id := range ids {
		if err := checkPredictionID(id); err != nil {
			return fmt.Errorf("%s[%d] %v", field, i, err)
		}
	}
	if len(ids) < 2 {
		return nil
	}
	if len(ids) <= 16 {
		for i := 1; i < len(ids); i++ {
			for j := 0; j < i; j++ {
				if ids[i] == ids[j] {
					return duplicateID(field, i, j, ids[i])
				}
			}
		}
		return nil
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if j, ok := seen[id]; ok {
			return duplicateID(field, i, j, id)
		}
		seen[id] = i
	}
	return nil
}

func duplicateID(field string, i, j int, id string) error {
	return fmt.Errorf("%s[%d] repeats %s[%d] (%q): prediction IDs must be unique within a request", field, i, field, j, id)
}

// checkPredictionID checks one client-supplied ID; its error completes a
// sentence that starts with the ID's name.
func checkPredictionID(id string) error {
	if id == "" {
		return fmt.Errorf("is empty")
	}
	if len(id) > MaxPredictionIDBytes {
		return fmt.Errorf("is %d bytes long, at most %d", len(id), MaxPredictionIDBytes)
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return fmt.Errorf("contains the control character %U", c)
		}
	}
	return nil
}
