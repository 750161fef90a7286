package fs

import (
	"log/slog"
	"sync"
	"time"
)

// Failing requests are logged through a token bucket per uid and level: a
// burst of logBurst lines, then logRate lines a second. Lines beyond are
// counted and summarized in one "suppressed N similar lines" line, written
// before that uid's next line at that level or by the periodic flush.
// (Per level, so that expected failures at debug, such as the lookups of
// names not yet made, never hide a warning.)
const (
	logBurst = 100
	logRate  = 10 // lines a second
)

// logLimiter is a token bucket of log lines per uid.
type logLimiter struct {
	burst, rate float64

	mu    sync.Mutex            // guards users and their buckets
	users map[logKey]*logBucket // GUARDED_BY(mu)
}

// logKey is what lines are counted by.
type logKey struct {
	uid   uint32
	level slog.Level
}

type logBucket struct {
	tokens     float64
	last       time.Time // when tokens was last brought up to date
	suppressed int       // lines dropped since the last summary
}

type suppressed struct {
	logKey
	n int
}

func newLogLimiter(burst, rate float64) *logLimiter {
	return &logLimiter{burst: burst, rate: rate, users: make(map[logKey]*logBucket)}
}

// allow reports whether uid may log a line at level now, and how many of
// its lines were suppressed before this one (to be summarized first) if so.
func (l *logLimiter) allow(uid uint32, level slog.Level, now time.Time) (ok bool, before int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := logKey{uid, level}
	b := l.users[k]
	if b == nil {
		b = &logBucket{tokens: l.burst, last: now}
		l.users[k] = b
	}
	b.refill(l, now)
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	before, b.suppressed = b.suppressed, 0
	return true, before
}

func (b *logBucket) refill(l *logLimiter, now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
}

// flush returns the uids whose lines were suppressed since their last
// summary, and how many, and forgets buckets that are full again; with
// all, it forgets every bucket.
func (l *logLimiter) flush(now time.Time, all bool) []suppressed {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suppressed
	for k, b := range l.users {
		if b.suppressed > 0 {
			out = append(out, suppressed{k, b.suppressed})
			b.suppressed = 0
		}
		b.refill(l, now)
		if all || b.tokens >= l.burst {
			delete(l.users, k)
		}
	}
	return out
}
