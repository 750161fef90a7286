package tests

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the uid and gid other users' tests run as.
const nobody = "65534"

// permTests is the conformance map of permissions: root mounts, and uid
// 65534 (through setpriv) tries to get in. Each test gets its own daemon on
// a mountpoint that every user can reach.
var permTests = map[string]struct {
	flags []string
	test  func(t *testing.T, u *userMount)
}{
	"without --allow-other others cannot enter": {nil, testNoAllowOther},
	"mode bits decide":                          {[]string{"--allow-other"}, testModeBits},
	"files follow the directory's mode":         {[]string{"--allow-other"}, testFilesFollow},
	"the root is 1777 and sticky":               {[]string{"--allow-other"}, testStickyRoot},
}

func TestPerm(t *testing.T) {
	for name, c := range permTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c.test(t, mountForUsers(t, c.flags...))
		})
	}
}

// userMount is a mount that other users can reach, with a copy of the
// probe they can run.
type userMount struct {
	*daemon
	probe string // the probe binary, executable by anyone
}

// mountForUsers mounts ipcfs under a fresh directory of mode 0755 (t.TempDir
// is 0700: other users could not even reach the mountpoint) and copies the
// probe there.
func mountForUsers(t *testing.T, flags ...string) *userMount {
	t.Helper()
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot run clients as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux): cannot run clients as another user")
	}
	base, err := os.MkdirTemp("", "ipcfs-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(base, "soakclient")
	copyFile(t, soakclient(t), probe)
	d := startDaemon(t, filepath.Join(base, "ipc"), flags...)
	t.Cleanup(d.stop)
	return &userMount{daemon: d, probe: probe}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// root starts a probe running as root (umask 0, so modes are as given).
func (u *userMount) root(t *testing.T) *prober {
	p := startProbeCmd(t, u.probe, []string{u.probe, "probe"})
	p.want("umask 0", "ok")
	return p
}

// other starts a probe running as uid and gid 65534 with no other groups.
func (u *userMount) other(t *testing.T) *prober {
	p := startProbeCmd(t, u.probe, []string{"setpriv", "--reuid", nobody, "--regid", nobody,
		"--clear-groups", u.probe, "probe"})
	p.want("umask 0", "ok")
	return p
}

func (u *userMount) at(name string) string { return q(filepath.Join(u.mnt, name)) }

func testNoAllowOther(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("mkdir "+u.at("open")+" 0777", "ok")
	if got := o.do("stat " + q(filepath.Dir(u.mnt))); !strings.HasPrefix(got, "ok type=dir mode=0755 ") {
		t.Fatalf("65534 cannot reach the mountpoint's directory: %s", got)
	}
	o.want("stat "+u.at(""), "EACCES")
	o.want("ls "+u.at(""), "EACCES")
	o.want("stat "+u.at("open"), "EACCES")
	o.want("open m "+u.at("open/msg")+" w", "EACCES")
	o.want("mkdir "+u.at("mine")+" 0700", "EACCES")
	r.want("ls "+u.at(""), `ok "open"`)
}

func testModeBits(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("stat "+u.at(""), "ok type=dir mode=1777 uid=0 gid=0 size=0")
	r.want("mkdir "+u.at("private")+" 0700", "ok")
	r.want("mkdir "+u.at("public")+" 0777", "ok")
	o.want("ls "+u.at(""), `ok "private" "public"`)

	// 0700, root's: closed.
	o.want("ls "+u.at("private"), "EACCES")
	o.want("stat "+u.at("private/msg"), "EACCES")
	o.want("open m "+u.at("private/msg")+" r", "EACCES")
	o.want("open m "+u.at("private/ctl")+" w", "EACCES")
	o.want("chmod "+u.at("private")+" 0777", "EPERM")

	// 0777: open.
	o.want("ls "+u.at("public"), `ok "ctl" "msg" "shm" "status"`)
	o.wantNoSize("stat "+u.at("public/msg"), "ok type=file mode=0666 uid=0 gid=0")
	o.wantNoSize("stat "+u.at("public/status"), "ok type=file mode=0444 uid=0 gid=0")
	o.want("open w "+u.at("public/msg")+" w", "ok")
	o.want(`write w "from nobody"`, "ok 11")
	r.want("open r "+u.at("public/msg")+" r", "ok")
	r.want("read r 100", `ok "from nobody"`)
	// Only the owner (and root) may write ctl and resize shm (limits_test.go).
	o.want("stat "+u.at("public/ctl"), "ok type=file mode=0644 uid=0 gid=0 size=50")
	o.want("open c "+u.at("public/ctl")+" w", "EACCES")
	o.want("open c "+u.at("public/ctl")+" r", "ok")
	o.want("open s "+u.at("public/status")+" w", "EACCES")
	o.want("truncate "+u.at("public/shm")+" 4096", "EPERM")
	o.want("rmdir "+u.at("public"), "EPERM") // sticky root: not its channel

	// chown to 65534: its own now.
	r.want("chown "+u.at("private")+" "+nobody+" "+nobody, "ok")
	o.want("stat "+u.at("private"), "ok type=dir mode=0700 uid=65534 gid=65534 size=0")
	o.wantNoSize("stat "+u.at("private/msg"), "ok type=file mode=0600 uid=65534 gid=65534")
	o.wantNoSize("stat "+u.at("private/status"), "ok type=file mode=0400 uid=65534 gid=65534")
	o.want("open m "+u.at("private/msg")+" rw", "ok")
	o.want(`write m "mine"`, "ok 4")
	o.want("read m 100", `ok "mine"`)
	o.want("chmod "+u.at("private")+" 0750", "ok") // the owner may
	r.wantNoSize("stat "+u.at("private/msg"), "ok type=file mode=0640 uid=65534 gid=65534")
	o.want("rename "+u.at("private")+" "+u.at("renamed"), "ok")
	o.want("rmdir "+u.at("renamed"), "ok")
}

func testFilesFollow(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("mkdir "+u.at("g")+" 0640", "ok")
	for _, f := range []struct{ name, mode string }{{"msg", "0640"}, {"shm", "0640"}, {"ctl", "0640"}, {"status", "0440"}} {
		r.wantNoSize("stat "+u.at("g/"+f.name), "ok type=file mode="+f.mode+" uid=0 gid=0")
	}
	o.want("stat "+u.at("g/msg"), "EACCES") // no x for others on the directory

	// Group nogroup, 0750: 65534 may read msg and status, not write.
	r.want("chown "+u.at("g")+" 0 "+nobody, "ok")
	r.want("chmod "+u.at("g")+" 0750", "ok")
	o.wantNoSize("stat "+u.at("g/msg"), "ok type=file mode=0640 uid=0 gid=65534")
	o.wantNoSize("stat "+u.at("g/status"), "ok type=file mode=0440 uid=0 gid=65534")
	r.want("open w "+u.at("g/msg")+" w", "ok")
	r.want(`write w "for the group"`, "ok 13")
	o.want("open r "+u.at("g/msg")+" r", "ok")
	o.want("read r 100", `ok "for the group"`)
	o.want("open w "+u.at("g/msg")+" w", "EACCES")
	o.want("open c "+u.at("g/ctl")+" w", "EACCES")
	o.want("open h "+u.at("g/shm")+" rw", "EACCES")
	o.want("open s "+u.at("g/status")+" r", "ok")
	o.want("truncate "+u.at("g/shm")+" 4096", "EACCES")
	o.want("mkdir "+u.at("g/sub")+" 0777", "EACCES") // no w on the directory: the kernel refuses first

	// 0770: now it may write; status stays read-only. The new modes show
	// at once (the daemon invalidates the files' cached attributes).
	r.want("chmod "+u.at("g")+" 0770", "ok")
	o.wantNoSize("stat "+u.at("g/msg"), "ok type=file mode=0660 uid=0 gid=65534")
	o.wantNoSize("stat "+u.at("g/status"), "ok type=file mode=0440 uid=0 gid=65534")
	o.want("open w "+u.at("g/msg")+" w", "ok")
	o.want(`write w "from the group"`, "ok 14")
	r.want("open r "+u.at("g/msg")+" r", "ok")
	r.want("read r 100", `ok "from the group"`)
	o.want("open c "+u.at("g/ctl")+" w", "EACCES") // ctl: the owner's alone
	o.want("open s "+u.at("g/status")+" w", "EACCES")

	// And back: handles opened before keep working (as on any file); new opens fail.
	r.want("chmod "+u.at("g")+" 0700", "ok")
	o.want("open w2 "+u.at("g/msg")+" w", "EACCES")
	o.want(`write w "still open"`, "ok 10")

	// mkdir's mode is after the caller's umask.
	r.want("umask 022", "ok")
	r.want("mkdir "+u.at("masked")+" 0777", "ok")
	r.wantNoSize("stat "+u.at("masked/msg"), "ok type=file mode=0644 uid=0 gid=0")
}

func testStickyRoot(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("mkdir "+u.at("roots")+" 0777", "ok")
	o.want("mkdir "+u.at("mine")+" 0700", "ok")
	o.want("stat "+u.at("mine"), "ok type=dir mode=0700 uid=65534 gid=65534 size=0")
	o.wantNoSize("stat "+u.at("mine/ctl"), "ok type=file mode=0600 uid=65534 gid=65534")
	r.want("ls "+u.at(""), `ok "mine" "roots"`)
	// Others' channels cannot be removed or renamed, even when open to all.
	o.want("rmdir "+u.at("roots"), "EPERM")
	o.want("rename "+u.at("roots")+" "+u.at("taken"), "EPERM")
	o.want("rename "+u.at("mine")+" "+u.at("roots"), "EPERM")
	r.want("ls "+u.at(""), `ok "mine" "roots"`)
	// Its own, yes; and root may remove anyone's.
	o.want("rename "+u.at("mine")+" "+u.at("mine2"), "ok")
	o.want("mkdir "+u.at("mine3")+" 0700", "ok")
	r.want("rmdir "+u.at("mine3"), "ok")
	o.want("rmdir "+u.at("mine2"), "ok")
	r.want("ls "+u.at(""), `ok "roots"`)
	// The root itself cannot be chmodded by others.
	o.want("chmod "+u.at("")+" 0777", "EPERM")
}

// wantNoSize is want for stat lines of msg, ctl and status, whose sizes
// are not what these tests are about (msg's is huge, ctl's and status's
// their content's length).
func (p *prober) wantNoSize(cmd, want string) {
	p.t.Helper()
	got := p.do(cmd)
	if i := strings.LastIndex(got, " size="); i >= 0 {
		got = got[:i]
	}
	if got != want {
		p.t.Errorf("%s: got %s, want %s (any size)", cmd, got, want)
	}
}
