package apikey

import "hash/crc32"

// putChecksum writes c in base 62, most significant digit first, padded
// with '0' to ChecksumLen characters.
func putChecksum(dst []byte, c uint32) {
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = alphabet[c%62]
		c /= 62
	}
}

// digits62 maps a byte to its base-62 value, and every other byte to 0xff.
var digits62 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeChecksum reads the ChecksumLen base-62 digits of s. The six
// products are independent, so the processor computes them side by side.
// A value above any CRC-32 is returned as is, and matches none.
func decodeChecksum(s string) (uint64, bool) {
	_ = s[ChecksumLen-1]
	d0, d1, d2, d3, d4, d5 := digits62[s[0]], digits62[s[1]], digits62[s[2]], digits62[s[3]], digits62[s[4]], digits62[s[5]]
	if (d0|d1|d2|d3|d4|d5)&0x80 != 0 {
		return 0, false
	}
	v := uint64(d0)*916132832 + uint64(d1)*14776336 + uint64(d2)*238328 +
		uint64(d3)*3844 + uint64(d4)*62 + uint64(d5)
	return v, true
}

// crc32IEEE is crc32.ChecksumIEEE of a string, computed in place: the
// standard function takes a []byte, and converting the key would copy it
// to the heap on every verification. It is the slicing-by-8 algorithm
// over the standard library's table; tests check it against
// crc32.ChecksumIEEE.
func crc32IEEE(s string) uint32 { return crc32Update(0, s) }

// crc32Update returns the CRC-32 of p+s given crc, the CRC-32 of p. A
// format computes the CRC of its two mode prefixes once, so Parse only
// runs over the random part.
func crc32Update(crc uint32, s string) uint32 {
	t := &ieeeSlicing8
	crc = ^crc
	for len(s) >= 8 {
		crc ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		crc = t[0][s[7]] ^ t[1][s[6]] ^ t[2][s[5]] ^ t[3][s[4]] ^
			t[4][crc>>24] ^ t[5][crc>>16&0xff] ^ t[6][crc>>8&0xff] ^ t[7][crc&0xff]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		crc = t[0][byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// ieeeSlicing8 holds the eight tables of slicing-by-8: t[0] is the IEEE
// table of package crc32, and t[k][b] is the CRC of byte b followed by k
// zero bytes.
var ieeeSlicing8 = func() (t [8][256]uint32) {
	t[0] = *crc32.MakeTable(crc32.IEEE)
	for b := range 256 {
		c := t[0][b]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][b] = c
		}
	}
	return t
}()
