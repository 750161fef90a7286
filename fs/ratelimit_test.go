package fs

import (
	"log/slog"
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		uid    uint32
		at     time.Duration // after t0
		ok     bool
		before int
	}
	tests := map[string][]step{
		"a burst, then nothing, then a summary when tokens come back": {
			{1, 0, true, 0}, {1, 0, true, 0}, {1, 0, true, 0},
			{1, 0, false, 0}, {1, 0, false, 0},
			{1, time.Second / 2, true, 2}, // 0.5 s at 2 a second: one token
			{1, time.Second / 2, false, 0},
		},
		"uids are independent": {
			{1, 0, true, 0}, {1, 0, true, 0}, {1, 0, true, 0}, {1, 0, false, 0},
			{2, 0, true, 0}, {2, 0, true, 0},
		},
		"tokens never exceed the burst": {
			{1, time.Hour, true, 0}, {1, time.Hour, true, 0}, {1, time.Hour, true, 0},
			{1, time.Hour, false, 0},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			l := newLogLimiter(3, 2)
			for i, s := range steps {
				ok, before := l.allow(s.uid, slog.LevelWarn, t0.Add(s.at))
				if ok != s.ok || before != s.before {
					t.Fatalf("step %d: allow = %v, %d; want %v, %d", i, ok, before, s.ok, s.before)
				}
			}
		})
	}
}

func TestLogLimiterFlush(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLogLimiter(1, 1)
	w := slog.LevelWarn
	l.allow(7, w, t0)
	l.allow(7, w, t0)
	l.allow(7, w, t0)
	l.allow(8, w, t0)
	if ok, _ := l.allow(7, slog.LevelDebug, t0); !ok {
		t.Fatal("a debug line was suppressed by warnings")
	}
	got := l.flush(t0, false)
	if len(got) != 1 || got[0] != (suppressed{logKey{7, w}, 2}) {
		t.Fatalf("flush = %v, want uid 7: 2", got)
	}
	if got := l.flush(t0, false); len(got) != 0 {
		t.Fatalf("second flush = %v, want nothing", got)
	}
	// Full buckets are forgotten.
	l.flush(t0.Add(time.Hour), false)
	if len(l.users) != 0 {
		t.Fatalf("%d buckets kept after they refilled", len(l.users))
	}
}
