#!/bin/sh
# install.sh: build ipcfs and install it, its systemd unit and its man
# pages. Run as root; safe to run again (it overwrites with the same files).
#
#   scripts/install.sh                      # /usr/local/bin/ipcfs, /usr/local/lib/systemd/system/ipcfs@.service,
#                                           # /usr/local/share/man/man1/ipcfs.1, man7/ipcfs.7
#   PREFIX=/usr scripts/install.sh          # /usr/bin, /usr/lib/systemd/system, /usr/share/man
#   DESTDIR=/tmp/pkg scripts/install.sh     # stage under /tmp/pkg (packaging); root not needed
#   BIN=bin/ipcfs scripts/install.sh        # install this binary instead of building one
set -eu
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
bindir=$PREFIX/bin
unitdir=$PREFIX/lib/systemd/system
mandir=$PREFIX/share/man

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
	echo "install: run as root (or set DESTDIR to stage the files)" >&2
	exit 1
fi
if [ -z "${BIN:-}" ]; then
	. scripts/goenv.sh
	go build -trimpath -o bin/ipcfs ./cmd/ipcfs
	BIN=bin/ipcfs
fi

install -d "$DESTDIR$bindir" "$DESTDIR$unitdir" "$DESTDIR$mandir/man1" "$DESTDIR$mandir/man7"
install -m 0755 "$BIN" "$DESTDIR$bindir/ipcfs"
# The unit names the binary where it is installed.
sed "s|^ExecStart=/usr/local/bin/ipcfs |ExecStart=$bindir/ipcfs |" dist/systemd/ipcfs@.service >"$DESTDIR$unitdir/ipcfs@.service.tmp"
chmod 0644 "$DESTDIR$unitdir/ipcfs@.service.tmp"
mv -f "$DESTDIR$unitdir/ipcfs@.service.tmp" "$DESTDIR$unitdir/ipcfs@.service"
install -m 0644 docs/man/ipcfs.1 "$DESTDIR$mandir/man1/ipcfs.1"
install -m 0644 docs/man/ipcfs.7 "$DESTDIR$mandir/man7/ipcfs.7"
for f in "$bindir/ipcfs" "$unitdir/ipcfs@.service" "$mandir/man1/ipcfs.1" "$mandir/man7/ipcfs.7"; do
	echo "install: $DESTDIR$f" >&2
done

if [ -z "$DESTDIR" ]; then
	# A running systemd rereads its units; mandb updates whatis/apropos.
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl daemon-reload
	fi
	if command -v mandb >/dev/null; then
		mandb -q "$mandir" 2>/dev/null || true
	fi
	case ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" in
	*":$bindir:"*) ;;
	*) echo "install: note: mount(8) runs ipcfs with PATH cleared; link $bindir/ipcfs into /usr/local/bin for fstab mounts" >&2 ;;
	esac
fi
