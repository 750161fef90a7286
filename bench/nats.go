package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/internal/daemon"
	"github.com/ipcfs/ipcfs/natschan"
)

// The NATS measurements (Config.NATS): msg on mounts joined to NATS
// JetStream against the same exchange done directly with nats.go, and
// against local msg. Daemon A serves an embedded JetStream server on a
// free loopback port, daemon B joins it; both are child processes, like
// every client. The bench process talks to the server only to make and
// remove the direct clients' streams.

// Transports of the NATS measurements.
const (
	NATSTwo    = "msg-2-daemons" // msg, the writer on A's mount and the reader on B's
	NATSOne    = "msg-1-daemon"  // msg, both on A's mount
	NATSDirect = "nats.go"       // the same pattern with nats.go: the floor of the design
)

var natsTransports = []string{NATSDirect, NATSOne, NATSTwo}

// natsPrefix is the daemons' --nats-prefix; natsDirectPrefix is the
// direct clients' streams', so that the two never meet.
const (
	natsPrefix       = "ipcfs"
	natsDirectPrefix = "ipcfsbench"
)

// natsLimits are a direct stream's limits: ipcfs mount's default
// queue-bytes and queue-msgs, as the daemons' channels have.
var natsLimits = channels.Limits{MaxBytes: 16 << 20, MaxMsgs: 4096}

// natsEnv is the NATS part of a run.
type natsEnv struct {
	url        string // of A's embedded server
	mntA, mntB string
	a, b       *daemon.Daemon
	nc         *nats.Conn
	js         jetstream.JetStream
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// openNATS starts daemons A (with the embedded server, its store in the
// run's temporary directory) and B, and connects to the server.
func (e *env) openNATS(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("bench: a free port for NATS: %w", err)
	}
	n := &natsEnv{
		url:  fmt.Sprintf("nats://127.0.0.1:%d", port),
		mntA: filepath.Join(e.tmp, "nats-a"),
		mntB: filepath.Join(e.tmp, "nats-b"),
	}
	e.nats = n
	for _, d := range []string{n.mntA, n.mntB} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	logArgs := []string{"--log-format", "json", "--log-level", "info", "--nats-prefix", natsPrefix}
	e.prog.set("mounting NATS daemon A (embedded server)")
	if n.a, err = e.startDaemon(ctx, n.mntA, nil, append(logArgs,
		"--nats-serve", fmt.Sprintf("127.0.0.1:%d", port), "--nats-store", filepath.Join(e.tmp, "nats-store"))); err != nil {
		return fmt.Errorf("bench: NATS daemon A: %w", err)
	}
	e.prog.set("mounting NATS daemon B")
	if n.b, err = e.startDaemon(ctx, n.mntB, nil, append(logArgs, "--nats", n.url)); err != nil {
		return fmt.Errorf("bench: NATS daemon B: %w", err)
	}
	if n.nc, err = nats.Connect(n.url, nats.Name("ipcfs bench")); err != nil {
		return fmt.Errorf("bench: connecting to %s: %w", n.url, err)
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// closeNATS disconnects; the daemons are stopped with the others.
func (n *natsEnv) close() {
	if n != nil && n.nc != nil {
		n.nc.Close()
	}
}

// natsChannel makes a channel on A's mount and waits until B's shows it
// too; it returns the name.
func (e *env) natsChannel(ctx context.Context) (string, error) {
	e.seq++
	name := fmt.Sprintf("c%d", e.seq)
	if err := os.Mkdir(filepath.Join(e.nats.mntA, name), 0o700); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(e.nats.mntB, name, "msg"))
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return "", fmt.Errorf("bench: channel %s made on daemon A, not seen on B: %w", name, err)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

// natsStream makes a stream and its consumer for the direct clients, as
// a daemon makes a channel's; it returns the stream's name and subject.
func (e *env) natsStream(ctx context.Context) (stream, subject string, err error) {
	e.seq++
	sc := natschan.StreamConfig(natsDirectPrefix, fmt.Sprintf("d%d", e.seq), natsLimits, 1)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := e.nats.js.CreateStream(ctx, sc)
	if err != nil {
		return "", "", fmt.Errorf("bench: stream %s: %w", sc.Name, err)
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, natschan.ConsumerConfig(30*time.Second)); err != nil {
		return "", "", fmt.Errorf("bench: the consumer of %s: %w", sc.Name, err)
	}
	return sc.Name, sc.Subjects[0], nil
}

// natsLink is natsEnv's counterpart of link: the clients' roles and
// arguments for one NATS transport, and what to remove after.
type natsLink struct {
	direct       bool
	aArgs, bArgs []string
	channels     []string // msg: on A's mount
	streams      []string // direct
}

// natsConnect sets up NATS transport t: A sends to B, and with duplex B
// answers A.
func (e *env) natsConnect(ctx context.Context, t string, duplex bool) (natsLink, error) {
	var l natsLink
	n := e.nats
	switch t {
	case NATSDirect:
		l.direct = true
		ab, abSubj, err := e.natsStream(ctx)
		if err != nil {
			return l, err
		}
		l.streams = []string{ab}
		l.aArgs = []string{"-url", n.url, "-out", abSubj}
		l.bArgs = []string{"-url", n.url, "-in", ab}
		if !duplex {
			return l, nil
		}
		ba, baSubj, err := e.natsStream(ctx)
		if err != nil {
			return l, err
		}
		l.streams = append(l.streams, ba)
		l.aArgs = append(l.aArgs, "-in", ba)
		l.bArgs = append(l.bArgs, "-out", baSubj)
	case NATSOne, NATSTwo:
		bMnt := n.mntB
		if t == NATSOne {
			bMnt = n.mntA
		}
		ab, err := e.natsChannel(ctx)
		if err != nil {
			return l, err
		}
		l.channels = []string{ab}
		l.aArgs = []string{"-out", filepath.Join(n.mntA, ab, "msg"), "-hangup", filepath.Join(n.mntA, ab, "ctl")}
		l.bArgs = []string{"-in", filepath.Join(bMnt, ab, "msg")}
		if !duplex {
			return l, nil
		}
		ba, err := e.natsChannel(ctx)
		if err != nil {
			return l, err
		}
		l.channels = append(l.channels, ba)
		l.aArgs = append(l.aArgs, "-in", filepath.Join(n.mntA, ba, "msg"))
		l.bArgs = append(l.bArgs, "-out", filepath.Join(bMnt, ba, "msg"))
	default:
		return l, fmt.Errorf("bench: unknown NATS transport %q", t)
	}
	return l, nil
}

// roles returns the client roles of l: direct or msg.
func (l natsLink) roles(duplex bool) (a, b string) {
	switch {
	case l.direct && duplex:
		return roleNATSPing, roleNATSPong
	case l.direct:
		return roleNATSSend, roleNATSRecv
	case duplex:
		return rolePing, rolePong
	}
	return roleSend, roleRecv
}

// remove removes l's channels and streams.
func (e *env) natsRemove(ctx context.Context, l natsLink) error {
	var errs []error
	for _, ch := range l.channels {
		if err := os.Remove(filepath.Join(e.nats.mntA, ch)); err != nil {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range l.streams {
		if err := e.nats.js.DeleteStream(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("bench: deleting stream %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// natsSlice is the measuring time of one NATS cell in one round.
func (e *env) natsSlice() time.Duration {
	return e.cfg.NATSTime / time.Duration(e.cfg.Rounds)
}

// natsRounds measures every NATS transport at every size once (a round),
// unpinned, in an order rotated by round.
func (e *env) natsRounds(ctx context.Context, m *measurements, round int) error {
	order := make([]string, len(natsTransports))
	for i := range order {
		order[i] = natsTransports[(i+round)%len(natsTransports)]
	}
	if e.cfg.Parts.RoundTrip {
		for _, size := range e.cfg.Sizes {
			for _, t := range order {
				e.prog.step(fmt.Sprintf("NATS: round trip, %s, %s (round %d/%d)", t, fmtSize(int64(size)), round+1, e.cfg.Rounds))
				samples, err := e.natsRoundTrip(ctx, t, size)
				if err != nil {
					return fmt.Errorf("NATS: round trip, %s, %d bytes: %w", t, size, err)
				}
				k := cell{Unpinned, t, size}
				m.rtt[k] = append(m.rtt[k], samples...)
			}
		}
	}
	if e.cfg.Parts.Throughput {
		for _, size := range e.cfg.Sizes {
			for _, t := range order {
				e.prog.step(fmt.Sprintf("NATS: one-way, %s, %s (round %d/%d)", t, fmtSize(int64(size)), round+1, e.cfg.Rounds))
				r, err := e.natsOneWay(ctx, t, size)
				if err != nil {
					return fmt.Errorf("NATS: one-way, %s, %d bytes: %w", t, size, err)
				}
				k := cell{Unpinned, t, size}
				m.tput[k] = append(m.tput[k], r)
			}
		}
	}
	return nil
}

// natsRoundTrip runs a ping and a pong process over NATS transport t.
func (e *env) natsRoundTrip(ctx context.Context, t string, size int) ([]int64, error) {
	g := e.group(ctx, e.natsSlice()+60*time.Second)
	defer g.cancel()
	l, err := e.natsConnect(ctx, t, true)
	if err != nil {
		return nil, err
	}
	common := []string{"-size", strconv.Itoa(size)}
	a, b := l.roles(true)
	if err := g.start(b, nil, append(common, l.bArgs...)...); err != nil {
		return nil, err
	}
	if err := g.start(a, nil, append(append(common, l.aArgs...), "-dur", e.natsSlice().String())...); err != nil {
		return nil, err
	}
	res, err := g.wait()
	if err != nil {
		return nil, err
	}
	if err := e.natsRemove(ctx, l); err != nil {
		return nil, err
	}
	return res[1].Samples, nil
}

// natsOneWay runs a sender and a receiver process over NATS transport t.
func (e *env) natsOneWay(ctx context.Context, t string, size int) (rateParts, error) {
	g := e.group(ctx, e.natsSlice()+60*time.Second)
	defer g.cancel()
	l, err := e.natsConnect(ctx, t, false)
	if err != nil {
		return rateParts{}, err
	}
	common := []string{"-size", strconv.Itoa(size)}
	a, b := l.roles(false)
	if err := g.start(b, nil, append(common, l.bArgs...)...); err != nil {
		return rateParts{}, err
	}
	if err := g.start(a, nil, append(append(common, l.aArgs...), "-dur", e.natsSlice().String())...); err != nil {
		return rateParts{}, err
	}
	res, err := g.wait()
	if err != nil {
		return rateParts{}, err
	}
	if err := e.natsRemove(ctx, l); err != nil {
		return rateParts{}, err
	}
	recv := res[0]
	if recv.Count != res[1].Count {
		return rateParts{}, fmt.Errorf("bench: %d messages sent, %d received", res[1].Count, recv.Count)
	}
	if recv.Count < 2 {
		return rateParts{}, fmt.Errorf("bench: only %d messages in %v", recv.Count, e.natsSlice())
	}
	return rateParts{msgs: recv.Count - 1, elapsed: time.Duration(recv.ElapsedNs)}, nil
}
