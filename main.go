// Command token-service issues and verifies LiveKit access tokens over HTTP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/logging"
	"github.com/token-service/token-service/policy"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		os.Exit(subcommand(os.Args[1], os.Environ()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "token-service:", err)
		if errors.Is(err, config.ErrInvalid) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// tuneGC trades memory the service has to spare for CPU: its live heap is a few MiB, so the
// default GOGC=100 collects every few thousand requests. Collecting at 5x the live heap, but
// before 24 MiB, cut CPU per request by a quarter under load while peak RSS stayed under 40 MiB
// (docs/performance.md). GOGC or GOMEMLIMIT in the environment win (the runtime read them).
func tuneGC(cfg config.Config) {
	if !cfg.GoGCSet {
		debug.SetGCPercent(400)
	}
	if !cfg.GoMemLimitSet {
		debug.SetMemoryLimit(24 << 20)
	}
}

// run is the whole service with its inputs passed in, so tests start exactly what ships. It
// returns nil after a clean shutdown once ctx is cancelled.
func run(ctx context.Context, environ []string, logOut io.Writer) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	tuneGC(cfg)
	level := cfg.LogLevel
	// Only the access log is buffered (it is most of the volume); start-up lines, warnings and
	// errors are written at once, so none is lost however the process ends.
	accessSink := logging.NewBufferedWriter(logOut, 100*time.Millisecond)
	defer accessSink.Close()
	log := logging.New(logOut, level, !cfg.Production())
	redis.SetLogger(logging.Printf{Log: log, Component: "redis"})

	deps, closeDeps, err := app.New(ctx, cfg, version, log, logging.New(accessSink, level, !cfg.Production()))
	if err != nil {
		return err
	}
	defer closeDeps()
	// Registered here, before anything listens: an unhandled SIGHUP would end the process.
	hangup := make(chan os.Signal, 1)
	signal.Notify(hangup, syscall.SIGHUP)
	defer signal.Stop(hangup)
	go reloadPolicyOnHangup(ctx, hangup, deps.Policy, log)
	servers := []*http.Server{newServer(handlers.NewRouter(deps), log)}
	addrs := []string{cfg.ListenAddr()}
	if addr := cfg.MetricsAddr(); addr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", deps.Metrics.Handler())
		servers, addrs = append(servers, newServer(mux, log)), append(addrs, addr)
	}
	var listeners []net.Listener
	for _, addr := range addrs { // a busy port fails here, not in a goroutine
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			return err
		}
		log.Info().Str("addr", ln.Addr().String()).Str("env", cfg.Env).Msg("listening")
		listeners = append(listeners, ln)
	}

	served := make(chan error, len(servers))
	for i, s := range servers {
		go func() { served <- s.Serve(listeners[i]) }()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	// Report not-ready first and keep serving, so the load balancer stops sending new requests
	// before the listener closes.
	deps.Readiness.Drain()
	log.Info().Dur("delay", cfg.ShutdownDelay).Msg("shutting down: not ready")
	select {
	case <-time.After(cfg.ShutdownDelay):
	case err := <-served:
		return err
	}
	// ctx is cancelled already, so the drain needs a deadline of its own.
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(drainCtx); err != nil {
			return fmt.Errorf("drain in-flight requests: %w", err)
		}
	}
	log.Info().Msg("stopped")
	return nil
}

// reloadPolicyOnHangup reloads POLICY_FILE on every SIGHUP until ctx ends. A file with problems
// changes nothing: the policy in use stays, and the problems are logged.
func reloadPolicyOnHangup(ctx context.Context, hangup <-chan os.Signal, engine *policy.Engine, log zerolog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangup:
			p, err := engine.Reload()
			if err != nil {
				log.Error().Err(err).Msg("policy reload failed: keeping the policy in use")
				continue
			}
			log.Info().Str("policy", p.Source).Msg("grant policy reloaded")
			for _, warning := range p.Warnings {
				log.Warn().Msg("policy: " + warning)
			}
		}
	}
}

// newServer is an HTTP server with timeouts, so slow clients cannot hold it.
func newServer(handler http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    4 * handlers.MaxHeaderBytes, // a backstop: the router refuses past 16 KiB, in JSON
		ErrorLog:          stdlog.New(log, "", 0),
	}
}

// subcommand runs what the container image needs without a shell or curl, and returns the exit
// status: "version", and "healthcheck", which succeeds only when /health answers 200.
func subcommand(name string, environ []string) int {
	switch name {
	case "version":
		fmt.Printf("token-service %s (%s)\n", version, runtime.Version())
		return 0
	case "healthcheck":
		err := healthcheck(environ)
		switch {
		case errors.Is(err, config.ErrInvalid):
			fmt.Fprintln(os.Stderr, "token-service:", err)
			return 2
		case err != nil:
			fmt.Fprintln(os.Stderr, "unhealthy:", err)
			return 1
		}
		return 0
	case "policy":
		return policyCommand(os.Args[2:], environ, os.Stdin, os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "usage: token-service [version|healthcheck|policy]\n")
		return 2
	}
}

// healthcheck asks /health of the service that this environment configures, on loopback when it
// listens on every interface.
func healthcheck(environ []string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	host := cfg.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, strconv.Itoa(cfg.Port)) + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %d", resp.StatusCode)
	}
	return nil
}
