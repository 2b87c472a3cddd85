//go:build deploy

package deploy_test

import (
	"context"
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/livekittest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// knownVariables are the environment variables the service reads.
func knownVariables() []string { return config.Variables() }

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  "..",
		ConfigFiles: []types.ConfigFile{{Filename: "../docker-compose.yml"}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("token-service", true) })
	if err != nil {
		t.Fatalf("docker compose would refuse docker-compose.yml: %v", err)
	}
	return project
}

func TestComposeStack(t *testing.T) {
	project := loadCompose(t)
	services := project.Services
	for _, name := range []string{"livekit", "redis", "token-service"} {
		svc, ok := services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		if svc.Image != "" && (!strings.Contains(svc.Image, ":") || strings.HasSuffix(svc.Image, ":latest")) {
			t.Errorf("%s image %q is not pinned to a version", name, svc.Image)
		}
	}
	if img, want := services["livekit"].Image, "livekit/livekit-server:"+livekittest.Version; img != want {
		t.Errorf("LiveKit image %q, want the version the tests run (%s)", img, want)
	}
	if !slices.Contains(services["livekit"].Command, "--dev") {
		t.Errorf("LiveKit runs %v, want --dev", services["livekit"].Command)
	}
	ts := services["token-service"]
	if ts.Build == nil || ts.Build.Context == "" {
		t.Error("token-service is not built from the Dockerfile")
	}
	if hc := ts.HealthCheck.Test; !slices.Equal(hc, []string{"CMD", "/token-service", "healthcheck"}) {
		t.Errorf("token-service healthcheck %v", hc)
	}
	for _, dep := range []string{"livekit", "redis"} {
		if d, ok := ts.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("token-service does not wait for a healthy %s: %+v", dep, ts.DependsOn)
		}
	}
	published := map[string]bool{}
	for _, p := range append(ts.Ports, services["livekit"].Ports...) {
		published[p.Published] = true
	}
	for _, port := range []string{"3001", "7880"} {
		if !published[port] {
			t.Errorf("port %s is not published", port)
		}
	}
	// Every variable the stack sets is one the service reads, so a typo cannot go unnoticed, and
	// the stack's configuration loads (LiveKit's dev pair, in development).
	var environ []string
	for name, value := range ts.Environment {
		if !slices.Contains(knownVariables(), name) {
			t.Errorf("docker-compose.yml sets %s, which token-service does not read", name)
		}
		environ = append(environ, name+"="+*value)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatalf("the compose environment does not load: %v", err)
	}
	if !cfg.DevCredentials() || cfg.LiveKit.WSURL != "ws://localhost:7880" || cfg.Redis.Single == nil || cfg.Redis.Single.Addr != "redis:6379" || cfg.Redis.Single.DB != 0 {
		t.Errorf("compose does not match LiveKit --dev and the redis service: %+v", cfg)
	}
}

// instruction is one Dockerfile line, as BuildKit parses it.
type instruction struct {
	cmd   string   // lowercased: from, run, user, ...
	args  []string // the words after it
	flags []string
	json  bool // written in exec (JSON array) form
	line  string
}

func parseDockerfile(t *testing.T) [][]instruction {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	result, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("BuildKit cannot parse the Dockerfile: %v", err)
	}
	var stages [][]instruction
	for _, node := range result.AST.Children {
		in := instruction{cmd: strings.ToLower(node.Value), flags: node.Flags, json: node.Attributes["json"], line: node.Original}
		for n := node.Next; n != nil; n = n.Next {
			in.args = append(in.args, n.Value)
		}
		if in.cmd == "from" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

func find(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// buildCommand is the Dockerfile's own `go build` line.
func buildCommand(t *testing.T, stages [][]instruction) string {
	t.Helper()
	for _, in := range find(stages[0], "run") {
		if strings.Contains(in.args[0], "go build") {
			return in.args[0]
		}
	}
	t.Fatal("the build stage has no RUN ... go build")
	return ""
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	build := buildCommand(t, stages)
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(build, flag) {
			t.Errorf("the build does not use %s: %s", flag, build)
		}
	}
	final := stages[len(stages)-1]
	base := find(final, "from")[0].args[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final stage is %s, want distroless static or scratch", base)
	}
	users := find(final, "user")
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1].args[0], "root") || strings.HasPrefix(users[len(users)-1].args[0], "0") {
		t.Errorf("the final stage must run as a non-root user, got %v", users)
	}
	if expose := find(final, "expose"); len(expose) != 1 || expose[0].args[0] != "3001" {
		t.Errorf("EXPOSE = %v, want 3001", expose)
	}
	hc := find(final, "healthcheck")
	if len(hc) != 1 || !strings.Contains(hc[0].line, `CMD ["/token-service", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK = %v, want the binary's own healthcheck subcommand", hc)
	}
	entry := find(final, "entrypoint")
	if len(entry) != 1 || !entry[0].json || entry[0].args[0] != "/token-service" {
		t.Errorf("ENTRYPOINT = %v", entry)
	}
}

// The image's binary, built as the Dockerfile builds it, starts and passes its healthcheck in an
// empty root (nothing but the binary, as in distroless static) as the image's non-root user.
func TestBinaryRunsInAnEmptyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to chroot (scripts/test runs as root)")
	}
	stages := parseDockerfile(t)
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	build := strings.ReplaceAll(buildCommand(t, stages), "${VERSION}", "deploy-test")
	build = strings.ReplaceAll(build, "/out/token-service", filepath.Join(root, "token-service"))
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	bin, err := elf.Open(filepath.Join(root, "token-service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; the image has none")
		}
	}
	bin.Close()

	// The image's environment (ENV lines), then what an operator adds.
	environ := []string{}
	for _, in := range find(stages[len(stages)-1], "env") {
		for i := 0; i+1 < len(in.args); i += 2 {
			environ = append(environ, in.args[i]+"="+in.args[i+1])
		}
	}
	port := testenv.FreePort(t)
	environ = append(environ, "PORT="+strconv.Itoa(port), "LIVEKIT_API_KEY=APIprod",
		"LIVEKIT_API_SECRET=production-secret-0123456789abcdef-xyz", "LIVEKIT_WS_URL=wss://lk.example.com")
	inImage := func(args ...string) *exec.Cmd {
		c := exec.Command("/token-service", args...)
		c.Env = environ
		// Distroless "nonroot" is uid/gid 65532.
		c.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		return c
	}
	if out, err := inImage("version").Output(); err != nil || !strings.HasPrefix(string(out), "token-service deploy-test") {
		t.Fatalf("version: %q %v", out, err)
	}
	if err := inImage("healthcheck").Run(); err == nil {
		t.Fatal("healthcheck passed with no service running")
	}
	service := inImage()
	var logs strings.Builder
	service.Stdout, service.Stderr = &logs, &logs
	if err := service.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = service.Process.Signal(syscall.SIGTERM)
		_ = service.Wait()
	}()
	if err := wait.Until(5*time.Second, func() error { return inImage("healthcheck").Run() }); err != nil {
		t.Fatalf("healthcheck: %v; service log:\n%s", err, logs.String())
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", port))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ready: %v %v", resp, err)
	}
	resp.Body.Close()
}
