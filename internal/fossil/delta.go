package fossil

// blockSize is the length of the source blocks the encoder indexes and of
// the rolling window it slides over the target. Matches shorter than this
// are never found; fossil uses the same value.
const blockSize = 16

// maxChain bounds how many indexed source blocks with the same hash the
// encoder examines per target position, so pathological inputs (long runs
// of one byte) stay linear instead of quadratic.
const maxChain = 250

// Delta returns a fossil delta that turns source into target. The result
// is deterministic and can be applied with Apply or by any fossil decoder,
// including the one built into the Centrifugo client SDKs.
func Delta(source, target []byte) []byte {
	out := make([]byte, 0, len(target)/2+32)
	out = appendInt(out, uint32(len(target)))
	out = append(out, '\n')

	if len(source) <= blockSize {
		// Nothing worth indexing: the target goes in as one insert.
		out = appendInsert(out, target)
		return appendChecksum(out, target)
	}

	idx := newIndex(source)
	base := 0 // target bytes before base are already described by out
	for base+blockSize < len(target) {
		var h rollingHash
		h.init(target[base : base+blockSize])
		found := false
		for i := 0; ; i++ {
			// The window is target[base+i : base+i+blockSize].
			if lit, ofst, cnt, ok := idx.bestMatch(source, target, base, i, h.sum()); ok {
				out = appendInsert(out, target[base:base+lit])
				out = appendInt(out, uint32(cnt))
				out = append(out, '@')
				out = appendInt(out, uint32(ofst))
				out = append(out, ',')
				base += lit + cnt
				found = true
				break
			}
			if base+i+blockSize >= len(target) {
				break
			}
			h.roll(target[base+i], target[base+i+blockSize])
		}
		if !found {
			break // no match before the end of the target: the rest is literal
		}
	}
	out = appendInsert(out, target[base:])
	return appendChecksum(out, target)
}

func appendInsert(out, lit []byte) []byte {
	if len(lit) == 0 {
		return out
	}
	out = appendInt(out, uint32(len(lit)))
	out = append(out, ':')
	return append(out, lit...)
}

func appendChecksum(out, target []byte) []byte {
	out = appendInt(out, checksum(target))
	return append(out, ';')
}

// index maps the hash of every aligned source block to the blocks that
// have it: head[h] is the last such block and prev chains to the earlier
// ones (-1 ends a chain).
type index struct {
	head []int32
	prev []int32
}

func newIndex(source []byte) *index {
	n := len(source) / blockSize
	x := &index{head: make([]int32, n), prev: make([]int32, n)}
	for i := range x.head {
		x.head[i] = -1
	}
	for b := 0; b < n; b++ {
		var h rollingHash
		h.init(source[b*blockSize : (b+1)*blockSize])
		slot := h.sum() % uint32(n)
		x.prev[b] = x.head[slot]
		x.head[slot] = int32(b)
	}
	return x
}

// bestMatch looks for the most profitable copy around the target window
// starting at base+i whose hash is sum. A candidate block is extended
// forwards and backwards (backwards no further than base, so it never
// overlaps what is already encoded). It returns the number of literal
// bytes before the copy, the source offset and the copy length; ok is false
// when no copy is cheaper than inserting the same bytes.
func (x *index) bestMatch(source, target []byte, base, i int, sum uint32) (lit, ofst, cnt int, ok bool) {
	pos := base + i
	block := x.head[sum%uint32(len(x.head))]
	for n := 0; block >= 0 && n < maxChain; n, block = n+1, x.prev[block] {
		src := int(block) * blockSize
		fwd := 0
		for src+fwd < len(source) && pos+fwd < len(target) && source[src+fwd] == target[pos+fwd] {
			fwd++
		}
		if fwd < blockSize {
			continue // hash collision or partial block: not a real match
		}
		back := 0
		for back < src && back < i && source[src-back-1] == target[pos-back-1] {
			back++
		}
		c := fwd + back
		o := src - back
		l := i - back
		// A copy costs its count, offset and the literal count that
		// precedes it plus three separators; take it only if it saves bytes.
		cost := intLen(c) + intLen(o) + intLen(l) + 3
		if c >= cost && c > cnt {
			lit, ofst, cnt, ok = l, o, c, true
		}
	}
	return lit, ofst, cnt, ok
}

// rollingHash is an Adler-style checksum over a blockSize window that can
// slide one byte at a time.
type rollingHash struct {
	a, b uint16
}

func (h *rollingHash) init(w []byte) {
	h.a, h.b = 0, 0
	for _, c := range w {
		h.a += uint16(c)
		h.b += h.a
	}
}

// roll drops out from the front of the window and appends in at the back.
func (h *rollingHash) roll(out, in byte) {
	h.a = h.a - uint16(out) + uint16(in)
	h.b = h.b - blockSize*uint16(out) + h.a
}

func (h *rollingHash) sum() uint32 { return uint32(h.a) | uint32(h.b)<<16 }
