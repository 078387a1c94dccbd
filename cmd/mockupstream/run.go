package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// defaultListen is the listen address when neither --listen nor MOCK_LISTEN
// is set.
const defaultListen = "127.0.0.1:8081"

// shutdownGrace bounds how long open streams may finish after a signal.
const shutdownGrace = 10 * time.Second

// run parses args, serves the mock until ctx is done, then shuts down
// gracefully. It logs one line to stdout once it listens.
func run(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("mockupstream", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := defaultListen
	if v := getenv("MOCK_LISTEN"); v != "" {
		listen = v
	}
	var cfg mock.Config
	fs.StringVar(&listen, "listen", listen, "address to listen on (env MOCK_LISTEN)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "wait before the first byte of every answer")
	fs.DurationVar(&cfg.ChunkDelay, "chunk-delay", 0, "wait between stream chunks")
	fs.IntVar(&cfg.Chunks, "chunks", mock.DefaultChunks, "content chunks per stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.Latency < 0 || cfg.ChunkDelay < 0 || cfg.Chunks < 1 {
		return errors.New("--latency and --chunk-delay must not be negative and --chunks must be at least 1")
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))
	srv := &http.Server{
		Handler:           mock.New(cfg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("mock upstream listening", "addr", ln.Addr().String(),
		"latency", cfg.Latency, "chunk_delay", cfg.ChunkDelay, "chunks", cfg.Chunks)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
