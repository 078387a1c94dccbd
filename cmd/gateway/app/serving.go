package app

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of the serving limits (DESIGN §13).
const (
	// DefaultReadHeaderTimeout bounds the time a client may take to send
	// its request headers (and, over TLS, the handshake).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers; larger
	// requests get 431.
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request.
	DefaultIdleTimeout = 2 * time.Minute

	// minMaxHeaderBytes is the smallest header limit accepted: below it
	// ordinary clients (long tokens, trace headers) would be refused.
	minMaxHeaderBytes = 8 << 10
	// headerSlack is what net/http reads beyond Server.MaxHeaderBytes
	// before it answers 431; Start subtracts it so that the configured
	// limit is the one clients meet.
	headerSlack = 4096
)

// Serving are the listener's settings: TLS and the limits on clients.
// Zero values mean the defaults. None of the limits cuts a long stream:
// there is no write timeout and no whole-request read timeout.
type Serving struct {
	// TLSCertFile and TLSKeyFile are a PEM certificate (chain) and its key;
	// both set means HTTPS with HTTP/2, neither means plain HTTP/1.1.
	// ReloadCertificate (SIGHUP) reads them again.
	TLSCertFile, TLSKeyFile string
	// ReadHeaderTimeout bounds reading the request headers and the TLS
	// handshake; default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers, answered 431
	// beyond; default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// IdleTimeout closes a keep-alive connection that has no request for
	// that long; default DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// TLS reports whether s serves HTTPS.
func (s Serving) TLS() bool { return s.TLSCertFile != "" || s.TLSKeyFile != "" }

func (s Serving) withDefaults() Serving {
	if s.ReadHeaderTimeout <= 0 {
		s.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.MaxHeaderBytes < minMaxHeaderBytes {
		s.MaxHeaderBytes = minMaxHeaderBytes
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	return s
}

// servingFlags are the TLS and client-limit flags of serve.
type servingFlags struct {
	s *Serving
	// err is an invalid environment value, reported after flag parsing.
	err error
}

// addServingFlags registers --tls-cert, --tls-key, --read-header-timeout,
// --max-header-bytes and --idle-timeout with their environment fallbacks,
// parsed into s.
func addServingFlags(fset *flag.FlagSet, getenv func(string) string, s *Serving) *servingFlags {
	f := &servingFlags{s: s}
	*s = Serving{ReadHeaderTimeout: DefaultReadHeaderTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes, IdleTimeout: DefaultIdleTimeout}
	fset.StringVar(&s.TLSCertFile, "tls-cert", getenv("GATEWAY_TLS_CERT"), "TLS certificate file (PEM)")
	fset.StringVar(&s.TLSKeyFile, "tls-key", getenv("GATEWAY_TLS_KEY"), "TLS private key file (PEM)")
	for _, d := range []struct {
		name, env string
		v         *time.Duration
	}{
		{"read-header-timeout", "GATEWAY_READ_HEADER_TIMEOUT", &s.ReadHeaderTimeout},
		{"idle-timeout", "GATEWAY_IDLE_TIMEOUT", &s.IdleTimeout},
	} {
		if v := getenv(d.env); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				f.err = errors.Join(f.err, fmt.Errorf("%s=%q: want a positive duration such as 10s", d.env, v))
			} else {
				*d.v = t
			}
		}
		fset.DurationVar(d.v, d.name, *d.v, d.name)
	}
	if v := getenv("GATEWAY_MAX_HEADER_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.err = errors.Join(f.err, fmt.Errorf("GATEWAY_MAX_HEADER_BYTES=%q: want a number of bytes", v))
		} else {
			s.MaxHeaderBytes = n
		}
	}
	fset.IntVar(&s.MaxHeaderBytes, "max-header-bytes", s.MaxHeaderBytes, "request header bytes")
	return f
}

// validate checks the values after parsing.
func (f *servingFlags) validate() error {
	err := f.err
	s := f.s
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		err = errors.Join(err, errors.New("--tls-cert and --tls-key (GATEWAY_TLS_CERT, GATEWAY_TLS_KEY) go together: set both for HTTPS, or neither"))
	}
	if s.ReadHeaderTimeout <= 0 || s.IdleTimeout <= 0 {
		err = errors.Join(err, errors.New("--read-header-timeout and --idle-timeout must be positive"))
	}
	if s.MaxHeaderBytes < minMaxHeaderBytes {
		err = errors.Join(err, fmt.Errorf("--max-header-bytes must be at least %d", minMaxHeaderBytes))
	}
	return err
}

// certFiles serves the certificate of a key pair of files. Reload swaps a
// new one in for the handshakes that follow; connections already open keep
// the certificate they were served, so their requests and streams finish
// undisturbed.
type certFiles struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertFiles reads the key pair; an error names the files.
func loadCertFiles(certFile, keyFile string) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again and serves them on success; on error the
// previous certificate stays.
func (c *certFiles) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s, key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&cert)
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// logAttrs describe the certificate being served.
func (c *certFiles) logAttrs() []any {
	cert := c.cur.Load()
	if cert == nil || cert.Leaf == nil {
		return nil
	}
	l := cert.Leaf
	return []any{"subject", l.Subject.String(), "dns_names", l.DNSNames, "serial", l.SerialNumber.String(), "not_after", l.NotAfter}
}

// tlsConfig serves the current certificate of c. net/http adds the h2 and
// http/1.1 protocols.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate}
}

// TLS reports whether the gateway serves HTTPS.
func (g *Gateway) TLS() bool { return g.cert != nil }

// ReloadCertificate reads the TLS key pair files again and serves the new
// certificate on new connections; open connections, streams included,
// finish on the one they were served. On error the previous certificate
// keeps serving. Without TLS it does nothing.
func (g *Gateway) ReloadCertificate() error {
	if g.cert == nil {
		return nil
	}
	return g.cert.reload()
}

// reloadOnHUP reloads the TLS certificate and the policy bundles on each
// SIGHUP until ctx ends. Each reload that fails leaves its previous state
// serving; one failing does not stop the other, and a policy reload
// waiting on a slow bundle source does not delay the next signal.
func reloadOnHUP(ctx context.Context, g *Gateway, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if g.TLS() {
					log.Info("SIGHUP: reloading the TLS certificate")
					if err := g.ReloadCertificate(); err != nil {
						log.Error("tls certificate reload failed; the previous certificate keeps serving", "error", err)
					} else {
						log.Info("tls certificate reloaded: new connections get it", g.cert.logAttrs()...)
					}
				}
				// In a goroutine of its own: a bundle source that hangs (up
				// to its fetch timeout) must not hold up the next SIGHUP.
				// Reloads that overlap share the fetches under way.
				log.Info("SIGHUP: reloading policy bundles")
				go func() {
					if err := g.Engine.Reload(ctx); err != nil {
						log.Error("policy reload failed; the previous policy keeps serving", "error", err)
					}
				}()
			}
		}
	}()
}
