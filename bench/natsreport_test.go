package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ipcfs/ipcfs/natschan"
)

// fakeNATS adds round numbers for the NATS transports, unpinned: round
// trips nats.go 200 µs, msg-1-daemon 300, msg-2-daemons 400 (plus up
// to 99 ns); rates nats.go 5000 msgs/s, msg-1-daemon 4000, msg-2-daemons
// 2500. Local msg (fakeMeasurements) is 40 µs and 12,500 msgs/s.
func fakeNATS(m *measurements, sizes []int) {
	rtts := map[string]int64{NATSDirect: 200000, NATSOne: 300000, NATSTwo: 400000}
	rates := map[string]int64{NATSDirect: 5000, NATSOne: 4000, NATSTwo: 2500}
	for _, size := range sizes {
		for _, tr := range natsTransports {
			var s []int64
			for k := range 100 {
				s = append(s, rtts[tr]+int64(k))
			}
			m.rtt[cell{Unpinned, tr, size}] = s
			m.tput[cell{Unpinned, tr, size}] = []rateParts{{msgs: rates[tr] / 2, elapsed: time.Second / 2}}
		}
	}
}

func TestNATSReport(t *testing.T) {
	for _, tc := range []struct {
		name       string
		placements []string
		parts      Parts
		rtt, tput  int     // rows
		rttToMsg   float64 // msg-2-daemons' median x local msg
		rateToMsg  float64
	}{
		{"both placements", []string{Unpinned, OneCPU}, Parts{RoundTrip: true, Throughput: true}, 6, 6, 400049.0 / 40049, 0.2},
		{"one-cpu only: no local msg to compare", []string{OneCPU}, Parts{RoundTrip: true, Throughput: true}, 6, 6, 0, 0},
		{"round trips only", []string{Unpinned}, Parts{RoundTrip: true}, 6, 0, 400049.0 / 40049, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Config{Exe: "x", Sizes: []int{64, 64 << 10}, Placements: tc.placements, Parts: tc.parts, NATS: true}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			m := fakeMeasurements(cfg)
			fakeNATS(m, cfg.Sizes)
			rep := newReport(cfg, time.Unix(0, 0))
			rep.fill(cfg, m)
			n := rep.NATS
			if n == nil || len(n.RoundTrip) != tc.rtt || len(n.Throughput) != tc.tput {
				t.Fatalf("NATS section: %+v", n)
			}
			for i, l := range n.RoundTrip {
				if want := natsTransports[i%3]; l.Transport != want || l.Size != cfg.Sizes[i/3] {
					t.Errorf("round trip row %d: %s %d, want %s %d", i, l.Transport, l.Size, want, cfg.Sizes[i/3])
				}
				if l.Samples != 100 || l.MedianNs <= 0 {
					t.Errorf("round trip row %d: %+v", i, l)
				}
			}
			if tc.rtt > 0 {
				d, one, two := n.RoundTrip[3], n.RoundTrip[4], n.RoundTrip[5]
				if d.RatioToNATS != 1 || one.RatioToNATS != 300049.0/200049 || two.RatioToNATS != 400049.0/200049 ||
					two.P99RatioToNATS != 400098.0/200098 || two.RatioToMsg != tc.rttToMsg {
					t.Errorf("round trip ratios at 64 KiB: %+v / %+v / %+v", d, one, two)
				}
			}
			if tc.tput > 0 {
				d, two := n.Throughput[3], n.Throughput[5]
				if d.MsgsPerSec != 5000 || d.RatioToNATS != 1 || two.RatioToNATS != 0.5 || two.RatioToMsg != tc.rateToMsg ||
					two.Messages != 1250 || two.MBPerSec != 2500*65536/1e6 {
					t.Errorf("throughput at 64 KiB: %+v / %+v", d, two)
				}
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			out := text.String()
			want := []string{"NATS round trip, unpinned", "x nats.go", "msg-2-daemons", "measured unpinned only"}
			if tc.tput > 0 {
				want = append(want, "NATS one-way throughput, unpinned")
			} else if strings.Contains(out, "NATS one-way") {
				t.Errorf("a throughput section without throughputs:\n%s", out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("table lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestNATSSteps(t *testing.T) {
	cfg, err := Config{Exe: "x", Parts: Parts{RoundTrip: true, Throughput: true}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	without := cfg.steps()
	cfg.NATS = true
	// 3 sizes × 3 transports × (round trip + one-way) × 3 rounds.
	if got := cfg.steps() - without; got != 54 {
		t.Errorf("NATS adds %d steps, want 54", got)
	}
	if cfg.NATSTime != cfg.CellTime/2 {
		t.Errorf("NATS time %v, want half of %v", cfg.NATSTime, cfg.CellTime)
	}
}

// TestNATSDirectClients runs the direct clients' loops (no FUSE: they
// may run in the test process) against an embedded server: every
// message sent is received once, the round trips are counted.
func TestNATSDirectClients(t *testing.T) {
	srv, err := natschan.StartServer(natschan.ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := func(id string) (name, subject string) {
		sc := natschan.StreamConfig("t", id, natsLimits, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.CreateStream(ctx, sc)
		if err == nil {
			_, err = s.CreateOrUpdateConsumer(ctx, natschan.ConsumerConfig(30*time.Second))
		}
		if err != nil {
			t.Fatal(err)
		}
		return sc.Name, sc.Subjects[0]
	}
	ab, abSubj := stream("ab")
	ba, baSubj := stream("ba")
	base := clientFlags{size: 100, url: srv.ClientURL(), consumer: "readers"}

	recvd := make(chan clientResult, 1)
	errs := make(chan error, 2)
	go func() {
		f := base
		f.in = ab
		res, err := natsRecv(f)
		errs <- err
		recvd <- res
	}()
	f := base
	f.out, f.count = abSubj, 300
	sent, err := natsSend(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got := <-recvd; sent.Count != 300 || got.Count != 300 {
		t.Errorf("sent %d, received %d, want 300", sent.Count, got.Count)
	}

	go func() {
		f := base
		f.in, f.out = ab, baSubj
		errs <- natsPong(f)
	}()
	f = base
	f.out, f.in, f.count = abSubj, ba, 20
	res, err := natsPing(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if res.Count != 20 || len(res.Samples) != 20 {
		t.Errorf("%d round trips, %d samples, want 20", res.Count, len(res.Samples))
	}
}
