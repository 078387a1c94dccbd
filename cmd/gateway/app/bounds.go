package app

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/regate/gateway/gateway/proxy"
	"github.com/regate/gateway/rego"
	"github.com/regate/gateway/store/postgres"
)

// Defaults of the bounds on upstreams and bundle servers (DESIGN §13).
const (
	// DefaultMaxUpstreamResponseBytes bounds the bytes read of an upstream
	// answer that is not a stream.
	DefaultMaxUpstreamResponseBytes = proxy.DefaultMaxResponseBytes
	// DefaultBundleFetchTimeout bounds one fetch of a bundle-service URL.
	DefaultBundleFetchTimeout = rego.DefaultFetchTimeout
	// DefaultDatabaseQueryTimeout bounds one operation of the PostgreSQL
	// store.
	DefaultDatabaseQueryTimeout = postgres.DefaultQueryTimeout
)

// Bounds limit what the gateway waits for and reads from the servers it
// calls, so that none of them can hold a request, a reload or memory
// without end. Zero values mean the defaults. The deployments' own
// timeout and stream_timeout (litellm_params) bound the waits on
// upstreams.
type Bounds struct {
	// MaxUpstreamResponseBytes bounds an upstream answer that is not a
	// stream: past it the answer is cut and the upstream call cancelled;
	// default DefaultMaxUpstreamResponseBytes. Streams are not bounded.
	MaxUpstreamResponseBytes int64
	// BundleFetchTimeout bounds each fetch of a bundle-service URL: a
	// server that hangs is given up on after it, without holding up the
	// other sources, later reloads or the status endpoint; default
	// DefaultBundleFetchTimeout.
	BundleFetchTimeout time.Duration
	// DatabaseQueryTimeout bounds each operation of the PostgreSQL store
	// (a key lookup, an admin write, a usage sync): a database that accepts
	// connections but stops answering fails it with 503 after this long;
	// default DefaultDatabaseQueryTimeout.
	DatabaseQueryTimeout time.Duration
}

// boundsFlags are the flags of Bounds.
type boundsFlags struct {
	b *Bounds
	// err is an invalid environment value, reported after flag parsing.
	err error
}

// addBoundsFlags registers --max-upstream-response-bytes,
// --bundle-fetch-timeout and --database-query-timeout with their
// environment fallbacks, parsed into b.
func addBoundsFlags(fset *flag.FlagSet, getenv func(string) string, b *Bounds) *boundsFlags {
	f := &boundsFlags{b: b}
	*b = Bounds{
		MaxUpstreamResponseBytes: DefaultMaxUpstreamResponseBytes,
		BundleFetchTimeout:       DefaultBundleFetchTimeout,
		DatabaseQueryTimeout:     DefaultDatabaseQueryTimeout,
	}
	if v := getenv("GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			f.err = errors.Join(f.err, fmt.Errorf("GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES=%q: want a positive number of bytes", v))
		} else {
			b.MaxUpstreamResponseBytes = n
		}
	}
	fset.Int64Var(&b.MaxUpstreamResponseBytes, "max-upstream-response-bytes", b.MaxUpstreamResponseBytes, "upstream answer bytes (not streams)")
	f.duration(getenv, "GATEWAY_BUNDLE_FETCH_TIMEOUT", &b.BundleFetchTimeout)
	fset.DurationVar(&b.BundleFetchTimeout, "bundle-fetch-timeout", b.BundleFetchTimeout, "bundle-service fetch deadline")
	f.duration(getenv, "GATEWAY_DATABASE_QUERY_TIMEOUT", &b.DatabaseQueryTimeout)
	fset.DurationVar(&b.DatabaseQueryTimeout, "database-query-timeout", b.DatabaseQueryTimeout, "PostgreSQL store operation deadline")
	return f
}

// duration reads the environment variable name into d, when it is set to
// a positive duration, and records an error otherwise.
func (f *boundsFlags) duration(getenv func(string) string, name string, d *time.Duration) {
	v := getenv(name)
	if v == "" {
		return
	}
	t, err := time.ParseDuration(v)
	if err != nil || t <= 0 {
		f.err = errors.Join(f.err, fmt.Errorf("%s=%q: want a positive duration such as 30s", name, v))
		return
	}
	*d = t
}

// validate checks the values after parsing.
func (f *boundsFlags) validate() error {
	err := f.err
	if f.b.MaxUpstreamResponseBytes <= 0 {
		err = errors.Join(err, errors.New("--max-upstream-response-bytes must be positive"))
	}
	if f.b.BundleFetchTimeout <= 0 {
		err = errors.Join(err, errors.New("--bundle-fetch-timeout must be positive"))
	}
	if f.b.DatabaseQueryTimeout <= 0 {
		err = errors.Join(err, errors.New("--database-query-timeout must be positive"))
	}
	return err
}
