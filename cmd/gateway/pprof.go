//go:build pprof

package main

import (
	"net/http"
	"net/http/pprof"
	"os"
)

// startProfiling serves net/http/pprof on GATEWAY_PPROF (an address such as
// 127.0.0.1:6060) when the binary is built with -tags pprof, to profile the
// real binary under load. Release builds leave this file out.
func startProfiling() {
	addr := os.Getenv("GATEWAY_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
