package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// A JetStream server in operator (decentralized JWT) mode, as NGS and most
// managed NATS deployments run: the daemon joins it with --nats-creds and a
// user's .creds file; without it, or with a user the account does not
// know, it refuses to mount and says why.
func TestNATSCreds(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	dir := t.TempDir()
	op := newOperator(t)
	good := op.userCreds(t, dir, "good", op.account)
	stranger := op.userCreds(t, dir, "stranger", newKey(t, nkeys.CreateAccount)) // signed by an account the server does not trust

	ns := &natsServer{t: t, store: t.TempDir()}
	ns.opts = natsOptions(t, "creds", ns.store)
	ns.opts.TrustedOperators = []*jwt.OperatorClaims{op.claims}
	ns.opts.AccountResolver = op.resolver
	ns.opts.SystemAccount = op.system
	ns.start()
	t.Cleanup(ns.stop)

	for _, c := range []struct{ what, creds string }{
		{"no credentials", ""},
		{"a user of an unknown account", stranger},
	} {
		args := []string{"mount", "--nats", ns.url(), "--nats-timeout", "3s"}
		if c.creds != "" {
			args = append(args, "--nats-creds", c.creds)
		}
		_, stderr, err := runErr(bins.ipcfs, append(args, filepath.Join(t.TempDir(), "ipc"))...)
		if err == nil || !strings.Contains(strings.ToLower(stderr), "authorization violation") {
			t.Errorf("mount with %s: %v, stderr %q; want a failure saying authorization violation", c.what, err, stderr)
		}
	}

	a, b := twoDaemons(t, ns.url(), "--nats-creds", good)
	ch := a.channel("signed")
	if err := os.WriteFile(filepath.Join(ch, "msg"), []byte("with a jwt\n"), 0); err != nil {
		t.Fatal(err)
	}
	there := filepath.Join(b.mnt, "signed")
	eventually(t, "the channel on the second daemon", func() bool { return listed(b.mnt, "signed") })
	if got := run(t, "head", "-n1", filepath.Join(there, "msg")); got != "with a jwt\n" {
		t.Errorf("read across daemons with credentials: %q", got)
	}
}

// operator is a NATS operator with a system account and one account with
// JetStream, held in a memory resolver the test's server trusts.
type operator struct {
	claims   *jwt.OperatorClaims
	resolver *server.MemAccResolver
	system   string // the system account's public key
	account  nkeys.KeyPair
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	okp := newKey(t, nkeys.CreateOperator)
	o := &operator{resolver: &server.MemAccResolver{}}
	sys := newKey(t, nkeys.CreateAccount)
	o.system = o.addAccount(t, okp, sys, false)
	o.account = newKey(t, nkeys.CreateAccount)
	o.addAccount(t, okp, o.account, true)

	claims := jwt.NewOperatorClaims(publicKey(t, okp))
	claims.Name = "ipcfs-test"
	claims.SystemAccount = o.system
	token, err := claims.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	if o.claims, err = jwt.DecodeOperatorClaims(token); err != nil {
		t.Fatal(err)
	}
	return o
}

// addAccount signs akp's account with okp, stores it in the resolver and
// returns its public key; withJetStream gives it unlimited JetStream.
func (o *operator) addAccount(t *testing.T, okp, akp nkeys.KeyPair, withJetStream bool) string {
	t.Helper()
	pub := publicKey(t, akp)
	claims := jwt.NewAccountClaims(pub)
	if withJetStream {
		claims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	}
	token, err := claims.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.resolver.Store(pub, token); err != nil {
		t.Fatal(err)
	}
	return pub
}

// userCreds writes dir/NAME.creds: a new user signed by akp, in the file
// format nats.UserCredentials reads.
func (o *operator) userCreds(t *testing.T, dir, name string, akp nkeys.KeyPair) string {
	t.Helper()
	ukp := newKey(t, nkeys.CreateUser)
	claims := jwt.NewUserClaims(publicKey(t, ukp))
	claims.Name = name
	token, err := claims.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func publicKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
