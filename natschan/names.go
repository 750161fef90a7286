package natschan

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadKey: a key of the namespace bucket that EncodeName did not make.
var ErrBadKey = errors.New("natschan: not an encoded channel name")

// EncodeName turns a channel name (any bytes but "/" and NUL, up to 255)
// into a key of the namespace bucket, which allows only letters, digits
// and "-_=/." and uses "." to separate subject tokens: letters, digits,
// "-" and "_" stay (but a leading "_"), every other byte becomes "=XX" in
// upper-case hex. So "a.b c" is "a=2Eb=20c". The result is at most 765
// bytes, within NATS's limits.
func EncodeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// DecodeName undoes EncodeName.
func DecodeName(key string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(key) {
			return "", fmt.Errorf("%q: %w", key, ErrBadKey)
		}
		v, ok := unhex(key[i+1], key[i+2])
		if !ok {
			return "", fmt.Errorf("%q: %w", key, ErrBadKey)
		}
		b.WriteByte(v)
		i += 2
	}
	if b.Len() == 0 || EncodeName(b.String()) != key {
		return "", fmt.Errorf("%q: %w", key, ErrBadKey) // not canonical: two keys would name one channel
	}
	return b.String(), nil
}

func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := hexDigit(hi)
	l, ok2 := hexDigit(lo)
	return h<<4 | l, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
