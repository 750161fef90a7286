package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// containerTests is the conformance map of containers: a process in a
// mount namespace of its own (unshare --mount, as a container runtime
// makes) reaches ipcfs through a bind mount and talks to processes outside.
var containerTests = map[string]func(t *testing.T){
	"bind mount in a private namespace":          testContainerBind,
	"another uid in the container":               testContainerOtherUID,
	"daemon restarts reach an rslave bind mount": testContainerRestart,
}

func TestContainer(t *testing.T) {
	for name, test := range containerTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if os.Geteuid() != 0 {
				t.Skip("not root: cannot make mount namespaces and bind mounts")
			}
			if _, err := exec.LookPath("unshare"); err != nil {
				t.Skip("no unshare (util-linux)")
			}
			test(t)
		})
	}
}

// containerScript binds $1 on $2 in a new private mount namespace and
// runs the rest of its arguments there.
const containerScript = `src=$1 dst=$2; shift 2; mount --bind "$src" "$dst" && exec "$@"`

// startContainer starts a probe in a new mount namespace whose view of
// the ipcfs mount mnt is a private bind mount on dir; prefix (setpriv …)
// runs the probe.
func startContainer(t *testing.T, bin, mnt, dir string, prefix ...string) *prober {
	t.Helper()
	argv := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", containerScript, "sh", mnt, dir}
	argv = append(append(argv, prefix...), bin, "probe")
	return startProbeCmd(t, bin, argv)
}

// exchange passes a message each way between a process outside (the Go
// client, on the host's path ch) and the probe c (on its own path cch).
func exchange(t *testing.T, c *prober, ch, cch, tag string) {
	t.Helper()
	c.want("open r "+q(filepath.Join(cch, "msg"))+" r", "ok")
	c.send("read r 100")
	waitStatus(t, ch, "blocked_readers", "1")
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "host to "+tag)
	if got := c.result(); got != "ok "+q("host to "+tag) {
		t.Errorf("in the container: %s, want the host's message", got)
	}
	c.want("open w "+q(filepath.Join(cch, "msg"))+" w", "ok")
	c.want("write w "+q(tag+" to host"), "ok "+strconv.Itoa(len(tag+" to host")))
	if out := run(t, bins.goclient, "read", filepath.Join(ch, "msg"), "1"); out != q(tag+" to host")+"\n" {
		t.Errorf("on the host: %q, want the container's message", out)
	}
	c.want("close r", "ok")
	c.want("close w", "ok")
}

func testContainerBind(t *testing.T) {
	d := mount(t)
	ch := d.channel("shared")
	dir := filepath.Join(t.TempDir(), "ctr")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startContainer(t, soakclient(t), d.mnt, dir)
	c.want("ls "+q(dir), `ok "shared"`)
	exchange(t, c, ch, filepath.Join(dir, "shared"), "container")
	// A channel made inside is seen outside, and the other way round.
	c.want("mkdir "+q(filepath.Join(dir, "inside"))+" 0755", "ok")
	d.channel("outside")
	c.want("ls "+q(dir), `ok "inside" "outside" "shared"`)
	exchange(t, c, filepath.Join(d.mnt, "inside"), filepath.Join(dir, "inside"), "made inside")
	// The bind mount is the container's alone.
	if isMounted(t, dir) {
		t.Errorf("the container's bind mount on %s shows outside it", dir)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("outside the container %s holds %v (%v), want nothing", dir, ents, err)
	}
}

func testContainerOtherUID(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	u := mountForUsers(t, "--allow-other")
	r := u.root(t)
	r.want("mkdir "+u.at("pub")+" 0777", "ok")
	r.want("mkdir "+u.at("priv")+" 0700", "ok")
	dir := filepath.Join(filepath.Dir(u.mnt), "ctr")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startContainer(t, u.probe, u.mnt, dir, "setpriv", "--reuid", nobody, "--regid", nobody, "--clear-groups")
	c.want("ls "+q(dir), `ok "priv" "pub"`)
	exchange(t, c, filepath.Join(u.mnt, "pub"), filepath.Join(dir, "pub"), "uid 65534")
	c.want("open m "+q(filepath.Join(dir, "priv", "msg"))+" w", "EACCES")
	c.want("mkdir "+q(filepath.Join(dir, "its own"))+" 0700", "ok")
	r.want("stat "+u.at("its own"), "ok type=dir mode=0700 uid=65534 gid=65534 size=0")
}

// testContainerRestart is `docker run -v /ipc:/ipc:rslave`: the container
// binds a shared host directory with slave propagation before ipcfs is
// mounted in it, and sees each new daemon's mount: after a clean restart
// and after a crash.
func testContainerRestart(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	tmp := t.TempDir()
	host, dir := filepath.Join(tmp, "host"), filepath.Join(tmp, "ctr")
	mnt := filepath.Join(host, "ipc")
	for _, p := range []string{host, mnt, dir} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The host directory becomes a shared mount (as /ipc would be made
	// rshared on a host); removed when the test ends.
	for _, args := range [][]string{{"--bind", host, host}, {"--make-private", host}, {"--make-shared", host}} {
		if out, errOut, err := runErr("mount", args...); err != nil {
			runErr("umount", "-l", host)
			t.Skipf("mount %q: %v: %s%s (cannot make a shared mount here)", args, err, out, errOut)
		}
	}
	t.Cleanup(func() {
		if out, errOut, err := runErr("umount", "-l", host); err != nil {
			t.Errorf("umount %s: %v: %s%s", host, err, out, errOut)
		}
	})
	// The container: everything slave to the host, the host directory bound in.
	bin := soakclient(t)
	c := startProbeCmd(t, bin, []string{"unshare", "--mount", "--propagation", "unchanged", "sh", "-c",
		`mount --make-rslave / && ` + containerScript, "sh", host, dir, bin, "probe"})
	cmnt := filepath.Join(dir, "ipc")
	c.want("ls "+q(cmnt), "ok")

	// Mounted after the container started.
	d := startDaemon(t, mnt)
	t.Cleanup(d.stop)
	ch := d.channel("first")
	c.want("ls "+q(cmnt), `ok "first"`)
	exchange(t, c, ch, filepath.Join(cmnt, "first"), "first daemon")

	// A clean restart: the mount goes, and the next one shows.
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Errorf("daemon after SIGTERM: %v", err)
	}
	checkDaemonLog(t, d)
	c.want("ls "+q(cmnt), "ok")
	d2 := startDaemon(t, mnt)
	t.Cleanup(d2.stop)
	ch = d2.channel("second")
	c.want("ls "+q(cmnt), `ok "second"`)
	exchange(t, c, ch, filepath.Join(cmnt, "second"), "second daemon")

	// A crash: the container sees a dead mount, then the next daemon's.
	if err := d2.signal(syscall.SIGKILL); err == nil {
		t.Fatal("daemon survived SIGKILL")
	}
	unmountAtEnd(t, d2) // if the next daemon fails
	checkDaemonLog(t, d2)
	c.want("ls "+q(cmnt), "ENOTCONN")
	d3 := startDaemon(t, mnt)
	t.Cleanup(d3.stop)
	d3.waitLog(func(r map[string]any) bool { return strings.Contains(stringOf(r["msg"]), "dead FUSE mount") })
	ch = d3.channel("third")
	c.want("ls "+q(cmnt), `ok "third"`)
	exchange(t, c, ch, filepath.Join(cmnt, "third"), "third daemon")
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
