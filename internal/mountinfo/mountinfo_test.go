package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/ipc`:           "/tmp/ipc",
		`/tmp/with\040space`: "/tmp/with space",
		`/a\011tab\012nl`:    "/a\ttab\nnl",
		`/back\134slash`:     `/back\slash`,
		`/trailing\04`:       `/trailing\04`,
		`/not\999octal`:      `/not\999octal`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Mount
		ok   bool
	}{
		{"36 35 0:40 / /tmp/ipc\\040x rw,nosuid shared:1 - fuse.ipcfs ipcfs rw,user_id=0",
			Mount{Device: "0:40", MountPoint: "/tmp/ipc x", FSType: "fuse.ipcfs"}, true},
		{"22 1 8:1 / / rw - ext4 /dev/sda1 rw", Mount{Device: "8:1", MountPoint: "/", FSType: "ext4"}, true},
		{"garbage", Mount{}, false},
		{"", Mount{}, false},
	} {
		got, ok := parse(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFindRoot(t *testing.T) {
	m, ok, err := Find("/")
	if err != nil || !ok || m.Device == "" {
		t.Fatalf("Find(/) = %+v, %v, %v; want the root mount", m, ok, err)
	}
	if _, ok, err := Find("/surely/not/a/mount/point"); ok || err != nil {
		t.Errorf("Find of a non-mount-point = %v, %v", ok, err)
	}
}

func TestAll(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	root := 0
	for _, m := range all {
		if m.MountPoint == "/" {
			root++
		}
	}
	if root == 0 {
		t.Errorf("All() has no mount on /: %+v", all)
	}
}

func TestOfType(t *testing.T) {
	root, _, err := Find("/")
	if err != nil {
		t.Fatal(err)
	}
	all, err := OfType(root.FSType)
	if err != nil || len(all) == 0 {
		t.Fatalf("OfType(%q) = %v, %v; want at least the root", root.FSType, all, err)
	}
	for _, m := range all {
		if m.FSType != root.FSType {
			t.Errorf("OfType(%q) returned %+v", root.FSType, m)
		}
	}
	if none, err := OfType("no-such-fstype"); len(none) != 0 || err != nil {
		t.Errorf("All of an unknown type = %v, %v", none, err)
	}
}
