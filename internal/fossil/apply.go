package fossil

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error Apply returns, so callers can tell a
// malformed or mismatched delta from other failures with errors.Is.
var ErrCorrupt = errors.New("fossil: corrupt delta")

// maxPrealloc caps the capacity Apply reserves from the length a delta
// declares, so a hostile header cannot make it allocate gigabytes up front.
const maxPrealloc = 1 << 20

// Apply rebuilds the target from source and a delta produced by Delta (or by
// any fossil-compatible encoder). It verifies the declared length and the
// checksum and returns an error wrapping ErrCorrupt when the delta is
// malformed, refers outside source, or was made against another source.
func Apply(source, delta []byte) ([]byte, error) {
	r := reader{b: delta}
	limit, err := r.int()
	if err != nil {
		return nil, corrupt("target length: %v", err)
	}
	if c, ok := r.byte(); !ok || c != '\n' {
		return nil, corrupt("target length not terminated by newline")
	}
	out := make([]byte, 0, min(uint64(limit), maxPrealloc))
	for r.more() {
		cnt, err := r.int()
		if err != nil {
			return nil, corrupt("command count at byte %d: %v", r.pos, err)
		}
		op, ok := r.byte()
		if !ok {
			return nil, corrupt("command at byte %d has no operator", r.pos)
		}
		switch op {
		case '@':
			ofst, err := r.int()
			if err != nil {
				return nil, corrupt("copy offset at byte %d: %v", r.pos, err)
			}
			if c, ok := r.byte(); !ok || c != ',' {
				return nil, corrupt("copy command at byte %d not terminated by ','", r.pos)
			}
			if uint64(len(out))+uint64(cnt) > uint64(limit) {
				return nil, corrupt("copy exceeds declared target length %d", limit)
			}
			if uint64(ofst)+uint64(cnt) > uint64(len(source)) {
				return nil, corrupt("copy of %d bytes at %d extends past source of %d bytes", cnt, ofst, len(source))
			}
			out = append(out, source[ofst:ofst+cnt]...)
		case ':':
			if uint64(len(out))+uint64(cnt) > uint64(limit) {
				return nil, corrupt("insert exceeds declared target length %d", limit)
			}
			if uint64(cnt) > uint64(len(r.b)-r.pos) {
				return nil, corrupt("insert of %d bytes at byte %d runs past end of delta", cnt, r.pos)
			}
			out = append(out, r.b[r.pos:r.pos+int(cnt)]...)
			r.pos += int(cnt)
		case ';':
			if uint64(len(out)) != uint64(limit) {
				return nil, corrupt("target is %d bytes, delta declared %d", len(out), limit)
			}
			if sum := checksum(out); sum != cnt {
				return nil, corrupt("checksum mismatch: got %d, delta says %d (wrong source?)", sum, cnt)
			}
			if r.more() {
				return nil, corrupt("%d trailing bytes after checksum", len(r.b)-r.pos)
			}
			return out, nil
		default:
			return nil, corrupt("unknown operator %q at byte %d", op, r.pos-1)
		}
	}
	return nil, corrupt("delta ends without a checksum")
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// reader walks a delta; it never reads past the end of b.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) more() bool { return r.pos < len(r.b) }

func (r *reader) byte() (byte, bool) {
	if r.pos >= len(r.b) {
		return 0, false
	}
	c := r.b[r.pos]
	r.pos++
	return c, true
}

// int reads a base-64 integer. It requires at least one digit, and rejects
// values that do not fit in 32 bits, which is all the format (and the
// JavaScript decoder) can represent.
func (r *reader) int() (uint32, error) {
	var v uint64
	start := r.pos
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		if c >= 128 || digitValue[c] < 0 {
			break
		}
		v = v<<6 | uint64(digitValue[c])
		if v > 0xffffffff {
			return 0, errors.New("integer overflows 32 bits")
		}
		r.pos++
	}
	if r.pos == start {
		return 0, errors.New("missing integer")
	}
	return uint32(v), nil
}
