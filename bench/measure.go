package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// slice is the measuring time of one cell in one round.
func (e *env) slice() time.Duration {
	return e.cfg.CellTime / time.Duration(e.cfg.Rounds)
}

// timeout turns a hang into an error; it is not a performance bound.
func (e *env) timeout() time.Duration {
	return e.slice() + 60*time.Second
}

// rotated returns the transports in an order that changes every round.
func rotated(round int) []string {
	n := len(transports)
	out := make([]string, n)
	for i := range out {
		out[i] = transports[(i+round)%n]
	}
	return out
}

// fuseTransports are the transports served through FUSE: the ones with
// a trivial request.
var fuseTransports = []string{Floor, Msg}

func (e *env) roundTrips(ctx context.Context, m *measurements, round int, pl string) error {
	for _, size := range e.cfg.Sizes {
		for _, t := range rotated(round) {
			e.prog.step(fmt.Sprintf("%s: round trip, %s, %s (round %d/%d)", pl, t, fmtSize(int64(size)), round+1, e.cfg.Rounds))
			samples, err := e.roundTrip(ctx, t, size)
			if err != nil {
				return fmt.Errorf("%s: round trip, %s, %d bytes: %w", pl, t, size, err)
			}
			k := cell{pl, t, size}
			m.rtt[k] = append(m.rtt[k], samples...)
		}
	}
	for i := range fuseTransports {
		t := fuseTransports[(i+round)%len(fuseTransports)]
		e.prog.step(fmt.Sprintf("%s: trivial request, %s (round %d/%d)", pl, t, round+1, e.cfg.Rounds))
		samples, err := e.trivialRequests(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: trivial requests, %s: %w", pl, t, err)
		}
		k := cell{pl, t, 0}
		m.trivial[k] = append(m.trivial[k], samples...)
	}
	return nil
}

// trivialRequests times 1-byte preads of a channel's status file, of
// ipcfs (Msg) or of the floor server: one FUSE request each, answered at
// once.
func (e *env) trivialRequests(ctx context.Context, t string) ([]int64, error) {
	ch, err := e.channel(t)
	if err != nil {
		return nil, err
	}
	g := e.group(ctx, e.timeout())
	if err := g.start(rolePread, nil, "-size", "1", "-in", ch+"/status", "-dur", e.slice().String()); err != nil {
		g.cancel()
		return nil, err
	}
	res, err := g.wait()
	if err != nil {
		return nil, err
	}
	return res[0].Samples, removeChannels(ch)
}

// roundTrip runs a ping and a pong process over transport t.
func (e *env) roundTrip(ctx context.Context, t string, size int) ([]int64, error) {
	g := e.group(ctx, e.timeout())
	defer g.cancel()
	common := []string{"-size", strconv.Itoa(size)}
	l, err := e.connect(g, t, true)
	if err != nil {
		return nil, err
	}
	if err := g.start(rolePong, l.bFiles, append(common, l.bArgs...)...); err != nil {
		return nil, err
	}
	if err := g.start(rolePing, l.aFiles, append(append(common, l.aArgs...), "-dur", e.slice().String())...); err != nil {
		return nil, err
	}
	res, err := g.wait()
	if err != nil {
		return nil, err
	}
	if err := removeChannels(l.channels...); err != nil {
		return nil, err
	}
	return res[1].Samples, nil
}

func (e *env) throughputs(ctx context.Context, m *measurements, round int, pl string) error {
	var cells []cell
	for _, size := range e.cfg.Sizes {
		for _, t := range rotated(round) {
			cells = append(cells, cell{pl, t, size})
		}
	}
	if e.cfg.Parts.Shm && pl == m.doorbell.placement { // the amortization point's doorbell
		cells = append(cells, m.doorbell)
	}
	for _, c := range cells {
		what := "one-way"
		if c == m.doorbell {
			what = "doorbell"
		}
		e.prog.step(fmt.Sprintf("%s: %s, %s, %s (round %d/%d)", pl, what, c.transport, fmtSize(int64(c.size)), round+1, e.cfg.Rounds))
		r, err := e.oneWay(ctx, c.transport, c.size)
		if err != nil {
			return fmt.Errorf("%s: one-way, %s, %d bytes: %w", pl, c.transport, c.size, err)
		}
		m.tput[c] = append(m.tput[c], r)
	}
	return nil
}

// oneWay runs a sender and a receiver process over transport t.
func (e *env) oneWay(ctx context.Context, t string, size int) (rateParts, error) {
	g := e.group(ctx, e.timeout())
	defer g.cancel()
	common := []string{"-size", strconv.Itoa(size)}
	l, err := e.connect(g, t, false)
	if err != nil {
		return rateParts{}, err
	}
	if err := g.start(roleRecv, l.bFiles, append(common, l.bArgs...)...); err != nil {
		return rateParts{}, err
	}
	if err := g.start(roleSend, l.aFiles, append(append(common, l.aArgs...), "-dur", e.slice().String())...); err != nil {
		return rateParts{}, err
	}
	res, err := g.wait()
	if err != nil {
		return rateParts{}, err
	}
	if err := removeChannels(l.channels...); err != nil {
		return rateParts{}, err
	}
	recv := res[0]
	if recv.Count != res[1].Count {
		return rateParts{}, fmt.Errorf("bench: %d messages sent, %d received", res[1].Count, recv.Count)
	}
	if recv.Count < 2 {
		return rateParts{}, fmt.Errorf("bench: only %d messages in %v", recv.Count, e.slice())
	}
	return rateParts{msgs: recv.Count - 1, elapsed: time.Duration(recv.ElapsedNs)}, nil
}

// setupReps is how many regions of each kind one shm-setup client makes.
const setupReps = 3

// shm measures setup, teardown and copy bandwidth of shm against
// /dev/shm, in rounds, each client alternating between the two; and the
// setup of the amortization model's rings.
func (e *env) shm(ctx context.Context, m *measurements) error {
	rings := e.cfg.rings()
	for round := range e.cfg.Rounds {
		e.prog.step(fmt.Sprintf("setup, shm and /dev/shm, %s (round %d/%d)", fmtSize(e.cfg.ShmRegion), round+1, e.cfg.Rounds))
		if err := e.shmSetup(ctx, m, e.cfg.ShmRegion, true); err != nil {
			return err
		}
		e.prog.step(fmt.Sprintf("copy, shm and /dev/shm, %s (round %d/%d)", fmtSize(e.cfg.ShmRegion), round+1, e.cfg.Rounds))
		g := e.group(ctx, e.timeout())
		args := []string{"-dir", e.mnt, "-devshm-dir", e.shmDir, "-region", strconv.FormatInt(e.cfg.ShmRegion, 10), "-dur", e.slice().String()}
		if err := g.start(roleShmCopy, nil, args...); err != nil {
			g.cancel()
			return err
		}
		res, err := g.wait()
		if err != nil {
			return fmt.Errorf("shm copy: %w", err)
		}
		m.copyIn[false] = append(m.copyIn[false], res[0].CopyIn)
		m.copyOut[false] = append(m.copyOut[false], res[0].CopyOut)
		m.copyIn[true] = append(m.copyIn[true], res[0].DevCopyIn)
		m.copyOut[true] = append(m.copyOut[true], res[0].DevCopyOut)
		for _, region := range rings {
			e.prog.step(fmt.Sprintf("setup, shm, %s ring (round %d/%d)", fmtSize(region), round+1, e.cfg.Rounds))
			if err := e.shmSetup(ctx, m, region, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// shmSetup runs one shm-setup client: regions of the given size in the
// mount, and alternately in /dev/shm if withDevShm.
func (e *env) shmSetup(ctx context.Context, m *measurements, region int64, withDevShm bool) error {
	g := e.group(ctx, e.timeout())
	args := []string{"-dir", e.mnt, "-region", strconv.FormatInt(region, 10), "-reps", strconv.Itoa(setupReps)}
	if withDevShm {
		args = append(args, "-devshm-dir", e.shmDir)
	}
	if err := g.start(roleShmSetup, nil, args...); err != nil {
		g.cancel()
		return err
	}
	res, err := g.wait()
	if err != nil {
		return fmt.Errorf("shm setup: %w", err)
	}
	k := setupKey{false, region}
	m.setup[k] = append(m.setup[k], res[0].Setups...)
	k = setupKey{true, region}
	m.setup[k] = append(m.setup[k], res[0].DevSetups...)
	return nil
}

// ringRegion is the size of a region holding ringSlots messages of size
// bytes, in whole pages.
func ringRegion(size int) int64 {
	ps := int64(os.Getpagesize())
	return (int64(size)*ringSlots + ps - 1) / ps * ps
}

// steps counts the progress steps of a run.
func (c Config) steps() int {
	n := 0
	perRound := len(c.Sizes) * len(transports) * len(c.Placements)
	if c.Parts.RoundTrip {
		n += (perRound + len(fuseTransports)*len(c.Placements)) * c.Rounds
	}
	if c.Parts.Throughput {
		n += perRound * c.Rounds
	}
	if c.NATS {
		parts := 0
		if c.Parts.RoundTrip {
			parts++
		}
		if c.Parts.Throughput {
			parts++
		}
		n += parts * len(c.Sizes) * len(natsTransports) * c.Rounds
	}
	if c.Parts.Shm {
		n += c.Rounds * (2 + len(c.rings())) // setup and copy; rings
		if c.Parts.Throughput {
			n += c.Rounds // the doorbell
		}
	}
	return n
}

// rings are the region sizes of the amortization model whose setup needs
// measuring (none without the throughput it also needs).
func (c Config) rings() []int64 {
	var rings []int64
	if !c.Parts.Throughput {
		return nil
	}
	for _, size := range c.Sizes {
		if r := ringRegion(size); r != c.ShmRegion && !slices.Contains(rings, r) {
			rings = append(rings, r)
		}
	}
	return rings
}
