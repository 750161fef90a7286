package main

// The soak's writers and readers.
//
//	soak-write PATH ID DURATION SEED raw|file
//
// writes messages of random sizes (1 B to 124 KiB) to PATH for DURATION,
// then prints one JSON line: {"id":ID,"full":N,"tiny":{"HEX":COUNT,…},…}.
// Full messages (22 bytes or more) carry a header: "ipcf", the writer ID
// (uint16), a sequence number (uint64, 0…N-1), the total length (uint32)
// and a CRC-32 of everything else. A tiny message (1–21 bytes) is its own
// length in its first byte, the writer ID in the second, then a fixed
// pattern: its content is known, so readers count them by content.
//
//	soak-read PATH SEED raw|file
//
// reads until end of file, assembling each message from reads of random
// sizes — shorter than the rest of the message, exactly it, or longer —
// and checks that each read returns min(buffer, rest of the message) bytes
// (never bytes of two messages), that each message is intact, and that
// each writer's messages arrive in order. Now and then it pauses, so that
// the queue fills. It prints "f ID SEQ" per full message and "t HEX" per
// tiny one, then "done N EAGAINS".
//
// Mode raw uses blocking read(2)/write(2) and randomly turns O_NONBLOCK on
// and off with fcntl, waiting in poll(2) after EAGAIN. Mode file uses an
// os.File, which Go puts in non-blocking mode under its epoll.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const (
	headerLen = 22
	maxMsg    = 124 << 10 // the largest write that is always one message
	maxTiny   = headerLen - 1
)

// endpoint is one open msg file, raw or through os.File.
type endpoint struct {
	f      *os.File // mode file
	fd     int      // mode raw
	nb     bool     // O_NONBLOCK is on (raw)
	rnd    *rand.Rand
	eagain int
}

func openEndpoint(path, mode string, flags int, rnd *rand.Rand) (*endpoint, error) {
	e := &endpoint{rnd: rnd, fd: -1}
	switch mode {
	case "file":
		f, err := os.OpenFile(path, flags, 0)
		if err != nil {
			return nil, err
		}
		e.f = f
	case "raw":
		err := retry(func() (err error) { e.fd, err = unix.Open(path, flags|unix.O_CLOEXEC, 0); return err })
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("mode %q: want raw or file", mode)
	}
	return e, nil
}

// toggle randomly turns O_NONBLOCK on or off (raw mode).
func (e *endpoint) toggle() error {
	if e.f != nil || e.rnd.IntN(8) != 0 {
		return nil
	}
	e.nb = !e.nb
	return unix.SetNonblock(e.fd, e.nb)
}

// wait polls for events after EAGAIN.
func (e *endpoint) wait(events int16) error {
	e.eagain++
	fds := []unix.PollFd{{Fd: int32(e.fd), Events: events}}
	return retry(func() error { _, err := unix.Poll(fds, -1); return err })
}

// read is one read(2): n > 0 bytes, or 0 at end of file.
func (e *endpoint) read(buf []byte) (int, error) {
	if e.f != nil {
		n, err := e.f.Read(buf)
		if err == io.EOF {
			return 0, nil
		}
		return n, err
	}
	if err := e.toggle(); err != nil {
		return 0, err
	}
	for {
		n, err := unix.Read(e.fd, buf)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN && e.nb:
			if err := e.wait(unix.POLLIN); err != nil {
				return 0, fmt.Errorf("poll: %w", err)
			}
		case err != nil:
			return 0, err
		default:
			return n, nil
		}
	}
}

// write is one write(2) of the whole message.
func (e *endpoint) write(msg []byte) error {
	if e.f != nil {
		_, err := e.f.Write(msg)
		return err
	}
	if err := e.toggle(); err != nil {
		return err
	}
	for {
		n, err := unix.Write(e.fd, msg)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN && e.nb:
			if err := e.wait(unix.POLLOUT); err != nil {
				return fmt.Errorf("poll: %w", err)
			}
		case err != nil:
			return err
		case n != len(msg):
			return fmt.Errorf("short write: %d of %d bytes", n, len(msg))
		default:
			return nil
		}
	}
}

// tiny returns the content of writer id's tiny message of n bytes.
func tiny(id, n int) []byte {
	m := make([]byte, n)
	m[0] = byte(n)
	for i := 1; i < n; i++ {
		m[i] = byte(i*31 + n)
	}
	if n > 1 {
		m[1] = byte(id)
	}
	return m
}

func checksum(msg []byte) uint32 {
	h := crc32.NewIEEE()
	h.Write(msg[:18])
	h.Write(msg[headerLen:])
	return h.Sum32()
}

func soakWrite(args []string) error {
	path, id, mode := args[0], atoi(args[1]), args[4]
	d, err := time.ParseDuration(args[2])
	if err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(uint64(atoi(args[3])), uint64(id)))
	e, err := openEndpoint(path, mode, os.O_WRONLY, rnd)
	if err != nil {
		return err
	}
	pool := make([]byte, 2*maxMsg)
	for i := range pool {
		pool[i] = byte(rnd.Uint32())
	}
	var (
		full  uint64
		tinys = map[string]int{}
		buf   = make([]byte, maxMsg)
	)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		var n int
		switch r := rnd.IntN(10); {
		case r == 0:
			n = 1 + rnd.IntN(maxTiny)
		case r < 4:
			n = headerLen + rnd.IntN(4096-headerLen+1)
		default:
			n = 4097 + rnd.IntN(maxMsg-4096)
		}
		var msg []byte
		if n <= maxTiny {
			msg = tiny(id, n)
		} else {
			msg = buf[:n]
			off := rnd.IntN(maxMsg)
			copy(msg[headerLen:], pool[off:off+n-headerLen])
			copy(msg, "ipcf")
			binary.LittleEndian.PutUint16(msg[4:], uint16(id))
			binary.LittleEndian.PutUint64(msg[6:], full)
			binary.LittleEndian.PutUint32(msg[14:], uint32(n))
			binary.LittleEndian.PutUint32(msg[18:], checksum(msg))
		}
		if err := e.write(msg); err != nil {
			return fmt.Errorf("writer %d, message %d (%d bytes): %w", id, full, n, err)
		}
		if n <= maxTiny {
			tinys[hex.EncodeToString(msg)]++
		} else {
			full++
		}
	}
	if e.f != nil {
		e.f.Close()
	} else {
		unix.Close(e.fd)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"id": id, "full": full, "tiny": tinys, "eagain": e.eagain,
	})
}

func soakRead(args []string) error {
	path, mode := args[0], args[2]
	rnd := rand.New(rand.NewPCG(uint64(atoi(args[1])), 7))
	e, err := openEndpoint(path, mode, os.O_RDONLY, rnd)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	buf := make([]byte, 256<<10)
	msg := make([]byte, 0, maxMsg)
	last := map[uint16]uint64{}
	count := 0
	for {
		// How much to ask for: before the length is known, anything; after,
		// less than the rest, exactly the rest, or more.
		declared := -1
		if len(msg) > 0 && msg[0] != 'i' {
			declared = int(msg[0])
		} else if len(msg) >= 18 {
			declared = int(binary.LittleEndian.Uint32(msg[14:]))
		}
		size := 1 + rnd.IntN(len(buf))
		if rnd.IntN(2) == 0 {
			size = 1 + rnd.IntN(64)
		}
		rest := declared - len(msg)
		if declared >= 0 {
			switch rnd.IntN(3) {
			case 0:
				size = 1 + rnd.IntN(rest)
			case 1:
				size = rest
			default:
				size = rest + 1 + rnd.IntN(len(buf)-rest)
			}
		}
		n, err := e.read(buf[:size])
		if err != nil {
			return fmt.Errorf("read(%d) after %d messages, %d bytes into one: %w", size, count, len(msg), err)
		}
		if n == 0 {
			if len(msg) > 0 {
				return fmt.Errorf("end of file %d bytes into a message (%x…)", len(msg), msg[:min(len(msg), headerLen)])
			}
			fmt.Fprintln(out, "done", count, e.eagain)
			return nil
		}
		if declared >= 0 && n != min(size, rest) {
			return fmt.Errorf("read(%d) with %d bytes left in the message returned %d (want min of the two)", size, rest, n)
		}
		msg = append(msg, buf[:n]...)
		// Check what is known of the message so far.
		if msg[0] != 'i' {
			if msg[0] < 1 || int(msg[0]) > maxTiny || len(msg) > int(msg[0]) {
				return fmt.Errorf("bad tiny message %x", msg)
			}
			if n < size && len(msg) != int(msg[0]) {
				return fmt.Errorf("read(%d) returned %d bytes, but the tiny message %x is not complete", size, n, msg)
			}
			if len(msg) < int(msg[0]) {
				continue
			}
			if len(msg) > 1 {
				if want := tiny(int(msg[1]), len(msg)); string(msg) != string(want) {
					return fmt.Errorf("tiny message %x, want %x", msg, want)
				}
			}
			fmt.Fprintln(out, "t", hex.EncodeToString(msg))
		} else {
			if len(msg) < 18 {
				if n < size || string(msg[:min(4, len(msg))]) != "ipcf"[:min(4, len(msg))] {
					return fmt.Errorf("bad message start %x (read(%d) returned %d)", msg, size, n)
				}
				continue
			}
			l := int(binary.LittleEndian.Uint32(msg[14:]))
			if string(msg[:4]) != "ipcf" || l < headerLen || l > maxMsg || len(msg) > l {
				return fmt.Errorf("bad message header %x with %d bytes read", msg[:18], len(msg))
			}
			if n < size && len(msg) != l {
				return fmt.Errorf("read(%d) returned %d bytes, but the message is %d bytes and %d are read", size, n, l, len(msg))
			}
			if len(msg) < l {
				continue
			}
			id := binary.LittleEndian.Uint16(msg[4:])
			seq := binary.LittleEndian.Uint64(msg[6:])
			if got, want := binary.LittleEndian.Uint32(msg[18:]), checksum(msg); got != want {
				return fmt.Errorf("message %d-%d (%d bytes): checksum %08x, want %08x", id, seq, l, got, want)
			}
			if p, ok := last[id]; ok && seq <= p {
				return fmt.Errorf("message %d-%d after %d-%d: out of order", id, seq, id, p)
			}
			last[id] = seq
			fmt.Fprintln(out, "f", id, strconv.FormatUint(seq, 10))
		}
		count++
		msg = msg[:0]
		if rnd.IntN(64) == 0 {
			// Fall behind now and then, so that the queue fills up and
			// the writers block.
			time.Sleep(time.Duration(rnd.IntN(50)) * time.Millisecond)
		}
	}
}
