package ctl

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipcfs/ipcfs/internal/size"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want []Command
	}{
		{"", nil},
		{"\n", nil},
		{"\n\n\r\n \t \n", nil},
		{"hangup", []Command{{Op: Hangup}}},
		{"hangup\n", []Command{{Op: Hangup}}},
		{"hangup\r\n", []Command{{Op: Hangup}}},
		{"hangup\r", []Command{{Op: Hangup}}}, // a final "\r\n" cut short
		{"reopen\n", []Command{{Op: Reopen}}},
		{"flush\n", []Command{{Op: Flush}}},
		{"  \thangup \t \n", []Command{{Op: Hangup}}},
		{"queue-bytes 1\n", []Command{{Op: QueueBytes, Arg: 1}}},
		{"queue-bytes 16M\n", []Command{{Op: QueueBytes, Arg: 16 << 20}}},
		{"queue-bytes 4KiB", []Command{{Op: QueueBytes, Arg: 4096}}},
		{"queue-bytes\t \t1g \r\n", []Command{{Op: QueueBytes, Arg: 1 << 30}}},
		{"queue-bytes 1125899906842624", []Command{{Op: QueueBytes, Arg: 1 << 50}}},
		{"queue-bytes 1048576G", []Command{{Op: QueueBytes, Arg: 1 << 50}}},
		{"queue-msgs 4096\n", []Command{{Op: QueueMsgs, Arg: 4096}}},
		{"queue-msgs 4K\n", []Command{{Op: QueueMsgs, Arg: 4096}}},
		{"queue-msgs 1G\n", []Command{{Op: QueueMsgs, Arg: 1 << 30}}},
		{"queue-msgs 0001", []Command{{Op: QueueMsgs, Arg: 1}}},
		{"hangup\nreopen\nflush\n", []Command{{Op: Hangup}, {Op: Reopen}, {Op: Flush}}},
		{"queue-msgs 10\r\n\r\nqueue-msgs 20\r\n", []Command{{Op: QueueMsgs, Arg: 10}, {Op: QueueMsgs, Arg: 20}}},
		{"\n\nflush\n\n   \nqueue-bytes 64K", []Command{{Op: Flush}, {Op: QueueBytes, Arg: 64 << 10}}},
		{strings.Repeat(" ", MaxLine-len("flush")) + "flush\n", []Command{{Op: Flush}}},
		{"flush" + strings.Repeat(" ", MaxLine-len("flush")) + "\r\n", []Command{{Op: Flush}}},
		{strings.Repeat("\n", MaxInput), nil},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("Parse(%.40q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%.40q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantMsg string // the whole error text
		wrapped error  // also wrapped, besides ErrSyntax
	}{
		{"bogus", `ctl: line 1: unknown command "bogus" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"hangup\nbogus\n", `ctl: line 2: unknown command "bogus" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"HANGUP", `ctl: line 1: unknown command "HANGUP" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"hang up", `ctl: line 1: unknown command "hang" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"queue_bytes 1", `ctl: line 1: unknown command "queue_bytes" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"hangup now", `ctl: line 1: hangup takes no argument, got "now"`, nil},
		{"flush 1\n", `ctl: line 1: flush takes no argument, got "1"`, nil},
		{"reopen\treopen", `ctl: line 1: reopen takes no argument, got "reopen"`, nil},
		{"queue-bytes", `ctl: line 1: queue-bytes needs a size N, 1 ≤ N ≤ 1125899906842624`, nil},
		{"queue-bytes \t \r\n", `ctl: line 1: queue-bytes needs a size N, 1 ≤ N ≤ 1125899906842624`, nil},
		{"queue-msgs\n", `ctl: line 1: queue-msgs needs a size N, 1 ≤ N ≤ 1073741824`, nil},
		{"queue-msgs 1 2", `ctl: line 1: queue-msgs takes one argument, got another: "2"`, nil},
		{"flush\nqueue-bytes abc\n", `ctl: line 2: queue-bytes: size "abc": invalid syntax (want decimal bytes with an optional K, M or G suffix)`, size.ErrSyntax},
		{"queue-bytes 1.5M", `ctl: line 1: queue-bytes: size "1.5M": invalid syntax (want decimal bytes with an optional K, M or G suffix)`, size.ErrSyntax},
		{"queue-bytes 4T", `ctl: line 1: queue-bytes: size "4T": invalid syntax (want decimal bytes with an optional K, M or G suffix)`, size.ErrSyntax},
		{"queue-bytes -1", `ctl: line 1: queue-bytes: size "-1": out of range (negative)`, size.ErrRange},
		{"queue-bytes 99999999999999999999", `ctl: line 1: queue-bytes: size "99999999999999999999": out of range (above 9223372036854775807 bytes)`, size.ErrRange},
		{"queue-bytes 0", `ctl: line 1: queue-bytes: 0 is out of range (want 1 to 1125899906842624)`, nil},
		{"queue-bytes 0K", `ctl: line 1: queue-bytes: 0K is out of range (want 1 to 1125899906842624)`, nil},
		{"queue-bytes 1125899906842625", `ctl: line 1: queue-bytes: 1125899906842625 is out of range (want 1 to 1125899906842624)`, nil},
		{"queue-bytes 1048577G", `ctl: line 1: queue-bytes: 1048577G is out of range (want 1 to 1125899906842624)`, nil},
		{"queue-msgs 0", `ctl: line 1: queue-msgs: 0 is out of range (want 1 to 1073741824)`, nil},
		{"queue-msgs 1073741825", `ctl: line 1: queue-msgs: 1073741825 is out of range (want 1 to 1073741824)`, nil},
		{"queue-msgs 2G", `ctl: line 1: queue-msgs: 2G is out of range (want 1 to 1073741824)`, nil},
		{"queue-msgs " + strings.Repeat("9", 65), `ctl: line 1: queue-msgs: size "99999999999999999999999999999999"… is too long`, nil},
		{"hangup\x00", `ctl: line 1: control character '\x00'`, nil},
		{"\x00", `ctl: line 1: control character '\x00'`, nil},
		{"hangup\r\r\n", `ctl: line 1: control character '\r'`, nil},
		{"hangup\vreopen", `ctl: line 1: control character '\v'`, nil},
		{"flush\x7f", `ctl: line 1: control character '\x7f'`, nil},
		{"\nhangup\xff\n", `ctl: line 2: not UTF-8`, nil},
		{"queue-bytes \xc0\x80", `ctl: line 1: not UTF-8`, nil},
		{"queue-bytes\u00a01", `ctl: line 1: unknown command "queue-bytes\u00a01" (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"queue-bytes １", `ctl: line 1: queue-bytes: size "１": invalid syntax (want decimal bytes with an optional K, M or G suffix)`, size.ErrSyntax},
		{"é" + strings.Repeat("x", 40), `ctl: line 1: unknown command "é` + strings.Repeat("x", 30) + `"… (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{strings.Repeat("é", 40), `ctl: line 1: unknown command "` + strings.Repeat("é", 16) + `"… (want hangup, reopen, flush, queue-bytes N or queue-msgs N)`, nil},
		{"flush\n" + strings.Repeat(" ", MaxLine+1), `ctl: line 2: line of 4097 bytes is longer than 4096`, nil},
		{strings.Repeat("\n", MaxInput+1), `ctl: write of 65537 bytes is longer than 65536`, nil},
		{"hangup\nreopen\nflush\nqueue-msgs 0\n", `ctl: line 4: queue-msgs: 0 is out of range (want 1 to 1073741824)`, nil},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err == nil {
			t.Errorf("Parse(%.40q) = %v; want error", tt.in, got)
			continue
		}
		if got != nil {
			t.Errorf("Parse(%.40q) returned commands %v with error", tt.in, got)
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%.40q): %v does not wrap ErrSyntax", tt.in, err)
		}
		if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
			t.Errorf("Parse(%.40q): %v does not wrap %v", tt.in, err, tt.wrapped)
		}
		if err.Error() != tt.wantMsg {
			t.Errorf("Parse(%.40q) error:\n got %s\nwant %s", tt.in, err, tt.wantMsg)
		}
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{
		Hangup: "hangup", Reopen: "reopen", Flush: "flush",
		QueueBytes: "queue-bytes", QueueMsgs: "queue-msgs",
		0: "Op(0)", 6: "Op(6)", -1: "Op(-1)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q; want %q", int(op), got, want)
		}
	}
}

func TestCommandString(t *testing.T) {
	for c, want := range map[Command]string{
		{Op: Hangup}:                    "hangup",
		{Op: Flush}:                     "flush",
		{Op: QueueBytes, Arg: 16 << 20}: "queue-bytes 16777216",
		{Op: QueueMsgs, Arg: 1}:         "queue-msgs 1",
	} {
		if got := c.String(); got != want {
			t.Errorf("%#v.String() = %q; want %q", c, got, want)
		}
	}
}

func TestSettingsFormat(t *testing.T) {
	tests := []struct {
		in   Settings
		want string
	}{
		{Settings{QueueBytes: 16 << 20, QueueMsgs: 4096}, "queue-bytes 16777216\nqueue-msgs 4096\nhungup false\n"},
		{Settings{QueueBytes: 1, QueueMsgs: 1, HungUp: true}, "queue-bytes 1\nqueue-msgs 1\nhungup true\n"},
	}
	for _, tt := range tests {
		if got := string(tt.in.Format()); got != tt.want {
			t.Errorf("%+v.Format() = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseLinear checks that Parse takes time linear in its input on the
// worst inputs: each shape is parsed at half the largest size and at the
// largest, and twice the bytes must cost about twice the time, not four
// times (no absolute threshold: the machine's speed does not matter).
func TestParseLinear(t *testing.T) {
	rep := func(s string, n int) []byte { return bytes.Repeat([]byte(s), max(n, 0)) }
	// Each makes an input of at most n bytes.
	inputs := map[string]func(n int) []byte{
		"blank lines":  func(n int) []byte { return rep("\n", n) },
		"CRLF":         func(n int) []byte { return rep("\r\n", n/2) },
		"flushes":      func(n int) []byte { return rep("flush\n", n/6) },
		"tabs":         func(n int) []byte { return rep("\t \t \n", n/5) },
		"spaced words": func(n int) []byte { return rep("flush"+strings.Repeat(" ", n/16-6)+"\n", 16) },
		"many args bad": func(n int) []byte {
			return append(rep("flush\n", n/7), "queue-bytes"+strings.Repeat(" 1", (n-n/7*6-11)/2)...)
		},
		"long last bad": func(n int) []byte {
			return append(rep("hangup\n", n/8), rep("x", n-n/8*7)...)
		},
	}
	// cost returns the least time, over rounds, of one Parse of in.
	cost := func(in []byte) time.Duration {
		reps := 1
		for {
			start := time.Now()
			for range reps {
				Parse(in)
			}
			if d := time.Since(start); d >= 5*time.Millisecond {
				break
			}
			reps *= 2
		}
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			for range reps {
				Parse(in)
			}
			best = min(best, time.Since(start)/time.Duration(reps))
		}
		return best
	}
	for name, gen := range inputs {
		half, full := gen(MaxInput/2), gen(MaxInput)
		if len(full) > MaxInput || len(full) < MaxInput*9/10 || len(half) < len(full)*4/10 {
			t.Fatalf("%s: test inputs of %d and %d bytes are not about half and all of %d", name, len(half), len(full), MaxInput)
		}
		// Interleaved, so that a slow moment of the machine hits both.
		var dh, df time.Duration
		for range 3 {
			dh, df = cost(half), cost(full)
			if df < 3*dh {
				break
			}
		}
		if df >= 3*dh {
			t.Errorf("%s: Parse of %d bytes took %v, of %d bytes %v: %.1f times as long for %.1f times the input (quadratic?)",
				name, len(half), dh, len(full), df, float64(df)/float64(dh), float64(len(full))/float64(len(half)))
		}
	}
}

func FuzzParseCtl(f *testing.F) {
	for _, s := range []string{
		"", "\n", "hangup", "hangup\n", "reopen\r\n", "flush\n\n",
		"queue-bytes 16M\n", "queue-msgs 4096\n", "queue-msgs 4K\nqueue-bytes 1G\n",
		" \tqueue-bytes\t 1KiB \r\n", "hangup\nreopen\nflush\n",
		"queue-bytes 0", "queue-msgs 1073741825", "queue-bytes -1", "queue-bytes",
		"hangup now", "bogus", "hangup\x00", "\xff", "queue-bytes 99999999999999999999G",
		"queue-bytes 1.5M",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		cmds, err := Parse(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("Parse modified its input")
		}
		if err != nil {
			if cmds != nil {
				t.Fatalf("Parse(%q) returned %v with error %v", b, cmds, err)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrSyntax", b, err)
			}
			return
		}
		if len(b) > MaxInput {
			t.Fatalf("Parse accepted %d bytes", len(b))
		}
		for _, c := range cmds {
			switch c.Op {
			case Hangup, Reopen, Flush:
				if c.Arg != 0 {
					t.Fatalf("Parse(%q): %v has Arg %d", b, c.Op, c.Arg)
				}
			case QueueBytes:
				if c.Arg < 1 || c.Arg > MaxQueueBytes {
					t.Fatalf("Parse(%q): queue-bytes %d out of range", b, c.Arg)
				}
			case QueueMsgs:
				if c.Arg < 1 || c.Arg > MaxQueueMsgs {
					t.Fatalf("Parse(%q): queue-msgs %d out of range", b, c.Arg)
				}
			default:
				t.Fatalf("Parse(%q): bad op %v", b, c.Op)
			}
		}
		// Re-render and parse again: the same commands come back. The
		// rendering may be longer than the input ("queue-msgs 1K" becomes
		// "queue-msgs 1024"), so parse it in pieces that fit.
		var text []byte
		var again []Command
		flush := func() {
			got, err := Parse(text)
			if err != nil {
				t.Fatalf("Parse(%q) = %v, but its rendering %q fails: %v", b, cmds, text, err)
			}
			again = append(again, got...)
			text = text[:0]
		}
		for _, c := range cmds {
			line := c.String() + "\n"
			if len(text)+len(line) > MaxInput {
				flush()
			}
			text = append(text, line...)
		}
		flush()
		if !reflect.DeepEqual(again, cmds) && (len(again) != 0 || len(cmds) != 0) {
			t.Fatalf("Parse(%q) = %v; its rendering parses as %v", b, cmds, again)
		}
	})
}
