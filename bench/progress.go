package bench

import (
	"fmt"
	"io"
	"time"
)

// progress is the line on stderr that says what is being measured.
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	n       int
	started time.Time
	shown   bool
}

func newProgress(cfg Config, started time.Time) *progress {
	return &progress{w: cfg.Progress, tty: cfg.ProgressTTY, total: cfg.steps(), started: started}
}

// step starts the next counted step.
func (p *progress) step(what string) {
	p.n++
	p.set(fmt.Sprintf("[%d/%d] %s", p.n, p.total, what))
}

// set shows what is going on now.
func (p *progress) set(what string) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf("ipcfs bench: %s, %ds", what, int(time.Since(p.started).Seconds()))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// done clears the line.
func (p *progress) done() {
	if p.w != nil && p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
