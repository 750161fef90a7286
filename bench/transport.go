package bench

import (
	"fmt"
	"os"
)

// link is what two client processes, A and B, need to talk over one
// transport: the descriptors each inherits (fd 3 the one it writes, fd 4
// the one it reads) or the arguments that name the msg files it opens
// (of ipcfs or of the floor server, whose channels look the same).
type link struct {
	aFiles, bFiles []*os.File
	aArgs, bArgs   []string
	channels       []string // msg: the channels made for it, removed after
}

// connect sets up transport t between A and B: A sends to B, and with
// duplex B answers A (a round trip). The descriptors belong to g, which
// closes the parent's copies once the clients run.
func (e *env) connect(g *group, t string, duplex bool) (link, error) {
	var l link
	switch t {
	case Pipe:
		abR, abW, err := g.pipe()
		if err != nil {
			return l, err
		}
		if !duplex {
			l.aFiles, l.bFiles = []*os.File{abW}, []*os.File{nil, abR}
			return l, nil
		}
		baR, baW, err := g.pipe()
		if err != nil {
			return l, err
		}
		l.aFiles, l.bFiles = []*os.File{abW, baR}, []*os.File{baW, abR}
	case Socket:
		a, b, err := g.socketpair()
		if err != nil {
			return l, err
		}
		if !duplex {
			l.aFiles, l.bFiles = []*os.File{a}, []*os.File{nil, b}
			return l, nil
		}
		// One socket pair carries both directions.
		l.aFiles, l.bFiles = []*os.File{a, a}, []*os.File{b, b}
	case Msg, Floor:
		ab, err := e.channel(t)
		if err != nil {
			return l, err
		}
		l.channels = []string{ab}
		// A hangs up when done, so that B's reads end.
		l.aArgs = []string{"-out", ab + "/msg", "-hangup", ab + "/ctl"}
		l.bArgs = []string{"-in", ab + "/msg"}
		if !duplex {
			return l, nil
		}
		ba, err := e.channel(t)
		if err != nil {
			return l, err
		}
		l.channels = append(l.channels, ba)
		l.aArgs = append(l.aArgs, "-in", ba+"/msg")
		l.bArgs = append(l.bArgs, "-out", ba+"/msg")
	default:
		return l, fmt.Errorf("bench: unknown transport %q", t)
	}
	return l, nil
}
