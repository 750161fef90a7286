package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const pkg = "example.com/p"
	events := []event{
		{Action: "start", Package: pkg},
		{Action: "run", Package: pkg, Test: "TestOK"},
		{Action: "output", Package: pkg, Test: "TestOK", Output: "=== RUN   TestOK\n"},
		{Action: "output", Package: pkg, Test: "TestOK", Output: "--- PASS: TestOK (0.00s)\n"},
		{Action: "pass", Package: pkg, Test: "TestOK"},
		{Action: "output", Package: pkg, Test: "TestBad/sub", Output: "=== RUN   TestBad/sub\n"},
		{Action: "output", Package: pkg, Test: "TestBad/sub", Output: "    x_test.go:7: boom\n"},
		{Action: "output", Package: pkg, Test: "TestBad/sub", Output: "--- FAIL: TestBad/sub (0.00s)\n"},
		{Action: "fail", Package: pkg, Test: "TestBad/sub"},
		{Action: "output", Package: pkg, Test: "TestBad", Output: "--- FAIL: TestBad (0.00s)\n"},
		{Action: "fail", Package: pkg, Test: "TestBad"},
		{Action: "output", Package: pkg, Test: "TestSkip", Output: "    x_test.go:9: no FUSE\n"},
		{Action: "output", Package: pkg, Test: "TestSkip", Output: "--- SKIP: TestSkip (0.00s)\n"},
		{Action: "skip", Package: pkg, Test: "TestSkip"},
		{Action: "output", Package: pkg, Test: "TestHung", Output: "    x_test.go:11: waiting\n"},
		{Action: "output", Package: pkg, Output: "panic: test timed out after 6m0s\n"},
		{Action: "output", Package: pkg, Output: "FAIL\texample.com/p\t360.1s\n"},
		{Action: "fail", Package: pkg},
	}
	var out strings.Builder
	r := newReport(&out)
	for _, e := range events {
		// Through JSON, as go test writes them.
		b, _ := json.Marshal(e)
		var back event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		r.add(back)
	}
	if r.passed != 1 || r.failed != 2 || len(r.skipped) != 1 || r.skipped[0].name != "TestSkip" || r.skipped[0].pkg != pkg {
		t.Errorf("passed %d, failed %d, skipped %+v; want 1, 2, TestSkip", r.passed, r.failed, r.skipped)
	}
	want := "    x_test.go:7: boom\n--- FAIL: TestBad/sub (0.00s)\n--- FAIL: TestBad (0.00s)\n" +
		"panic: test timed out after 6m0s\nFAIL\texample.com/p\t360.1s\n    x_test.go:11: waiting\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := r.skipped[0].output; got != "    x_test.go:9: no FUSE\n--- SKIP: TestSkip (0.00s)\n" {
		t.Errorf("skip output %q", got)
	}
}
