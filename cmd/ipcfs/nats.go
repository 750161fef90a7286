package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ipcfs/ipcfs/natschan"
)

// natsFlags are the mount flags that join a NATS JetStream deployment or
// embed a server of one.
type natsFlags struct {
	urls, creds, cert, key, ca, prefix *string
	replicas                           *int
	timeout, ackWait                   *time.Duration
	serve, store, cluster, routes      *string
	name                               *string
}

func addNATSFlags(flags *flag.FlagSet) *natsFlags {
	return &natsFlags{
		urls:     flags.String("nats", "", "join the NATS JetStream deployment at these `URLs` (nats://host:port, separated by , or |): channels are shared by every daemon joined to it with the same prefix"),
		creds:    flags.String("nats-creds", "", "NATS credentials `FILE`"),
		cert:     flags.String("nats-tls-cert", "", "TLS client certificate `FILE` for NATS (with --nats-tls-key)"),
		key:      flags.String("nats-tls-key", "", "TLS client key `FILE` for NATS"),
		ca:       flags.String("nats-tls-ca", "", "TLS root CA `FILE` for the NATS servers"),
		prefix:   flags.String("nats-prefix", "ipcfs", "prefix of the NATS bucket, streams and subjects: daemons with the same prefix share channels"),
		replicas: flags.Int("nats-replicas", 1, "JetStream replicas of the namespace and of every channel's stream (3 in a 3-server cluster)"),
		timeout:  flags.Duration("nats-timeout", 10*time.Second, "how long a write or a namespace change waits for NATS before failing with EIO (a non-blocking read: for the server's answer, before EAGAIN)"),
		ackWait:  flags.Duration("nats-ack-wait", 30*time.Second, "after how long a message that a dead daemon had taken is delivered to another reader"),
		serve:    flags.String("nats-serve", "", "run an embedded NATS JetStream server listening for clients on `ADDR` (host:port); without --nats the daemon joins it"),
		store:    flags.String("nats-store", "", "JetStream file storage `DIR` of the embedded server: channels and queued messages survive restarts (default: a temporary directory)"),
		cluster:  flags.String("nats-cluster", "", "the embedded server's cluster `ADDR` (host:port) that the other servers route to"),
		routes:   flags.String("nats-routes", "", "the other servers of the embedded server's cluster: `URLs` nats-route://host:port, separated by , or |"),
		name:     flags.String("nats-name", "", "the embedded server's name, unique in its cluster (default: host name and port)"),
	}
}

// enabled reports whether any NATS flag that turns sharing on was given.
func (f *natsFlags) enabled() bool { return *f.urls != "" || *f.serve != "" }

// splitURLs splits a list of URLs at commas, bars or spaces.
func splitURLs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' || r == ' ' })
}

// joined is a NATS deployment the mount has joined, and the embedded
// server if it runs one.
type joined struct {
	ns     *natschan.Namespace
	server *natschan.Server
}

// join starts the embedded server (if asked) and connects.
func (f *natsFlags) join(log *slog.Logger, mountpoint string) (*joined, error) {
	j := &joined{}
	urls := splitURLs(*f.urls)
	if *f.serve != "" {
		srv, err := natschan.StartServer(natschan.ServerConfig{
			Listen:   *f.serve,
			StoreDir: *f.store,
			Cluster:  *f.cluster,
			Routes:   splitURLs(*f.routes),
			Name:     *f.name,
			Logger:   log,
		})
		if err != nil {
			return nil, err
		}
		j.server = srv
		log.Info("NATS server started", "listen", *f.serve, "store", *f.store, "cluster", *f.cluster)
		if len(urls) == 0 {
			urls = []string{srv.ClientURL()}
		}
	} else if *f.store != "" || *f.cluster != "" || *f.routes != "" || *f.name != "" {
		return nil, fmt.Errorf("--nats-store, --nats-cluster, --nats-routes and --nats-name configure --nats-serve")
	}
	host, _ := os.Hostname()
	ns, err := natschan.Connect(natschan.Config{
		URLs:     urls,
		Creds:    *f.creds,
		CertFile: *f.cert,
		KeyFile:  *f.key,
		CAFile:   *f.ca,
		Prefix:   *f.prefix,
		Replicas: *f.replicas,
		Timeout:  *f.timeout,
		AckWait:  *f.ackWait,
		Name:     "ipcfs " + host + ":" + mountpoint,
		Logger:   log,
	})
	if err != nil {
		j.close()
		return nil, err
	}
	j.ns = ns
	return j, nil
}

// close disconnects and stops the embedded server.
func (j *joined) close() {
	if j == nil {
		return
	}
	if j.ns != nil {
		j.ns.Close()
	}
	if j.server != nil {
		j.server.Shutdown()
	}
}

// namespace is the joined namespace, nil if none.
func (j *joined) namespace() *natschan.Namespace {
	if j == nil {
		return nil
	}
	return j.ns
}
