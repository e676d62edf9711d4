package fossil

// digits is the base-64 alphabet fossil uses for integers. It is not the
// RFC 4648 alphabet: digits come first so small numbers stay readable.
const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"

// digitValue maps an ASCII byte to its value in digits, or -1.
var digitValue = func() [128]int8 {
	var t [128]int8
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(digits); i++ {
		t[digits[i]] = int8(i)
	}
	return t
}()

// appendInt appends v in fossil's base-64 notation.
func appendInt(dst []byte, v uint32) []byte {
	if v == 0 {
		return append(dst, '0')
	}
	var buf [6]byte // 32 bits need at most 6 digits of 6 bits
	n := len(buf)
	for v > 0 {
		n--
		buf[n] = digits[v&0x3f]
		v >>= 6
	}
	return append(dst, buf[n:]...)
}

// intLen is the number of digits appendInt writes for v; the encoder uses it
// to decide whether a copy command is cheaper than inserting the bytes.
func intLen(v int) int {
	n := 1
	for v >= 64 {
		n++
		v >>= 6
	}
	return n
}

// checksum is the 32-bit checksum fossil stores at the end of a delta: the
// sum, modulo 2^32, of the input read as big-endian 32-bit words, the last
// partial word padded with zero bytes.
func checksum(b []byte) uint32 {
	var sum uint32
	for len(b) >= 4 {
		sum += uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		b = b[4:]
	}
	switch len(b) {
	case 3:
		sum += uint32(b[2]) << 8
		fallthrough
	case 2:
		sum += uint32(b[1]) << 16
		fallthrough
	case 1:
		sum += uint32(b[0]) << 24
	}
	return sum
}
