package natschan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ipcfs/ipcfs/channels"
)

// Errors of namespace changes.
var (
	// ErrExists: the name is taken (mkdir, rename).
	ErrExists = errors.New("natschan: channel exists")
	// ErrNotFound: no channel has the name.
	ErrNotFound = errors.New("natschan: no such channel")
	// ErrUnavailable: NATS did not answer in time (the connection is
	// down, or JetStream has no quorum). Nothing was changed or sent, as
	// far as this daemon knows.
	ErrUnavailable = errors.New("natschan: NATS is unavailable")
	// ErrConflict: the record changed under a change made at the same time
	// by another daemon, too many times in a row.
	ErrConflict = errors.New("natschan: concurrent changes of one channel")
)

// MinPayload is the smallest max_payload of the NATS servers that ipcfs
// can use: a message is up to 1 MiB (a FUSE WRITE), plus headers.
const MinPayload = 1<<20 + 4096

// Config is how to join a NATS deployment.
type Config struct {
	URLs     []string      // servers, nats://host:port
	Creds    string        // a credentials file (nats.UserCredentials), or ""
	CertFile string        // TLS client certificate, with KeyFile
	KeyFile  string        //
	CAFile   string        // TLS root CAs for the servers
	Prefix   string        // of the bucket, streams and subjects; default "ipcfs"
	Replicas int           // of the bucket and streams; default 1
	Timeout  time.Duration // how long a write, a namespace change or a non-blocking read waits for NATS; default 10 s
	AckWait  time.Duration // after which a message a dead daemon held is redelivered; default 30 s
	Name     string        // the connection's name, for the servers' monitoring
	Logger   *slog.Logger  // nil: discard
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Record is a channel as the namespace holds it.
type Record struct {
	ID       string          `json:"id"` // names the stream: never changes, also across renames
	Name     string          `json:"name"`
	Uid      uint32          `json:"uid"` // compared numerically on every host
	Gid      uint32          `json:"gid"`
	Mode     uint32          `json:"mode"` // permission bits
	Created  time.Time       `json:"created"`
	Changed  time.Time       `json:"changed"` // last chmod/chown
	Limits   channels.Limits `json:"limits"`
	HungUp   bool            `json:"hungup"`
	Flushed  uint64          `json:"flushed"` // messages discarded by flush, for status's received
	Revision uint64          `json:"-"`       // of the bucket entry this came from
}

// Event is a change of the namespace made by some daemon.
type Event struct {
	Name    string
	Record  Record // when not Removed
	Removed bool
}

// Namespace is a joined deployment: the connection, the bucket, and the
// channels' streams.
type Namespace struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue

	downSince atomic.Int64 // UnixNano when the connection was lost; 0 while connected

	mu         sync.Mutex
	latest     map[string]uint64 // GUARDED_BY(mu); newest revision applied per key (own changes included)
	deletes    map[string]int    // GUARDED_BY(mu); this daemon's deletes of a key whose watch event has not come
	known      map[string]bool   // GUARDED_BY(mu); IDs of every record seen (Sweep spares their streams)
	unreadable bool              // GUARDED_BY(mu); a record could not be read: which stream it names is unknown
}

// Connect joins the deployment and makes the namespace bucket if missing.
func Connect(cfg Config) (*Namespace, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "ipcfs"
	}
	if !prefixRe.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("natschan: prefix %q: want 1-32 letters, digits, '-' or '_'", cfg.Prefix)
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Namespace{cfg: cfg, log: log, latest: make(map[string]uint64), deletes: make(map[string]int), known: make(map[string]bool)}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// No buffering while disconnected: a publish then fails at once
		// and is retried (with its message ID) once connected, instead of
		// being sent after this daemon has told the writer it failed.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.downSince.CompareAndSwap(0, time.Now().UnixNano())
			log.Warn("NATS connection lost", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.downSince.Store(0)
			log.Info("NATS connection back", "server", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Debug("NATS connection closed") }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("natschan: connecting to %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	if p := nc.MaxPayload(); p < MinPayload {
		nc.Close()
		return nil, fmt.Errorf("natschan: the NATS server's max_payload is %d bytes; ipcfs needs at least %d (a message is up to 1 MiB): set max_payload: 2MB in its configuration", p, MinPayload)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natschan: %w", err)
	}
	// A cluster starting with the daemon may not have JetStream ready
	// (no meta leader, peers missing): try until the timeout.
	deadline := time.Now().Add(cfg.Timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(cfg.Timeout, 2*time.Second))
		n.kv, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.Prefix + "_names",
			Description: "ipcfs channels: name -> record",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natschan: the namespace bucket %s_names: %w", cfg.Prefix, err)
	}
	return n, nil
}

// Close ends the connection. Queues fail from then on.
func (n *Namespace) Close() { n.nc.Close() }

// Connected reports whether the connection is up now.
func (n *Namespace) Connected() bool { return n.nc.IsConnected() }

// givenUp reports whether the connection has been down for the timeout:
// from then on, writes that would wait for it fail at once.
func (n *Namespace) givenUp() bool {
	d := n.downSince.Load()
	return d != 0 && !n.Connected() && time.Since(time.Unix(0, d)) >= n.cfg.Timeout
}

// Prefix is the prefix of the bucket, streams and subjects.
func (n *Namespace) Prefix() string { return n.cfg.Prefix }

// ctx returns a context bounded by the configured timeout.
func (n *Namespace) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.cfg.Timeout)
}

func (n *Namespace) streamName(id string) string { return n.cfg.Prefix + "_" + id }
func (n *Namespace) subject(id string) string    { return n.cfg.Prefix + ".q." + id }
func (n *Namespace) events(id string) string     { return n.cfg.Prefix + ".ev." + id }

// consumerName is the durable pull consumer every daemon reads through.
const consumerName = "readers"

// limitSlack is what a stream's byte limit has beyond queue-bytes: room
// for one more message of the largest size (and NATS's per-message
// overhead), so that a message larger than queue-bytes still goes through
// an empty queue, as on a local channel. A NATS-backed queue can so hold
// up to one message more than queue-bytes.
const limitSlack = 1<<20 + 64<<10

func (n *Namespace) streamConfig(id string, l channels.Limits) jetstream.StreamConfig {
	return StreamConfig(n.cfg.Prefix, id, l, n.cfg.Replicas)
}

func (n *Namespace) consumerConfig() jetstream.ConsumerConfig {
	return ConsumerConfig(n.cfg.AckWait)
}

// StreamConfig is the configuration of the work-queue stream that holds
// the messages of channel id under prefix, with limits l: its one subject
// (Subjects[0]) is where writers publish. Daemons make it at mkdir; it is
// exported so that `ipcfs bench` can measure the same exchange done
// directly with nats.go.
func StreamConfig(prefix, id string, l channels.Limits, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        prefix + "_" + id,
		Description: "ipcfs channel queue",
		Subjects:    []string{prefix + ".q." + id},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     l.MaxMsgs,
		MaxBytes:    l.MaxBytes + limitSlack,
		MaxMsgSize:  MinPayload,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
	}
}

// ConsumerConfig is the configuration of the durable pull consumer that
// every daemon reads a channel's stream through (Durable is its name),
// with ackWait before a message taken and not acknowledged is delivered
// again. Exported for `ipcfs bench`, as StreamConfig.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxWaiting:    4096, // pull requests waiting: one per daemon's batch of blocked readers
		MaxAckPending: -1,
	}
}

// note records that rev is the newest revision of key this daemon has
// applied, and reports whether it is newer than what it had.
func (n *Namespace) note(key string, rev uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev <= n.latest[key] {
		return false
	}
	n.latest[key] = rev
	return true
}

// deleteKey deletes key (with opts), telling the watch that the delete
// event to come is this daemon's own, already applied: a delete event
// carries no revision this daemon could note beforehand, and applying its
// own rename's delete after the rename would remove the renamed channel.
func (n *Namespace) deleteKey(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	n.mu.Lock()
	n.deletes[key]++
	n.mu.Unlock()
	err := n.kv.Delete(ctx, key, opts...)
	if err != nil {
		n.mu.Lock()
		if n.deletes[key]--; n.deletes[key] <= 0 {
			delete(n.deletes, key)
		}
		n.mu.Unlock()
	}
	return err
}

// ownDelete reports whether a delete event of key is this daemon's own
// (see deleteKey), and forgets it.
func (n *Namespace) ownDelete(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.deletes[key] == 0 {
		return false
	}
	if n.deletes[key]--; n.deletes[key] == 0 {
		delete(n.deletes, key)
	}
	return true
}

// Create makes a channel: its stream and consumer, then its record (so a
// daemon that sees the record finds the stream). rec.ID is assigned.
func (n *Namespace) Create(rec Record) (Record, error) {
	rec.ID = nuid.Next()
	n.mu.Lock()
	n.known[rec.ID] = true
	n.mu.Unlock()
	ctx, cancel := n.ctx()
	defer cancel()
	key := EncodeName(rec.Name)
	if _, err := n.kv.Get(ctx, key); err == nil {
		return Record{}, fmt.Errorf("create %q: %w", rec.Name, ErrExists)
	}
	stream, err := n.js.CreateStream(ctx, n.streamConfig(rec.ID, rec.Limits))
	if err != nil {
		return Record{}, fmt.Errorf("create %q: stream: %w", rec.Name, n.classify(err))
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, n.consumerConfig()); err != nil {
		n.dropStream(rec.ID)
		return Record{}, fmt.Errorf("create %q: consumer: %w", rec.Name, n.classify(err))
	}
	val, _ := json.Marshal(rec)
	rev, err := n.kv.Create(ctx, key, val)
	if err != nil {
		n.dropStream(rec.ID)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Record{}, fmt.Errorf("create %q: %w", rec.Name, ErrExists)
		}
		return Record{}, fmt.Errorf("create %q: record: %w", rec.Name, n.classify(err))
	}
	rec.Revision = rev
	n.note(key, rev)
	return rec, nil
}

// dropStream deletes a channel's stream, logging a failure (the stream is
// then left over: harmless, but it holds its messages).
func (n *Namespace) dropStream(id string) {
	ctx, cancel := n.ctx()
	defer cancel()
	if err := n.js.DeleteStream(ctx, n.streamName(id)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		n.log.Warn("deleting a channel's stream failed; it is left over", "stream", n.streamName(id), "err", err)
	}
}

// orphanAge is how old a channel stream without a record must be before
// Sweep deletes it: older than any mkdir in progress (which makes the
// stream just before the record).
var orphanAge = 10 * time.Minute

// Sweep deletes the channel streams of this prefix that no record this
// daemon has seen names (through Watch or Create) and that are older than
// orphanAge: left by a daemon killed between making a channel's stream
// and its record, or between deleting the record and the stream. Call it
// after Watch has loaded the namespace. It returns how many it deleted.
func (n *Namespace) Sweep() (int, error) {
	n.mu.Lock()
	unreadable := n.unreadable
	n.mu.Unlock()
	if unreadable {
		return 0, nil // a record's stream is unknown: none is surely an orphan
	}
	ctx, cancel := n.ctx()
	defer cancel()
	lister := n.js.ListStreams(ctx)
	deleted := 0
	for info := range lister.Info() {
		id, ok := strings.CutPrefix(info.Config.Name, n.cfg.Prefix+"_")
		n.mu.Lock()
		known := n.known[id]
		n.mu.Unlock()
		if !ok || !isID(id) || known || len(info.Config.Subjects) != 1 ||
			info.Config.Subjects[0] != n.subject(id) || time.Since(info.Created) < orphanAge {
			continue
		}
		if err := n.js.DeleteStream(ctx, info.Config.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return deleted, fmt.Errorf("natschan: deleting the orphan stream %s: %w", info.Config.Name, err)
		}
		n.log.Info("deleted a channel stream that no record names (left by a daemon that died)", "stream", info.Config.Name, "messages", info.State.Msgs)
		deleted++
	}
	if err := lister.Err(); err != nil {
		return deleted, fmt.Errorf("natschan: listing streams: %w", n.classify(err))
	}
	return deleted, nil
}

// isID reports whether s is a channel ID: a NUID, 22 letters and digits.
func isID(s string) bool {
	if len(s) != 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Get returns the channel named name.
func (n *Namespace) Get(name string) (Record, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	e, err := n.kv.Get(ctx, EncodeName(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("%q: %w", name, n.classify(err))
	}
	rec, err := decodeRecord(e)
	if err == nil {
		n.learn(rec)
	}
	return rec, err
}

func decodeRecord(e jetstream.KeyValueEntry) (Record, error) {
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("record of key %q: %w", e.Key(), err)
	}
	if rec.ID == "" {
		return Record{}, fmt.Errorf("record of key %q has no id", e.Key())
	}
	rec.Revision = e.Revision()
	return rec, nil
}

// learn notes the ID of a record read from the bucket (Sweep spares it).
func (n *Namespace) learn(rec Record) {
	n.mu.Lock()
	n.known[rec.ID] = true
	n.mu.Unlock()
}

// Remove deletes the channel named name, and its stream with its queued
// messages, whose number it returns. The record goes first, so no daemon
// sends to a channel it still lists once this returns.
func (n *Namespace) Remove(name string) (discarded int, err error) {
	rec, err := n.Get(name)
	if err != nil {
		return 0, fmt.Errorf("remove: %w", err)
	}
	ctx, cancel := n.ctx()
	defer cancel()
	key := EncodeName(name)
	if err := n.deleteKey(ctx, key, jetstream.LastRevision(rec.Revision)); err != nil {
		return 0, fmt.Errorf("remove %q: %w", name, n.classify(err))
	}
	n.note(key, rec.Revision) // older puts of the key are stale from now on
	if s, err := n.js.Stream(ctx, n.streamName(rec.ID)); err == nil {
		discarded = int(s.CachedInfo().State.Msgs)
	}
	n.dropStream(rec.ID)
	return discarded, nil
}

// Rename gives the channel named from the name to. The new key comes
// first: a daemon that sees it renames the channel it knows by ID.
func (n *Namespace) Rename(from, to string) error {
	rec, err := n.Get(from)
	if err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if from == to {
		return nil
	}
	ctx, cancel := n.ctx()
	defer cancel()
	oldKey, newKey := EncodeName(from), EncodeName(to)
	rec.Name = to
	val, _ := json.Marshal(rec)
	rev, err := n.kv.Create(ctx, newKey, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("rename %q to %q: %w", from, to, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("rename %q to %q: %w", from, to, n.classify(err))
	}
	n.note(newKey, rev)
	if err := n.deleteKey(ctx, oldKey, jetstream.LastRevision(rec.Revision)); err != nil {
		// Changed meanwhile: the new key is the channel now; drop the old
		// one whatever it holds (it names the same stream).
		n.log.Warn("rename: the old name changed meanwhile; removing it anyway", "from", from, "to", to, "err", err)
		if err := n.deleteKey(ctx, oldKey); err != nil {
			return fmt.Errorf("rename %q to %q: removing the old name: %w", from, to, n.classify(err))
		}
	}
	n.note(oldKey, rec.Revision)
	return nil
}

// Update changes the record of the channel named name with change,
// retrying when another daemon changed it at the same time, and returns
// the record as stored.
func (n *Namespace) Update(name string, change func(*Record) error) (Record, error) {
	key := EncodeName(name)
	for range 10 {
		rec, err := n.Get(name)
		if err != nil {
			return Record{}, fmt.Errorf("update: %w", err)
		}
		if err := change(&rec); err != nil {
			return Record{}, err
		}
		val, _ := json.Marshal(rec)
		ctx, cancel := n.ctx()
		rev, err := n.kv.Update(ctx, key, val, rec.Revision)
		cancel()
		if err == nil {
			rec.Revision = rev
			n.note(key, rev)
			return rec, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence && apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant {
			return Record{}, fmt.Errorf("update %q: %w", name, n.classify(err))
		}
	}
	return Record{}, fmt.Errorf("update %q: %w", name, ErrConflict)
}

// SetLimits sets a channel's capacity: its stream's limits, then its
// record.
func (n *Namespace) SetLimits(name string, l channels.Limits) (Record, error) {
	rec, err := n.Get(name)
	if err != nil {
		return Record{}, fmt.Errorf("set limits: %w", err)
	}
	ctx, cancel := n.ctx()
	defer cancel()
	if _, err := n.js.UpdateStream(ctx, n.streamConfig(rec.ID, l)); err != nil {
		return Record{}, fmt.Errorf("set limits of %q: %w", name, n.classify(err))
	}
	return n.Update(name, func(r *Record) error { r.Limits = l; return nil })
}

// Watch calls apply, from one goroutine, with every channel now in the
// namespace and then with every change another daemon makes (changes this
// one made through n and already applied are left out), until ctx ends.
// It returns once the channels now in the namespace have been applied.
func (n *Namespace) Watch(ctx context.Context, apply func(Event)) error {
	w, err := n.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("natschan: watching the namespace: %w", n.classify(err))
	}
	initial := make(chan struct{})
	go func() {
		defer w.Stop()
		loaded := false
		for e := range w.Updates() {
			if e == nil {
				if !loaded {
					loaded = true
					close(initial)
				}
				continue
			}
			n.deliver(e, apply)
		}
		if !loaded {
			close(initial)
		}
	}()
	select {
	case <-initial:
		return nil
	case <-time.After(n.cfg.Timeout):
		return fmt.Errorf("natschan: loading the namespace: %w", ErrUnavailable)
	}
}

// deliver passes one bucket entry to apply, unless it is not newer than
// what this daemon applied.
func (n *Namespace) deliver(e jetstream.KeyValueEntry, apply func(Event)) {
	if !n.note(e.Key(), e.Revision()) {
		return
	}
	name, err := DecodeName(e.Key())
	if err != nil {
		n.log.Warn("ignoring a namespace key ipcfs did not write", "key", e.Key(), "err", err)
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if n.ownDelete(e.Key()) {
			return
		}
		apply(Event{Name: name, Removed: true})
		return
	}
	rec, err := decodeRecord(e)
	if err != nil {
		n.log.Warn("ignoring a namespace record ipcfs cannot read", "key", e.Key(), "err", err)
		n.mu.Lock()
		n.unreadable = true // its stream is unknown: Sweep deletes nothing
		n.mu.Unlock()
		return
	}
	rec.Name = name
	n.mu.Lock()
	n.known[rec.ID] = true
	n.mu.Unlock()
	apply(Event{Name: name, Record: rec})
}

// classify wraps err in ErrUnavailable when it says NATS did not answer.
func (n *Namespace) classify(err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func isUnavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
