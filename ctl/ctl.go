// Package ctl parses what is written to a channel's ctl file and renders what
// reading it returns. It knows the syntax only: applying the commands to a
// channel is the caller's job.
//
// # Syntax
//
// A write carries one command a line; lines end in "\n" or "\r\n", and the
// last line needs no terminator (or may end in a lone "\r"). Any other
// carriage return is an error. Blank lines are ignored. Words are separated
// by runs of spaces and tabs; spaces and tabs at either end of a line are
// ignored. Command words are lower-case and exact:
//
//	hangup
//	reopen
//	flush
//	queue-bytes N    1 ≤ N ≤ MaxQueueBytes
//	queue-msgs N     1 ≤ N ≤ MaxQueueMsgs
//
// N is a size as package internal/size reads it: decimal, or with a K, M or G
// suffix (powers of 1024), for both commands ("queue-msgs 4K" is 4096
// messages).
//
// # Errors
//
// Parse validates the whole write before returning anything: on any error
// it returns no commands, so the caller can fail the write with EINVAL and
// change nothing. The error wraps [ErrSyntax] and its text names the line and
// the reason, ready for a log line. Input that is not UTF-8, holds control
// characters (NUL included), has a line longer than [MaxLine] bytes or is
// longer than [MaxInput] bytes is an error. Parse runs in time linear in its
// input and never panics.
package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/ipcfs/ipcfs/internal/size"
)

// Limits on what Parse accepts.
const (
	MaxInput      = 64 << 10 // bytes in one write
	MaxLine       = 4096     // bytes in one line, without its "\n" or "\r\n"
	MaxQueueBytes = 1 << 50  // largest queue-bytes argument
	MaxQueueMsgs  = 1 << 30  // largest queue-msgs argument; fits an int everywhere
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("ctl: syntax error")

// Op names a ctl command.
type Op int

// The commands, as in the package doc.
const (
	Hangup     Op = iota + 1 // stop writers (EPIPE); readers drain, then read end of file
	Reopen                   // undo Hangup
	Flush                    // discard every queued message
	QueueBytes               // set the queue's capacity in bytes to Arg
	QueueMsgs                // set the queue's capacity in messages to Arg
)

var opWords = [...]string{
	Hangup:     "hangup",
	Reopen:     "reopen",
	Flush:      "flush",
	QueueBytes: "queue-bytes",
	QueueMsgs:  "queue-msgs",
}

// String returns the command word ("hangup", "queue-bytes", …), or "Op(n)"
// for a value that is not one of the constants.
func (o Op) String() string {
	if o > 0 && int(o) < len(opWords) {
		return opWords[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// hasArg reports whether o takes a size argument.
func (o Op) hasArg() bool { return o == QueueBytes || o == QueueMsgs }

// maxArg is the largest argument o accepts.
func (o Op) maxArg() int64 {
	if o == QueueMsgs {
		return MaxQueueMsgs
	}
	return MaxQueueBytes
}

// Command is one parsed line. Arg is set only for QueueBytes (bytes) and
// QueueMsgs (messages), and is then within [1, MaxQueueBytes] or
// [1, MaxQueueMsgs]; for the other ops it is 0.
type Command struct {
	Op  Op
	Arg int64
}

// String renders c as a line Parse reads back as c, without the newline:
// "hangup", "queue-bytes 16777216" (arguments in plain decimal).
func (c Command) String() string {
	if c.Op.hasArg() {
		return c.Op.String() + " " + strconv.FormatInt(c.Arg, 10)
	}
	return c.Op.String()
}

// Parse parses one write to ctl. On success it returns the commands in the
// order written (none if the write holds only blank lines); the caller
// applies them in that order, so with "queue-msgs 10\nqueue-msgs 20" the last
// wins. On error it returns nil and an error wrapping ErrSyntax, such as
//
//	ctl: line 2: queue-bytes: size "abc": invalid syntax (want …)
//
// An error about an argument also wraps the error from package size, if any.
func Parse(b []byte) ([]Command, error) {
	if len(b) > MaxInput {
		return nil, &syntaxError{msg: fmt.Sprintf("write of %d bytes is longer than %d", len(b), MaxInput)}
	}
	var cmds []Command
	for lineNo := 1; len(b) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		c, ok, err := parseLine(line)
		if err != nil {
			err.line = lineNo
			return nil, err
		}
		if ok {
			cmds = append(cmds, c)
		}
	}
	return cmds, nil
}

// parseLine parses one line without its terminator. It returns ok == false
// for a blank line.
func parseLine(line []byte) (Command, bool, *syntaxError) {
	if len(line) > MaxLine {
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("line of %d bytes is longer than %d", len(line), MaxLine)}
	}
	if !utf8.Valid(line) {
		return Command{}, false, &syntaxError{msg: "not UTF-8"}
	}
	for _, c := range line {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return Command{}, false, &syntaxError{msg: fmt.Sprintf("control character %q", c)}
		}
	}
	var words [3][]byte // a third word is always an error
	n := 0
	for rest := line; n < len(words); {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		i := bytes.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		words[n], rest = rest[:i], rest[i:]
		n++
	}
	if n == 0 {
		return Command{}, false, nil
	}
	op := lookup(words[0])
	if op == 0 {
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("unknown command %s (want hangup, reopen, flush, queue-bytes N or queue-msgs N)", quote(words[0]))}
	}
	if !op.hasArg() {
		if n > 1 {
			return Command{}, false, &syntaxError{msg: fmt.Sprintf("%s takes no argument, got %s", op, quote(words[1]))}
		}
		return Command{Op: op}, true, nil
	}
	if n < 2 {
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("%s needs a size N, 1 ≤ N ≤ %d", op, op.maxArg())}
	}
	if n > 2 {
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("%s takes one argument, got another: %s", op, quote(words[2]))}
	}
	arg := words[1]
	if len(arg) > 64 { // keeps the message short; no valid size is this long
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("%s: size %s is too long", op, quote(arg))}
	}
	v, err := size.Parse(string(arg))
	if err != nil {
		return Command{}, false, &syntaxError{msg: op.String(), err: err}
	}
	if v < 1 || v > op.maxArg() {
		return Command{}, false, &syntaxError{msg: fmt.Sprintf("%s: %s is out of range (want 1 to %d)", op, arg, op.maxArg())}
	}
	return Command{Op: op, Arg: v}, true, nil
}

func lookup(w []byte) Op {
	for op, word := range opWords {
		if word != "" && string(w) == word {
			return Op(op)
		}
	}
	return 0
}

// quote quotes w for an error message, cut to at most 32 bytes.
func quote(w []byte) string {
	const max = 32
	if len(w) <= max {
		return strconv.Quote(string(w))
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(w[cut]) {
		cut--
	}
	return strconv.Quote(string(w[:cut])) + "…"
}

// syntaxError is the error Parse returns: "ctl: line N: msg[: err]".
type syntaxError struct {
	line int    // 1-based; 0 for the write as a whole
	msg  string // the reason
	err  error  // underlying error (from package size), or nil
}

func (e *syntaxError) Error() string {
	s := "ctl: "
	if e.line > 0 {
		s += "line " + strconv.Itoa(e.line) + ": "
	}
	s += e.msg
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

func (e *syntaxError) Unwrap() error { return e.err }

// Settings is what reading ctl returns.
type Settings struct {
	QueueBytes int64 // the queue's capacity in bytes
	QueueMsgs  int64 // the queue's capacity in messages
	HungUp     bool  // whether hangup is in effect
}

// Format renders s as the ctl file reads, one "key value" a line, numbers in
// plain decimal:
//
//	queue-bytes 16777216
//	queue-msgs 4096
//	hungup false
func (s Settings) Format() []byte {
	b := make([]byte, 0, 64)
	b = append(b, "queue-bytes "...)
	b = strconv.AppendInt(b, s.QueueBytes, 10)
	b = append(b, "\nqueue-msgs "...)
	b = strconv.AppendInt(b, s.QueueMsgs, 10)
	b = append(b, "\nhungup "...)
	b = strconv.AppendBool(b, s.HungUp)
	return append(b, '\n')
}
