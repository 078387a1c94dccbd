// Command gateway is the OpenAI-compatible model gateway whose access control
// is an embedded Rego policy. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/regate/gateway/cmd/gateway/app"
)

func main() {
	startProfiling()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}
