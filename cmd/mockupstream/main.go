// Command mockupstream serves the gateway's OpenAI-compatible fake provider
// (package gateway/mock) over HTTP, for demos, end-to-end tests and load
// tests without a real provider.
//
// Usage:
//
//	mockupstream [--listen 127.0.0.1:8081] [--latency 0s] [--chunk-delay 0s] [--chunks 5]
//
// --listen falls back to $MOCK_LISTEN. Requests can steer each answer with
// x-mock-* headers; see package gateway/mock.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream:", err)
		os.Exit(1)
	}
}
