//go:build !pprof

package main

// startProfiling does nothing: build with -tags pprof to serve
// net/http/pprof on GATEWAY_PPROF.
func startProfiling() {}
