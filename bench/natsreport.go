package bench

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// NATSResult is msg on mounts joined to NATS JetStream against the same
// exchange done directly with nats.go (the floor of that design) and
// against local msg, all unpinned. Rows go by size, then NATSDirect,
// NATSOne, NATSTwo.
type NATSResult struct {
	RoundTrip  []NATSLatency `json:"round_trip,omitempty"`
	Throughput []NATSRate    `json:"throughput,omitempty"`
}

// NATSLatency is the round trip of one NATS transport at one size.
type NATSLatency struct {
	Transport string  `json:"transport"`
	Size      int     `json:"size"`
	Samples   int     `json:"samples"`
	MedianNs  float64 `json:"median_ns"`
	P99Ns     float64 `json:"p99_ns"`
	// The median and p99 divided by nats.go's, and by local msg's
	// (unpinned), at the same size: below 1 is faster.
	RatioToNATS    float64 `json:"ratio_to_nats_go"`
	P99RatioToNATS float64 `json:"p99_ratio_to_nats_go"`
	RatioToMsg     float64 `json:"ratio_to_msg"`
	P99RatioToMsg  float64 `json:"p99_ratio_to_msg"`
}

// NATSRate is the one-way throughput of one NATS transport at one size.
type NATSRate struct {
	Transport  string  `json:"transport"`
	Size       int     `json:"size"`
	Messages   int64   `json:"messages"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	// The rate divided by nats.go's, and by local msg's (unpinned), at
	// the same size: above 1 is faster.
	RatioToNATS float64 `json:"ratio_to_nats_go"`
	RatioToMsg  float64 `json:"ratio_to_msg"`
}

// natsResult computes the NATS section from the raw measurements.
func (m *measurements) natsResult(cfg Config) *NATSResult {
	res := &NATSResult{}
	if cfg.Parts.RoundTrip {
		for _, size := range cfg.Sizes {
			direct, local := m.rtt[cell{Unpinned, NATSDirect, size}], m.rtt[cell{Unpinned, Msg, size}]
			directMedian, directP99 := percentile(direct, 50), percentile(direct, 99)
			localMedian, localP99 := percentile(local, 50), percentile(local, 99)
			for _, t := range natsTransports {
				s := m.rtt[cell{Unpinned, t, size}]
				med, p99 := percentile(s, 50), percentile(s, 99)
				res.RoundTrip = append(res.RoundTrip, NATSLatency{
					Transport: t, Size: size, Samples: len(s), MedianNs: med, P99Ns: p99,
					RatioToNATS: ratio(med, directMedian), P99RatioToNATS: ratio(p99, directP99),
					RatioToMsg: ratio(med, localMedian), P99RatioToMsg: ratio(p99, localP99),
				})
			}
		}
	}
	if cfg.Parts.Throughput {
		for _, size := range cfg.Sizes {
			directRate, _ := m.rate(cell{Unpinned, NATSDirect, size})
			localRate, _ := m.rate(cell{Unpinned, Msg, size})
			for _, t := range natsTransports {
				rate, n := m.rate(cell{Unpinned, t, size})
				res.Throughput = append(res.Throughput, NATSRate{
					Transport: t, Size: size, Messages: n, MsgsPerSec: rate,
					MBPerSec:    rate * float64(size) / 1e6,
					RatioToNATS: ratio(rate, directRate), RatioToMsg: ratio(rate, localRate),
				})
			}
		}
	}
	return res
}

// writeNATS writes the NATS section of the table.
func (r *Report) writeNATS(b *strings.Builder) {
	n := r.NATS
	if n == nil {
		return
	}
	if len(n.RoundTrip) > 0 {
		fmt.Fprintf(b, "\nNATS round trip, unpinned (msg on mounts joined to NATS JetStream, and nats.go directly; lower is better)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "size\ttransport\tmedian\tp99\tx nats.go\tx msg\tp99 x nats.go\tp99 x msg\tround trips\t")
		for i, l := range n.RoundTrip {
			size := fmtSize(int64(l.Size))
			if i > 0 && n.RoundTrip[i-1].Size == l.Size {
				size = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", size, l.Transport,
				fmtNs(l.MedianNs), fmtNs(l.P99Ns), fmtRatio(l.RatioToNATS), fmtRatio(l.RatioToMsg),
				fmtRatio(l.P99RatioToNATS), fmtRatio(l.P99RatioToMsg), l.Samples)
		}
		tw.Flush()
	}
	if len(n.Throughput) > 0 {
		fmt.Fprintf(b, "\nNATS one-way throughput, unpinned (one writer process, one reader process; higher is better)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "size\ttransport\tmsgs/s\tMB/s\tx nats.go\tx msg\tmessages\t")
		for i, t := range n.Throughput {
			size := fmtSize(int64(t.Size))
			if i > 0 && n.Throughput[i-1].Size == t.Size {
				size = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", size, t.Transport,
				fmtCount(t.MsgsPerSec), fmtMB(t.MBPerSec), fmtRatio(t.RatioToNATS), fmtRatio(t.RatioToMsg), t.Messages)
		}
		tw.Flush()
	}
}

// natsNotes explain the NATS section.
func natsNotes(cfg Config) []string {
	local := "local msg's unpinned figure at the same size, above"
	if !slices.Contains(cfg.Placements, Unpinned) {
		local = "local msg's unpinned figure (not measured in this run: no unpinned placement, so x msg is -)"
	}
	return []string{
		fmt.Sprintf("NATS: measured unpinned only, %v per transport and size over the rounds, after each round's local measurements. Two child `ipcfs mount` daemons share channels through NATS JetStream (prefix %s): A runs the embedded server (--nats-serve on a free loopback port, file storage in the run's temporary directory), B joins it (--nats nats://127.0.0.1:PORT). %s: the writer (ping; sender) on A's mount, the reader (pong; receiver) on B's; %s: both on A's; the msg clients are the same as local msg's.", cfg.NATSTime, natsPrefix, NATSTwo, NATSOne),
		fmt.Sprintf("%s: the same exchange with nats.go alone, in client processes (`ipcfs bench client nats-ping|nats-pong|nats-send|nats-recv`): a work-queue stream and durable pull consumer configured as a channel's (natschan.StreamConfig, ConsumerConfig), each message published with a message ID waiting for its PubAck, pulled with Fetch(1) and acknowledged (plain Ack) — what a write and a blocked read of a NATS-backed msg make, without FUSE and without the daemon's announcements and stream-state reads. x nats.go: divided by it; x msg: divided by %s.", NATSDirect, local),
	}
}
