// Command testreport runs `go test -json` and prints what a plain `go test`
// prints — each package's closing line, the output of the tests that
// failed — then the tests that were skipped, each with its reason, and one
// line that counts them:
//
//	LABEL: 512 passed, 0 failed, 3 skipped
//
// It exits with go test's status, or 1 if a test was skipped in a package
// named by -no-skip (scripts/test.sh names the mounted tests when CI=true:
// there FUSE is present, so a skip means a test did not run that should
// have).
//
// Usage:
//
//	testreport [-label L] [-no-skip PKG]... -- GO-TEST-ARGS...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // of build-output events
}

type list []string

func (s *list) String() string     { return strings.Join(*s, ",") }
func (s *list) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	label := flag.String("label", "tests", "the word before the counts")
	var noSkip list
	flag.Var(&noSkip, "no-skip", "a package in which a skipped test fails the run (repeatable)")
	flag.Parse()

	cmd := exec.Command("go", append([]string{"test", "-json"}, flag.Args()...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fatal(err)
	}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	r := newReport(os.Stdout)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Println(sc.Text()) // not an event: show it as it is
			continue
		}
		r.add(e)
	}
	if err := sc.Err(); err != nil {
		fatal(err)
	}
	testErr := cmd.Wait()

	code := 0
	var ee *exec.ExitError
	if errors.As(testErr, &ee) {
		code = ee.ExitCode()
	} else if testErr != nil {
		fatal(testErr)
	}
	if len(r.skipped) > 0 {
		fmt.Printf("%s: skipped:\n", *label)
		for _, s := range r.skipped {
			fmt.Print(s.output)
		}
	}
	fmt.Printf("%s: %d passed, %d failed, %d skipped\n", *label, r.passed, r.failed, len(r.skipped))
	var forbidden []string
	for _, s := range r.skipped {
		if slices.Contains(noSkip, s.pkg) {
			forbidden = append(forbidden, s.name)
		}
	}
	if len(forbidden) > 0 {
		fmt.Printf("%s: FAIL: every test in %s must run here, and %d were skipped: %s\n",
			*label, strings.Join(noSkip, ", "), len(forbidden), strings.Join(forbidden, " "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

type skip struct{ pkg, name, output string }

// report turns events into go test's plain output and counts.
type report struct {
	w       io.Writer
	outputs map[[2]string]*strings.Builder // (package, test) → output so far
	passed  int
	failed  int
	skipped []skip
}

func newReport(w io.Writer) *report {
	return &report{w: w, outputs: map[[2]string]*strings.Builder{}}
}

func (r *report) add(e event) {
	if e.Action == "build-output" {
		fmt.Fprint(r.w, e.Output)
		return
	}
	key := [2]string{e.Package, e.Test}
	if e.Test == "" {
		switch e.Action {
		case "output":
			if e.Output != "PASS\n" {
				fmt.Fprint(r.w, e.Output) // "ok  pkg 1.2s", "FAIL pkg", a panic, a timeout
			}
		case "fail":
			// The binary failed: show what tests still running wrote (a
			// timeout or a crash ends them without an event of their own).
			for k, b := range r.outputs {
				if k[0] == e.Package {
					fmt.Fprint(r.w, plain(b.String()))
					delete(r.outputs, k)
				}
			}
		}
		return
	}
	switch e.Action {
	case "output":
		b := r.outputs[key]
		if b == nil {
			b = &strings.Builder{}
			r.outputs[key] = b
		}
		b.WriteString(e.Output)
	case "pass":
		r.passed++
		delete(r.outputs, key)
	case "fail":
		r.failed++
		if b := r.outputs[key]; b != nil {
			fmt.Fprint(r.w, plain(b.String()))
		}
		delete(r.outputs, key)
	case "skip":
		out := ""
		if b := r.outputs[key]; b != nil {
			out = plain(b.String())
		}
		r.skipped = append(r.skipped, skip{e.Package, e.Test, out})
		delete(r.outputs, key)
	}
}

// plain drops the lines that only -v prints (=== RUN, PAUSE, CONT, NAME).
func plain(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, "=== ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "testreport:", err)
	os.Exit(2)
}
