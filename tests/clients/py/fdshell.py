#!/usr/bin/env python3
"""fdshell: the Python client of the ipcfs integration tests.

It uses a channel's files as a Python program does, with the os, fcntl,
select and signal modules, one step at a time: the test writes one command
a line on stdin and reads back one JSON object a line on stdout, so it can
look at the channel's status, write ctl, or send a signal between steps.

Commands (DATA is hex; NAME names an open file of this process):

    open NAME PATH r|w|rw [nonblock]   os.open                     -> {"fd"}
    close NAME                         os.close
    write NAME DATA                    one os.write                -> {"n"}
    writefile NAME FILE                one os.write of FILE's bytes -> {"n"}
    read NAME SIZE                     one os.read                 -> {"data"}
    pread NAME SIZE OFFSET             one os.pread                -> {"data"}
    lseek NAME OFFSET set|cur|end      os.lseek                    -> {"offset"}
    nonblock NAME on|off               fcntl F_SETFL +/- O_NONBLOCK
    poll NAME in|out|inout TIMEOUT_MS  select.poll; TIMEOUT_MS -1 waits
                                       forever                     -> {"revents"}
    select NAME r|w TIMEOUT_S          select.select; -1 waits     -> {"ready"}
    handle SIGNAME restart             a handler that reports the signal, with
                                       signal.siginterrupt(sig, False)
                                       (SA_RESTART)

Every reply carries "cmd". A failed call replies {"errno": "EAGAIN",
"exception": "BlockingIOError"}; a KeyboardInterrupt (SIGINT) during a
command replies {"exception": "KeyboardInterrupt"} and the shell goes on.
A handled signal prints {"event": "signal", "signal": "SIGUSR1"} when the
handler runs. End of stdin ends the program with status 0.
"""

import errno
import fcntl
import json
import os
import select
import signal
import sys

files = {}  # NAME -> fd


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def on_signal(signum, frame):
    emit({"event": "signal", "signal": signal.Signals(signum).name})


MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
WHENCE = {"set": os.SEEK_SET, "cur": os.SEEK_CUR, "end": os.SEEK_END}
EVENTS = {"in": select.POLLIN, "out": select.POLLOUT, "inout": select.POLLIN | select.POLLOUT}
POLLBITS = [(select.POLLIN, "POLLIN"), (select.POLLOUT, "POLLOUT"), (select.POLLERR, "POLLERR"),
            (select.POLLHUP, "POLLHUP"), (select.POLLNVAL, "POLLNVAL"), (select.POLLPRI, "POLLPRI")]


def run(cmd, args):
    if cmd == "open":
        name, path, mode = args[:3]
        flags = MODES[mode]
        if "nonblock" in args[3:]:
            flags |= os.O_NONBLOCK
        files[name] = os.open(path, flags)
        return {"fd": files[name]}
    if cmd == "close":
        os.close(files.pop(args[0]))
        return {}
    if cmd == "write":
        return {"n": os.write(files[args[0]], bytes.fromhex(args[1]))}
    if cmd == "writefile":
        with open(args[1], "rb") as f:
            data = f.read()
        return {"n": os.write(files[args[0]], data)}
    if cmd == "read":
        return {"data": os.read(files[args[0]], int(args[1])).hex()}
    if cmd == "pread":
        return {"data": os.pread(files[args[0]], int(args[1]), int(args[2])).hex()}
    if cmd == "lseek":
        return {"offset": os.lseek(files[args[0]], int(args[1]), WHENCE[args[2]])}
    if cmd == "nonblock":
        fd = files[args[0]]
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        if args[1] == "on":
            flags |= os.O_NONBLOCK
        else:
            flags &= ~os.O_NONBLOCK
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        return {"nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)}
    if cmd == "poll":
        p = select.poll()
        p.register(files[args[0]], EVENTS[args[1]])
        timeout = int(args[2])
        revents = 0
        for _, ev in p.poll(None if timeout < 0 else timeout):
            revents |= ev
        return {"revents": [n for bit, n in POLLBITS if revents & bit]}
    if cmd == "select":
        fd = files[args[0]]
        timeout = float(args[2])
        rl, wl = ([fd], []) if args[1] == "r" else ([], [fd])
        r, w, _ = select.select(rl, wl, [], None if timeout < 0 else timeout)
        return {"ready": bool(r or w)}
    if cmd == "handle":
        sig = signal.Signals[args[0]]
        signal.signal(sig, on_signal)
        signal.siginterrupt(sig, args[1] != "restart")
        return {}
    raise ValueError("unknown command %r" % cmd)


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        words = line.split()
        if not words:
            continue
        reply = {"cmd": words[0]}
        try:
            reply.update(run(words[0], words[1:]))
        except OSError as e:
            reply.update(errno=errno.errorcode.get(e.errno, str(e.errno)), exception=type(e).__name__)
        except KeyboardInterrupt:
            reply.update(exception="KeyboardInterrupt")
        emit(reply)


if __name__ == "__main__":
    sys.exit(main())
