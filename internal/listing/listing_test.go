package listing

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const statusText = `messages 2
bytes 9
readers 1
writers 0
blocked_readers 0
blocked_writers 3
sent 5
received 3
truncated 0
shm_size 4096
hungup true
`

func TestParseStatus(t *testing.T) {
	got := ParseStatus(statusText + "odd x y\n\nnokey\n")
	want := map[string]any{
		"messages": int64(2), "bytes": int64(9), "readers": int64(1), "writers": int64(0),
		"blocked_readers": int64(0), "blocked_writers": int64(3), "sent": int64(5),
		"received": int64(3), "truncated": int64(0), "shm_size": int64(4096), "hungup": true,
		"odd": "x y",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseStatus:\n%v\nwant\n%v", got, want)
	}
}

// A directory tree shaped like a mount: Read does not need FUSE.
func TestReadAndWrite(t *testing.T) {
	mnt := t.TempDir()
	for _, name := range []string{"b", "a"} {
		dir := filepath.Join(mnt, name)
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o750)
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(statusText), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(mnt, "not-a-channel"), nil, 0o644)
	chans, err := Read(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 2 || chans[0].Name != "a" || chans[1].Name != "b" || chans[0].Mode != 0o750 {
		t.Fatalf("Read: %+v", chans)
	}
	if chans[0].UID != uint32(os.Getuid()) {
		t.Errorf("uid %d, want %d", chans[0].UID, os.Getuid())
	}

	var table bytes.Buffer
	if err := WriteTable(&table, chans); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(table.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", table.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "CHANNEL OWNER PERMS MSGS BYTES READERS WRITERS BLK_R BLK_W SHM HUNGUP" {
		t.Errorf("heading %q", lines[0])
	}
	f := strings.Fields(lines[1])
	if len(f) != 11 || f[0] != filepath.Join(mnt, "a") || f[2] != "750" ||
		strings.Join(f[3:], " ") != "2 9 1 0 0 3 4096 true" {
		t.Errorf("row %q", lines[1])
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, chans); err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(js.Bytes(), &recs); err != nil {
		t.Fatalf("%v:\n%s", err, js.String())
	}
	if len(recs) != 2 || recs[1]["name"] != "b" || recs[1]["mode"] != "0750" ||
		recs[1]["blocked_writers"] != 3.0 || recs[1]["hungup"] != true ||
		recs[1]["path"] != filepath.Join(mnt, "b") || recs[1]["mount"] != mnt {
		t.Errorf("JSON: %s", js.String())
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var b bytes.Buffer
	WriteJSON(&b, nil)
	if b.String() != "[]\n" {
		t.Errorf("no channels: %q, want []", b.String())
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Read of a missing mount: no error")
	}
}

// A channel whose status the caller may not read is listed without
// counters.
func TestUnreadableStatus(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file: this needs an unprivileged user")
	}
	mnt := t.TempDir()
	dir := filepath.Join(mnt, "x")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "status"), []byte(statusText), 0)
	chans, err := Read(mnt)
	if err != nil || len(chans) != 1 || chans[0].Status != nil {
		t.Fatalf("Read: %+v, %v", chans, err)
	}
	var b bytes.Buffer
	WriteTable(&b, chans)
	if !strings.HasSuffix(b.String(), "755    -     -      -        -        -      -      -    -\n") {
		t.Errorf("table:\n%s", b.String())
	}
}
