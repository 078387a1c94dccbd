// Package bare is the reverse proxy the benchmarks' baselines are made of
// (tests/internal/bareproxy, tests/internal/floorproxy): an
// httputil.ReverseProxy whose Rewrite sends every request to one upstream,
// with the default FlushInterval (event streams are flushed as they come).
// Its transport is http.DefaultTransport's with the gateway's
// idle-connection pool (proxy.NewTransport: 1,024 idle connections, 256 per
// host), so that both keep their upstream connections under the same load
// instead of the baseline redialling.
package bare

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Proxy is the reverse proxy to upstream, a base URL.
func Proxy(upstream string) (*httputil.ReverseProxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-upstream %q is not a URL", upstream)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = ""
		},
		Transport: t,
	}, nil
}

// Server serves h on addr as both baselines do.
func Server(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// FromFlags parses both commands' flags, -listen and -upstream, and returns
// the address to listen on and the proxy to the upstream; a bad -upstream
// ends the command with a message naming it.
func FromFlags(command string) (listen string, rp *httputil.ReverseProxy) {
	addr := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "", "base URL of the upstream")
	flag.Parse()
	rp, err := Proxy(*upstream)
	if err != nil {
		log.Fatalf("%s: %v", command, err)
	}
	return *addr, rp
}
