// Package size parses and formats byte counts written the way a shell user
// writes them: plain decimal bytes, or a number with a K, M or G suffix
// (powers of 1024).
//
// # Syntax
//
// A size is one or more ASCII decimal digits, optionally followed by a unit
// K, M or G (or k, m, g), optionally followed by "B" or, after a unit, "iB".
// So "4096", "4096B", "4K", "4k", "4KB", "4KiB" all mean 4096. There are no
// fractions, no signs, no spaces and no other units: callers trim their
// input. Leading zeros are allowed.
//
// # Errors
//
// Parse returns errors that wrap [ErrSyntax] (the text is not a size) or
// [ErrRange] (the text is a size, but negative or above [math.MaxInt64] bytes
// after scaling); test with [errors.Is]. The error text quotes the input, so
// it reads well on its own in a log line or a flag error.
package size

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The units Parse accepts and Format emits.
const (
	K int64 = 1 << 10
	M int64 = 1 << 20
	G int64 = 1 << 30
)

var (
	// ErrSyntax means the text is not a size.
	ErrSyntax = errors.New("invalid syntax")
	// ErrRange means the size is negative or does not fit in an int64.
	ErrRange = errors.New("out of range")
)

// Parse parses a byte count as described in the package doc. It returns a
// value in [0, math.MaxInt64], or an error wrapping ErrSyntax or ErrRange.
// Any leading minus sign followed by a valid size (even "-0") is ErrRange.
func Parse(s string) (int64, error) {
	digits, shift, neg, ok := split(s)
	if !ok {
		return 0, fmt.Errorf("size %q: %w (want decimal bytes with an optional K, M or G suffix)", s, ErrSyntax)
	}
	if neg {
		return 0, fmt.Errorf("size %q: %w (negative)", s, ErrRange)
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		d := int64(digits[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("size %q: %w (above %d bytes)", s, ErrRange, int64(math.MaxInt64))
		}
		n = n*10 + d
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: %w (above %d bytes)", s, ErrRange, int64(math.MaxInt64))
	}
	return n << shift, nil
}

// split checks the syntax of s and returns its digits, the unit's shift
// (0, 10, 20 or 30) and whether it had a leading minus sign.
func split(s string) (digits string, shift uint, neg, ok bool) {
	if len(s) > 0 && s[0] == '-' {
		neg = true
		s = s[1:]
	}
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", 0, false, false
	}
	digits, rest := s[:i], s[i:]
	if rest != "" {
		switch rest[0] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		}
		if shift != 0 {
			rest = rest[1:]
		}
	}
	switch {
	case rest == "", rest == "B":
	case rest == "iB" && shift != 0:
	default:
		return "", 0, false, false
	}
	return digits, shift, neg, true
}

// Format renders n in the shortest form Parse reads back as n: "1G", "16M" or
// "4K" when n is a non-zero multiple of that unit, else plain decimal ("0",
// "1000"). For n < 0 it returns plain decimal, which Parse rejects.
func Format(n int64) string {
	if n > 0 {
		switch {
		case n%G == 0:
			return strconv.FormatInt(n/G, 10) + "G"
		case n%M == 0:
			return strconv.FormatInt(n/M, 10) + "M"
		case n%K == 0:
			return strconv.FormatInt(n/K, 10) + "K"
		}
	}
	return strconv.FormatInt(n, 10)
}

// Value is a [flag.Value] (and [flag.Getter]) holding a size in bytes. Set
// the default before registering it:
//
//	queueBytes := size.Value{N: 16 * size.M}
//	flag.Var(&queueBytes, "queue-bytes", "capacity of a channel's queue (K, M, G suffixes)")
//
// Set accepts anything Parse does, including 0; range checks beyond that are
// the caller's.
type Value struct {
	N int64
}

// String returns Format(v.N); "0" for a nil *Value.
func (v *Value) String() string {
	if v == nil {
		return "0"
	}
	return Format(v.N)
}

// Set parses s with Parse and stores the result; on error v is unchanged.
func (v *Value) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	v.N = n
	return nil
}

// Get returns the size as an int64.
func (v *Value) Get() any { return v.N }
