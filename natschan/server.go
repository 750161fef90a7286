package natschan

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig is an embedded NATS server with JetStream.
type ServerConfig struct {
	Listen   string   // host:port for clients
	StoreDir string   // JetStream's file storage; "": a temporary directory, removed at Shutdown
	Cluster  string   // host:port for routes from the other servers of a cluster, or ""
	Routes   []string // nats-route://host:port of the other servers (with Cluster)
	Name     string   // the server's name, unique in a cluster; default: host name and port
	Logger   *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	srv     *server.Server
	tempDir string
}

// embeddedPayload is the embedded server's max_payload.
const embeddedPayload = 8 << 20

// StartServer starts an embedded NATS server with JetStream and waits
// until it accepts clients (and, in a cluster, JetStream is ready to).
func StartServer(cfg ServerConfig) (*Server, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natschan: --nats-serve %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("natschan: --nats-serve %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = -1 // any free port (nats-server's 0 would be its default, 4222)
	}
	s := &Server{}
	store := cfg.StoreDir
	if store == "" {
		if store, err = os.MkdirTemp("", "ipcfs-nats-"); err != nil {
			return nil, fmt.Errorf("natschan: %w", err)
		}
		s.tempDir = store
	}
	name := cfg.Name
	if name == "" {
		h, _ := os.Hostname()
		name = fmt.Sprintf("%s-%d", h, port)
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   store,
		MaxPayload: embeddedPayload,
		NoSigs:     true, // the daemon handles signals
	}
	if cfg.Cluster != "" {
		ch, cp, err := net.SplitHostPort(cfg.Cluster)
		if err != nil {
			s.cleanup()
			return nil, fmt.Errorf("natschan: --nats-cluster %q: %w", cfg.Cluster, err)
		}
		opts.Cluster.Name = "ipcfs"
		opts.Cluster.Host = ch
		if opts.Cluster.Port, err = strconv.Atoi(cp); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("natschan: --nats-cluster %q: bad port", cfg.Cluster)
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				s.cleanup()
				return nil, fmt.Errorf("natschan: --nats-routes: %q is not a URL like nats-route://host:port", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	} else if len(cfg.Routes) > 0 {
		s.cleanup()
		return nil, fmt.Errorf("natschan: --nats-routes needs --nats-cluster (the address the other servers route to)")
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("natschan: embedded server: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(&serverLog{cfg.Logger}, false, false, false)
	}
	s.srv = srv
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natschan: the embedded server at %s did not start (port in use?)", cfg.Listen)
	}
	return s, nil
}

// ClientURL is the URL that clients of this machine connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and removes its temporary store.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}

// serverLog sends the embedded server's log lines to the daemon's logger.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(format string, v ...any) {
	l.log.Debug(msg(format, v), "from", "nats-server")
}
func (l *serverLog) Warnf(format string, v ...any) { l.log.Warn(msg(format, v), "from", "nats-server") }
func (l *serverLog) Fatalf(format string, v ...any) {
	l.log.Error(msg(format, v), "from", "nats-server")
}
func (l *serverLog) Errorf(format string, v ...any) {
	l.log.Error(msg(format, v), "from", "nats-server")
}
func (l *serverLog) Debugf(format string, v ...any) {
	l.log.Debug(msg(format, v), "from", "nats-server")
}
func (l *serverLog) Tracef(format string, v ...any) {}

func msg(format string, v []any) string { return strings.TrimSpace(fmt.Sprintf(format, v...)) }
