// Command bareproxy is test tooling: the baseline the gateway's real binary
// is benchmarked against (tests/process_bare_bench_test.go builds it). It
// is nothing but the reverse proxy of tests/internal/bare: an
// httputil.ReverseProxy whose Rewrite sends every request to one upstream,
// with the default FlushInterval and the gateway's idle-connection pool.
//
//	bareproxy -listen 127.0.0.1:8080 -upstream http://127.0.0.1:9090
package main

import (
	"log"

	"github.com/regate/gateway/tests/internal/bare"
)

func main() {
	listen, rp := bare.FromFlags("bareproxy")
	log.Fatal(bare.Server(listen, rp).ListenAndServe())
}
