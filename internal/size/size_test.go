package size

import (
	"errors"
	"flag"
	"io"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"0", 0, nil},
		{"1", 1, nil},
		{"4096", 4096, nil},
		{"007", 7, nil},
		{"100B", 100, nil},
		{"4K", 4 << 10, nil},
		{"4k", 4 << 10, nil},
		{"4KB", 4 << 10, nil},
		{"4KiB", 4 << 10, nil},
		{"4kiB", 4 << 10, nil},
		{"16M", 16 << 20, nil},
		{"16m", 16 << 20, nil},
		{"16MiB", 16 << 20, nil},
		{"16MB", 16 << 20, nil},
		{"1G", 1 << 30, nil},
		{"1g", 1 << 30, nil},
		{"1GiB", 1 << 30, nil},
		{"0K", 0, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"8589934591G", 8589934591 << 30, nil},
		{"00000000000000000000000000001", 1, nil},

		{"", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"1 ", 0, ErrSyntax},
		{"1 K", 0, ErrSyntax},
		{"\t1", 0, ErrSyntax},
		{"1\n", 0, ErrSyntax},
		{"K", 0, ErrSyntax},
		{"KiB", 0, ErrSyntax},
		{"B", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{"-K", 0, ErrSyntax},
		{"+1", 0, ErrSyntax},
		{"1.5M", 0, ErrSyntax},
		{"1,000", 0, ErrSyntax},
		{"1_000", 0, ErrSyntax},
		{"0x10", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
		{"1T", 0, ErrSyntax},
		{"1KK", 0, ErrSyntax},
		{"1iB", 0, ErrSyntax},
		{"1Kb", 0, ErrSyntax},
		{"1Kib", 0, ErrSyntax},
		{"1KIB", 0, ErrSyntax},
		{"1BB", 0, ErrSyntax},
		{"1b", 0, ErrSyntax},
		{"abc", 0, ErrSyntax},
		{"1\x00", 0, ErrSyntax},
		{"１", 0, ErrSyntax}, // fullwidth digit one
		{"--1", 0, ErrSyntax},

		{"-1", 0, ErrRange},
		{"-0", 0, ErrRange},
		{"-4K", 0, ErrRange},
		{"9223372036854775808", 0, ErrRange},
		{"99999999999999999999999999", 0, ErrRange},
		{"8589934592G", 0, ErrRange},
		{"8796093022208M", 0, ErrRange},
		{"9007199254740992K", 0, ErrRange},
		{"9007199254740991K", 9007199254740991 << 10, nil},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse(%q) = %d, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if got != 0 {
				t.Errorf("Parse(%q) returned %d with an error; want 0", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := Parse("abc")
	if got, want := err.Error(), `size "abc": invalid syntax (want decimal bytes with an optional K, M or G suffix)`; got != want {
		t.Errorf("error text = %q; want %q", got, want)
	}
	_, err = Parse("-1")
	if got, want := err.Error(), `size "-1": out of range (negative)`; got != want {
		t.Errorf("error text = %q; want %q", got, want)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1023, "1023"},
		{1024, "1K"},
		{1536, "1536"},
		{4096, "4K"},
		{1 << 20, "1M"},
		{16 << 20, "16M"},
		{(1 << 20) + 1024, "1025K"},
		{1 << 30, "1G"},
		{3 << 30, "3G"},
		{1 << 40, "1024G"},
		{math.MaxInt64, "9223372036854775807"},
		{math.MaxInt64 &^ (1<<30 - 1), "8589934591G"},
		{-1, "-1"},
		{-4096, "-4096"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q; want %q", tt.in, got, tt.want)
		}
		if tt.in < 0 {
			continue
		}
		if n, err := Parse(Format(tt.in)); err != nil || n != tt.in {
			t.Errorf("Parse(Format(%d)) = %d, %v", tt.in, n, err)
		}
	}
}

func TestValue(t *testing.T) {
	v := Value{N: 16 * M}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&v, "queue-bytes", "")
	if got := v.String(); got != "16M" {
		t.Errorf("String() = %q; want 16M", got)
	}
	if err := fs.Parse([]string{"--queue-bytes", "4KiB"}); err != nil {
		t.Fatal(err)
	}
	if v.N != 4096 || v.Get().(int64) != 4096 {
		t.Errorf("after Set(4KiB): N = %d", v.N)
	}
	if err := fs.Parse([]string{"--queue-bytes", "4X"}); err == nil {
		t.Errorf("Set(4X) succeeded")
	}
	if v.N != 4096 {
		t.Errorf("failed Set changed N to %d", v.N)
	}
	var nilv *Value
	if got := nilv.String(); got != "0" {
		t.Errorf("nil String() = %q", got)
	}
	fs.PrintDefaults() // must not panic on the zero Value
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1", "4K", "4KiB", "16MB", "1G", "-1", "", "9223372036854775807",
		"8589934592G", "1.5M", " 1", "1iB", "007k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrRange) {
				t.Fatalf("Parse(%q): error %v wraps neither ErrSyntax nor ErrRange", s, err)
			}
			if n != 0 {
				t.Fatalf("Parse(%q) = %d with error", s, n)
			}
			return
		}
		if n < 0 {
			t.Fatalf("Parse(%q) = %d < 0", s, n)
		}
		f := Format(n)
		m, err := Parse(f)
		if err != nil || m != n {
			t.Fatalf("Parse(%q) = %d; Parse(Format = %q) = %d, %v", s, n, f, m, err)
		}
	})
}
