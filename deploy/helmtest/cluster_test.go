//go:build deploy

package helmtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeAPIServerScript builds (once, then cached outside the repo) the pinned kube-apiserver and
// prints its path.
const kubeAPIServerScript = "../helm/kube-apiserver.sh"

// adminToken is the bearer token of the test's system:masters user (--token-auth-file).
const adminToken = "helmtest-admin-token"

// process is a server the test started, stopped by its PID when the test ends.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
	log    string     // its combined output, shown when it fails
}

// start runs bin with args, its output to a file in dir, and stops it by PID in t.Cleanup:
// SIGTERM, then SIGKILL if it has not exited 10 s later.
func start(t *testing.T, name, dir, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan error, 1), log: logPath}
	go func() { p.exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	})
	return p
}

// waitUntil polls ok every 100 ms until it holds, the process exits, or timeout passes.
func (p *process) waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	began := time.Now()
	for i := 0; i < int(timeout/(100*time.Millisecond)); i++ {
		if ok() {
			t.Logf("%s %s after %v", p.name, what, time.Since(began).Round(time.Millisecond))
			return
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("%s exited before it was %s (%v):\n%s", p.name, what, err, tail(p.log))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s not %s within %v:\n%s", p.name, what, timeout, tail(p.log))
}

// tail is the end of a log, for a failure message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePort is a loopback port free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEtcd runs Debian's etcd on loopback with its data in a temporary directory.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd not found: install Debian's etcd-server (apt-get install etcd-server; scripts/test does this)")
	}
	dir := t.TempDir()
	client := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	peer := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	p := start(t, "etcd", dir, bin, "--name", "helmtest", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "helmtest="+peer, "--log-level", "warn", "--logger", "zap")
	p.waitUntil(t, 30*time.Second, "healthy", func() bool {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return client
}

// kubeAPIServer is the pinned kube-apiserver binary, built by kube-apiserver.sh when missing.
func kubeAPIServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", kubeAPIServerScript)
	cmd.Env = append(os.Environ(), "KUBE_VERSION="+KubeVersion)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s (builds kube-apiserver %s, about 6.5 minutes cold): %v", kubeAPIServerScript, KubeVersion, err)
	}
	bin := strings.TrimSpace(string(out))
	version, err := exec.Command(bin, "--version").Output()
	if err != nil || strings.TrimSpace(string(version)) != "Kubernetes "+KubeVersion {
		t.Fatalf("%s --version = %q (%v), want Kubernetes %s", bin, version, err, KubeVersion)
	}
	return bin
}

// startKubeAPIServer runs a real kube-apiserver on 127.0.0.1 against etcd and returns its URL;
// the only client is the test, authenticated by adminToken.
func startKubeAPIServer(t *testing.T, etcd string) (url, caFile string) {
	t.Helper()
	bin := kubeAPIServer(t)
	dir := t.TempDir()
	saKey := filepath.Join(dir, "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	tokens := filepath.Join(dir, "tokens.csv")
	for path, data := range map[string][]byte{saKey: pemKey, tokens: []byte(adminToken + ",admin,admin,system:masters\n")} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	p := start(t, "kube-apiserver", dir, bin,
		"--etcd-servers="+etcd,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--token-auth-file="+tokens, "--authorization-mode=AlwaysAllow",
		// No kubelets or controllers: nothing would keep the kubernetes Service's endpoints.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false")
	url = "https://127.0.0.1:" + strconv.Itoa(port)
	// Its self-signed serving certificate appears in cert-dir once it listens.
	caFile = filepath.Join(dir, "certs", "apiserver.crt")
	client := &http.Client{Timeout: 2 * time.Second}
	p.waitUntil(t, 90*time.Second, "ready", func() bool {
		if client.Transport == nil {
			pem, err := os.ReadFile(caFile)
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				return false
			}
			client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url, caFile
}

// errNotYet marks a condition polled again.
var errNotYet = errors.New("not yet")

// poll calls f every 100 ms until it returns nil or another error than errNotYet, at most
// timeout long.
func poll(ctx context.Context, timeout time.Duration, what string, f func() error) error {
	var err error
	for i := 0; i < int(timeout/(100*time.Millisecond)); i++ {
		if err = f(); !errors.Is(err, errNotYet) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: not within %v: %w", what, timeout, err)
}
