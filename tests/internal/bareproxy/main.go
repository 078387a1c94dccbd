// Command bareproxy is test tooling: the baseline the gateway's real binary
// is benchmarked against (tests/process_bare_bench_test.go builds it). It
// is nothing but an httputil.ReverseProxy whose Rewrite sends every request
// to one upstream, with the default FlushInterval (event streams are flushed
// as they come). Its transport is http.DefaultTransport's with the gateway's
// idle-connection pool (proxy.NewTransport: 1,024 idle connections, 256 per
// host), so that both keep their upstream connections under the same load
// instead of the baseline redialling.
//
//	bareproxy -listen 127.0.0.1:8080 -upstream http://127.0.0.1:9090
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "", "base URL of the upstream")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("bareproxy: -upstream %q is not a URL", *upstream)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = ""
		},
		Transport: t,
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
