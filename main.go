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
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/logging"
	"github.com/token-service/token-service/token"
)

func main() {
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

// run is the whole service with its inputs passed in, so tests start exactly what ships. It
// returns nil after a clean shutdown once ctx is cancelled.
func run(ctx context.Context, environ []string, logOut io.Writer) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel) // validated by Load
	log := logging.New(logOut, level, !cfg.Production())
	for _, warning := range cfg.Warnings {
		log.Warn().Msg(warning)
	}

	issuer := token.NewIssuer(cfg.APIKey, cfg.APISecret.Reveal(), cfg.WSURL, cfg.DefaultTTL(), cfg.MaxTTL())
	readiness := &handlers.Readiness{}
	srv := &http.Server{
		Handler:           handlers.NewRouter(cfg, issuer, readiness, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          stdlog.New(log, "", 0),
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr()) // a busy port fails here, not in a goroutine
	if err != nil {
		return err
	}
	log.Info().Str("addr", ln.Addr().String()).Str("env", cfg.AppEnv).Msg("listening")

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	// Report not-ready first and keep serving, so the load balancer stops sending new requests
	// before the listener closes.
	readiness.Drain()
	log.Info().Dur("delay", cfg.ShutdownDelay()).Msg("shutting down: not ready")
	select {
	case <-time.After(cfg.ShutdownDelay()):
	case err := <-served:
		return err
	}
	// ctx is cancelled already, so the drain needs a deadline of its own.
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout())
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		return fmt.Errorf("drain in-flight requests: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}
