package redistest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/freeport"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// The ACL user the service runs as in these tests, with exactly the permissions the README
// documents (AppACL), and the sentinel user (SentinelACL). The default user stays an
// administrator, for the tests' own set-up.
const (
	User             = "tokensvc"
	Password         = "tokensvc-password-0123456789"
	SentinelUser     = "tokensvc-sentinel"
	SentinelPassword = "sentinel-password-0123456789"
	Prefix           = "token-service:"
)

// AppACL is the minimal ACL of the service's user, as the README gives it; cluster mode adds
// what the cluster client needs to read the slot map.
func AppACL(cluster bool) string {
	rule := "user " + User + " on >" + Password + " resetkeys ~" + Prefix + "* resetchannels &" + Prefix + "* -@all " +
		"+ping +info +evalsha +eval +script|load +time +incrby +pexpireat +get +set +del " +
		"+hget +hset +hsetnx +hdel +hgetall +hlen +hexists +publish +subscribe +unsubscribe"
	if cluster {
		rule += " +cluster|slots +command"
	}
	return rule
}

// SentinelACL is the sentinel user's, on each sentinel.
const SentinelACL = "user " + SentinelUser + " on >" + SentinelPassword + " resetchannels &+switch-master &+replica-reconf-done -@all " +
	"+ping +sentinel|get-master-addr-by-name +sentinel|sentinels +sentinel|replicas +subscribe +unsubscribe"

// node is one redis-server or redis-sentinel process the tests started.
type node struct {
	Port int
	cmd  *exec.Cmd
}

// Stop kills the process, as a crash would.
func (n *node) Stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func startProcess(bin string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	return cmd, nil
}

// aclFile writes the users of a data node: the administrator default and the service's.
func aclFile(dir string, cluster bool) (string, error) {
	path := filepath.Join(dir, "users.acl")
	return path, os.WriteFile(path, []byte("user default on nopass ~* &* +@all\n"+AppACL(cluster)+"\n"), 0o600)
}

// command sends one command over a plain connection as the default user and returns the
// reply's lines.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply as text: bulk strings and arrays flattened, one per line.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case line == "":
		return "", errors.New("empty reply")
	case line[0] == '-':
		return "", errors.New(line[1:])
	case line[0] == '+' || line[0] == ':':
		return line[1:], nil
	case line[0] == '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case line[0] == '*':
		n, _ := strconv.Atoi(line[1:])
		var parts []string
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return line, nil
}

// Cluster is six redis-server nodes on 127.0.0.1 made into a cluster by redis-cli: three
// primaries, three replicas.
type Cluster struct {
	Nodes []*node
	dir   string
	// URL reaches the cluster as the service's ACL user through every node's address.
	URL string
}

// StartCluster starts the nodes and waits until the cluster is whole: every slot served and
// every replica in sync.
func StartCluster(dir string) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: %s", InstallHint)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found: %s", InstallHint)
	}
	acl, err := aclFile(dir, true)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	var addrs []string
	for i := range 6 {
		port, err := freeport.Pick("tcp")
		if err != nil {
			c.Stop()
			return nil, err
		}
		nodeDir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			c.Stop()
			return nil, err
		}
		n := &node{Port: port}
		if err := c.startNode(bin, n, nodeDir, acl); err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := wait.Until(30*time.Second, c.whole); err != nil {
		c.Stop()
		return nil, fmt.Errorf("cluster not whole: %w", err)
	}
	u := url.URL{Scheme: "redis", User: url.UserPassword(User, Password), Host: addrs[0], RawQuery: "addr=" + addrs[1] + "&addr=" + addrs[2]}
	c.URL = u.String()
	return c, nil
}

func (c *Cluster) startNode(bin string, n *node, dir, acl string) error {
	var err error
	n.cmd, err = startProcess(bin, "--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
		// A partial outage keeps the other primaries' slots served.
		"--cluster-require-full-coverage", "no", "--save", "", "--appendonly", "no", "--aclfile", acl)
	if err != nil {
		return err
	}
	return wait.Until(5*time.Second, func() error { _, err := command(n.addr(), "PING"); return err })
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// whole is nil once every node says the cluster is ok and every replica's link is up.
func (c *Cluster) whole() error {
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		info, err := command(n.addr(), "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %d: %q %v", n.Port, firstLine(info), err)
		}
		repl, err := command(n.addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("replica %d not in sync", n.Port)
		}
	}
	return nil
}

func firstLine(s string) string { line, _, _ := strings.Cut(s, "\n"); return line }

// Primaries and Replicas are the nodes by their role now.
func (c *Cluster) Primaries() []*node { return c.byRole("role:master") }

// Replicas are the nodes that replicate a primary now.
func (c *Cluster) Replicas() []*node { return c.byRole("role:slave") }

func (c *Cluster) byRole(role string) []*node {
	var out []*node
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		if info, err := command(n.addr(), "INFO", "replication"); err == nil && strings.Contains(info, role) {
			out = append(out, n)
		}
	}
	return out
}

// Failover has a replica take its primary's place, as an operator's manual failover does.
func (c *Cluster) Failover(replica *node) error {
	_, err := command(replica.addr(), "CLUSTER", "FAILOVER")
	return err
}

// Whole waits until the cluster serves every slot again.
func (c *Cluster) Whole(timeout time.Duration) error { return wait.Until(timeout, c.whole) }

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Sentinel is a primary, its replica and three sentinels watching them.
type Sentinel struct {
	Primary, Replica *node
	Sentinels        []*node
	// URL reaches the primary through the sentinels, as the sentinel user there and the
	// service's user on the data nodes.
	URL string
}

// MasterName is the name the sentinels know the primary by.
const MasterName = "tokenmaster"

// StartSentinel starts the group and waits until the sentinels know each other and the replica.
func StartSentinel(dir string) (*Sentinel, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: %s", InstallHint)
	}
	sentinelBin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		return nil, errors.New("redis-sentinel not found: install it with `apt-get install redis-sentinel` (scripts/test does this)")
	}
	acl, err := aclFile(dir, false)
	if err != nil {
		return nil, err
	}
	s := &Sentinel{}
	ports := make([]int, 5)
	for i := range ports {
		if ports[i], err = freeport.Pick("tcp"); err != nil {
			return nil, err
		}
	}
	s.Primary, s.Replica = &node{Port: ports[0]}, &node{Port: ports[1]}
	for i, n := range []*node{s.Primary, s.Replica} {
		nodeDir := filepath.Join(dir, "data"+strconv.Itoa(i)) // a replica's sync writes an RDB file there
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			s.Stop()
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1", "--dir", nodeDir, "--save", "", "--appendonly", "no", "--aclfile", acl}
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		if n.cmd, err = startProcess(bin, args...); err != nil {
			s.Stop()
			return nil, err
		}
		if err := wait.Until(5*time.Second, func() error { _, err := command(n.addr(), "PING"); return err }); err != nil {
			s.Stop()
			return nil, err
		}
	}
	var sentinelAddrs []string
	for i, port := range ports[2:] {
		conf := filepath.Join(dir, "sentinel"+strconv.Itoa(i)+".conf") // sentinel rewrites it
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n"+
			"user default on nopass ~* &* +@all\n%s\n", port, dir, MasterName, ports[0], MasterName, MasterName, MasterName, SentinelACL)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			s.Stop()
			return nil, err
		}
		n := &node{Port: port}
		if n.cmd, err = startProcess(sentinelBin, conf); err != nil {
			s.Stop()
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, n)
		sentinelAddrs = append(sentinelAddrs, n.addr())
	}
	if err := wait.Until(30*time.Second, s.settled); err != nil {
		s.Stop()
		return nil, fmt.Errorf("sentinels not settled: %w", err)
	}
	q := url.Values{"addr": sentinelAddrs[1:], "master_name": {MasterName}, "username": {User}, "password": {Password}}
	u := url.URL{Scheme: "redis", User: url.UserPassword(SentinelUser, SentinelPassword), Host: sentinelAddrs[0], RawQuery: q.Encode()}
	s.URL = u.String()
	return s, nil
}

// settled is nil once every sentinel knows the two others and the replica.
func (s *Sentinel) settled() error {
	for _, n := range s.Sentinels {
		reply, err := command(n.addr(), "SENTINEL", "MASTER", MasterName)
		if err != nil {
			return err
		}
		fields := strings.Split(reply, "\n")
		values := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			values[fields[i]] = fields[i+1]
		}
		if values["num-other-sentinels"] != "2" || values["num-slaves"] != "1" {
			return fmt.Errorf("sentinel %d: %s others, %s replicas", n.Port, values["num-other-sentinels"], values["num-slaves"])
		}
	}
	return nil
}

// Failover has the sentinels promote the replica, and returns once they name it the primary.
func (s *Sentinel) Failover(timeout time.Duration) error {
	if _, err := command(s.Sentinels[0].addr(), "SENTINEL", "FAILOVER", MasterName); err != nil {
		return err
	}
	want := strconv.Itoa(s.Replica.Port)
	err := wait.Until(timeout, func() error {
		reply, err := command(s.Sentinels[0].addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
		if err != nil || !strings.HasSuffix(reply, "\n"+want) {
			return fmt.Errorf("primary is %q (%v)", reply, err)
		}
		return nil
	})
	if err == nil {
		s.Primary, s.Replica = s.Replica, s.Primary
	}
	return err
}

// Stop kills every process of the group.
func (s *Sentinel) Stop() {
	for _, n := range append([]*node{s.Primary, s.Replica}, s.Sentinels...) {
		if n != nil {
			n.Stop()
		}
	}
}

// Certificates are a CA and a certificate for 127.0.0.1 and localhost it signed, in PEM files.
type Certificates struct {
	CA, Cert, Key string
}

// MakeCertificates writes a fresh CA and a server certificate into dir, under name.
func MakeCertificates(dir, name string) (Certificates, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificates{}, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return Certificates{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificates{}, err
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return Certificates{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Certificates{}, err
	}
	c := Certificates{CA: filepath.Join(dir, name+"-ca.crt"), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	for path, block := range map[string]*pem.Block{c.CA: {Type: "CERTIFICATE", Bytes: caDER}, c.Cert: {Type: "CERTIFICATE", Bytes: der},
		c.Key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return Certificates{}, err
		}
	}
	return c, nil
}

// TLSServer is a redis-server that speaks only TLS, with the service's ACL user.
type TLSServer struct {
	node
	Addr string
	// URL reaches it as the ACL user, over TLS to 127.0.0.1.
	URL string
}

// StartTLS starts it with the certificate certs names.
func StartTLS(dir string, certs Certificates) (*TLSServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: %s", InstallHint)
	}
	acl, err := aclFile(dir, false)
	if err != nil {
		return nil, err
	}
	port, err := freeport.Pick("tcp")
	if err != nil {
		return nil, err
	}
	s := &TLSServer{node: node{Port: port}}
	s.Addr = s.addr()
	s.cmd, err = startProcess(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--tls-cert-file", certs.Cert, "--tls-key-file", certs.Key, "--tls-ca-cert-file", certs.CA, "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--aclfile", acl)
	if err != nil {
		return nil, err
	}
	if err := wait.Until(5*time.Second, func() error {
		conn, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		s.Stop()
		return nil, err
	}
	u := url.URL{Scheme: "rediss", User: url.UserPassword(User, Password), Host: s.addr()}
	s.URL = u.String()
	return s, nil
}

// One cluster and one sentinel group per test binary, started on first use: starting them is
// most of what these tests cost. A package using them calls StopShared from its TestMain.
var shared struct {
	mu       sync.Mutex
	dirs     []string
	cluster  *Cluster
	sentinel *Sentinel
}

// SharedCluster is the test binary's cluster.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil {
		dir, err := os.MkdirTemp("", "redis-cluster")
		if err != nil {
			tb.Fatal(err)
		}
		shared.dirs = append(shared.dirs, dir)
		if shared.cluster, err = StartCluster(dir); err != nil {
			tb.Fatal(err)
		}
	}
	if err := shared.cluster.Whole(30 * time.Second); err != nil {
		tb.Fatalf("the shared cluster is not whole: %v", err)
	}
	return shared.cluster
}

// SharedSentinel is the test binary's sentinel group.
func SharedSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.sentinel == nil {
		dir, err := os.MkdirTemp("", "redis-sentinel")
		if err != nil {
			tb.Fatal(err)
		}
		shared.dirs = append(shared.dirs, dir)
		if shared.sentinel, err = StartSentinel(dir); err != nil {
			tb.Fatal(err)
		}
	}
	return shared.sentinel
}

// StopShared stops what SharedCluster and SharedSentinel started.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	if shared.sentinel != nil {
		shared.sentinel.Stop()
	}
	for _, d := range shared.dirs {
		_ = os.RemoveAll(d)
	}
}

// ACLServer is a single redis-server with the service's ACL user.
type ACLServer struct {
	node
	Addr string
	// URL reaches it as the ACL user.
	URL string
}

// StartWithACL starts it, with args added to the command line (--maxmemory 2mb, ...).
func StartWithACL(dir string, args ...string) (*ACLServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: %s", InstallHint)
	}
	acl, err := aclFile(dir, false)
	if err != nil {
		return nil, err
	}
	port, err := freeport.Pick("tcp")
	if err != nil {
		return nil, err
	}
	s := &ACLServer{node: node{Port: port}}
	s.Addr = s.addr()
	if s.cmd, err = startProcess(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "no", "--aclfile", acl}, args...)...); err != nil {
		return nil, err
	}
	if err := wait.Until(5*time.Second, func() error { _, err := command(s.Addr, "PING"); return err }); err != nil {
		s.Stop()
		return nil, err
	}
	u := url.URL{Scheme: "redis", User: url.UserPassword(User, Password), Host: s.Addr}
	s.URL = u.String()
	return s, nil
}

// Command runs one command as the administrator (the test's own view of Redis) and returns
// its reply as text.
func (s *ACLServer) Command(args ...string) (string, error) { return command(s.Addr, args...) }

// Denied is what the ACL LOG of every data node (and sentinel) holds: what the service's user
// was refused. Empty when the documented ACL was enough.
func Denied(addrs ...string) (string, error) {
	var out strings.Builder
	for _, addr := range addrs {
		log, err := command(addr, "ACL", "LOG")
		if err != nil {
			return "", err
		}
		if log != "" {
			fmt.Fprintf(&out, "%s: %s\n", addr, log)
		}
	}
	return out.String(), nil
}

// Addrs are the addresses of the running nodes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		if n.cmd != nil {
			out = append(out, n.addr())
		}
	}
	return out
}

// Addrs are the addresses of the data nodes and the sentinels.
func (s *Sentinel) Addrs() []string {
	out := []string{s.Primary.addr(), s.Replica.addr()}
	for _, n := range s.Sentinels {
		out = append(out, n.addr())
	}
	return out
}
