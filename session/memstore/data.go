package memstore

import (
	"encoding/binary"
	"strings"
)

// packData copies m into one string: the number of pairs, then each key and
// value, all prefixed with their lengths as uvarints. One string costs far
// less than a map (a Go map of even one pair takes a few hundred bytes), and
// sharing nothing with m, it is safe from the caller changing m. Empty data
// packs to "", which allocates nothing.
func packData(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	size := uvarintLen(uint64(len(m)))
	for k, v := range m {
		size += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	var b strings.Builder
	b.Grow(size)
	var buf [binary.MaxVarintLen64]byte
	b.Write(binary.AppendUvarint(buf[:0], uint64(len(m))))
	for k, v := range m {
		b.Write(binary.AppendUvarint(buf[:0], uint64(len(k))))
		b.WriteString(k)
		b.Write(binary.AppendUvarint(buf[:0], uint64(len(v))))
		b.WriteString(v)
	}
	return b.String()
}

// unpackData returns a new map of the pairs packed in s, nil if there are
// none. Its keys and values share s's memory, which no one changes.
func unpackData(s string) map[string]string {
	if s == "" {
		return nil
	}
	n, s := nextUvarint(s)
	m := make(map[string]string, n)
	for range n {
		var k, v string
		k, s = nextString(s)
		v, s = nextString(s)
		m[k] = v
	}
	return m
}

// nextString reads a length-prefixed string from the front of s and returns
// it and the rest of s.
func nextString(s string) (string, string) {
	n, s := nextUvarint(s)
	return s[:n], s[n:]
}

// nextUvarint reads a uvarint written by packData from the front of s.
func nextUvarint(s string) (uint64, string) {
	var x uint64
	for i := 0; ; i++ {
		c := s[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, s[i+1:]
		}
	}
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// packedEqual reports whether the data packed in s is m, without unpacking
// it: the same number of pairs, each of them in m. Packed keys are distinct,
// being a map's, so that is equality. A nil and an empty m are alike.
func packedEqual(s string, m map[string]string) bool {
	if s == "" {
		return len(m) == 0
	}
	n, s := nextUvarint(s)
	if n != uint64(len(m)) {
		return false
	}
	for range n {
		var k, v string
		k, s = nextString(s)
		v, s = nextString(s)
		if mv, ok := m[k]; !ok || mv != v {
			return false
		}
	}
	return true
}
