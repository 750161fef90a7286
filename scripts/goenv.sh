# goenv.sh: sourced by the other scripts; puts Go on PATH where the machine
# has it but the shell does not.
if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin "$HOME/go/bin" /usr/lib/go/bin; do
		[ -x "$d/go" ] && PATH="$d:$PATH" && break
	done
	export PATH
fi
command -v go >/dev/null 2>&1 || { echo "Go is not installed (need go 1.26 or newer)" >&2; exit 1; }
