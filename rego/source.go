package rego

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing/fstest"
	"time"
)

// MaxBundleBytes caps the size of one bundle: a directory's files, a
// tarball's unpacked contents, or a bundle-service response.
const MaxBundleBytes = 64 << 20

// Kinds of bundle source.
const (
	SourceDir     = "dir"
	SourceTarball = "tarball"
	SourceURL     = "url"
)

// ErrNotModified means a source's bundle has not changed since it was last
// read.
var ErrNotModified = errors.New("bundle not modified")

// source is one configured bundle location: a directory, an OPA bundle
// tarball (.tar.gz) or an OPA bundle-service URL. It remembers what it last
// read, so that a poll reads only what changed.
type source struct {
	loc  string // as configured
	kind string

	// stat is the last file-system fingerprint (names, sizes, mod times) of a
	// directory or tarball; a poll with the same fingerprint reads nothing.
	stat string
	// digest is the content digest of the last bundle read.
	digest string
	// etag is the bundle service's ETag of the last bundle read.
	etag string
	// good is the last bundle that loaded; nil until one did. Guarded by
	// Engine.loadMu, as is loadErr.
	good fs.FS
	// loadErr is the error of the last attempt to load a new bundle.
	loadErr error

	interval time.Duration // URL poll interval

	// mu guards the polling and fetch state below. One fetch of a source
	// runs at a time, in a goroutine of its own (watch.go), and only that
	// goroutine touches stat, digest and etag.
	mu        sync.Mutex
	next      time.Time    // earliest next poll of a URL
	failures  int          // consecutive failed polls, for the backoff
	fetchErr  error        // last fetch error, nil after a good fetch
	running   bool         // a fetch (and the load of what it read) is under way
	startedAt time.Time    // when the running fetch started
	again     bool         // a reload came while running: fetch again after it
	waiters   []chan error // told the outcome of the running fetch
	pending   []chan error // told the outcome of the fetch after it
}

// parseSource classifies a bundle location. It stats files, so that a
// mistyped path is reported when the gateway starts.
func parseSource(loc string) (*source, error) {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		u, err := url.Parse(loc)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("bundle %s: not a valid URL", redactURL(loc))
		}
		return &source{loc: loc, kind: SourceURL}, nil
	}
	if strings.Contains(loc, "://") {
		return nil, fmt.Errorf("bundle %s: only http and https URLs are supported", redactURL(loc))
	}
	st, err := os.Stat(loc)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if st.IsDir() {
		return &source{loc: loc, kind: SourceDir}, nil
	}
	if strings.HasSuffix(loc, ".tar.gz") || strings.HasSuffix(loc, ".tgz") {
		return &source{loc: loc, kind: SourceTarball}, nil
	}
	return nil, fmt.Errorf("bundle %s: not a directory or a .tar.gz bundle", loc)
}

// name is the source as shown in status and logs: URLs without user info,
// query or fragment (which may hold credentials).
func (s *source) name() string {
	if s.kind == SourceURL {
		return redactURL(s.loc)
	}
	return s.loc
}

func redactURL(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// fetch reads the source's bundle. It returns ErrNotModified when nothing
// changed since the last read, unless force is set (then a file source is
// read again; a URL is still asked with its ETag).
func (s *source) fetch(ctx context.Context, client *http.Client, force bool) (fs.FS, error) {
	var (
		fsys fs.FS
		err  error
	)
	switch s.kind {
	case SourceDir:
		fsys, err = s.fetchDir(force)
	case SourceTarball:
		fsys, err = s.fetchTarball(force)
	default:
		fsys, err = s.fetchURL(ctx, client)
	}
	if err != nil {
		return nil, err
	}
	d := digestFS(fsys.(fstest.MapFS))
	if d == s.digest && !force {
		return nil, ErrNotModified
	}
	s.digest = d
	return fsys, nil
}

// fetchDir snapshots a directory into memory, so that a bundle is compiled
// from one consistent read even while an editor writes to it.
func (s *source) fetchDir(force bool) (fs.FS, error) {
	fp, err := statDir(s.loc)
	if err != nil {
		return nil, err
	}
	if fp == s.stat && !force {
		return nil, ErrNotModified
	}
	m := fstest.MapFS{}
	var total int64
	err = filepath.WalkDir(s.loc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != s.loc && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// A Kubernetes ConfigMap or Secret volume holds its files as
			// symlinks into a ..data directory (skipped above): follow
			// links to files, not to directories.
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > MaxBundleBytes {
			return fmt.Errorf("bundle %s is larger than %d bytes", s.loc, MaxBundleBytes)
		}
		rel, err := filepath.Rel(s.loc, p)
		if err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", s.loc, err)
	}
	s.stat = fp
	return m, nil
}

// skipDir leaves out version-control and editor folders, and the "..data"
// and "..2026_…" folders behind a Kubernetes ConfigMap or Secret volume,
// whose files are read through their symlinks instead.
func skipDir(name string) bool {
	return name == ".git" || name == ".hg" || name == ".svn" || name == ".idea" || name == ".vscode" ||
		strings.HasPrefix(name, "..")
}

// statDir fingerprints a directory tree by names, sizes and mod times.
func statDir(root string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// The target's size and time: a ConfigMap update swaps the
			// ..data link and leaves the file links as they were.
			if st, err := os.Stat(p); err == nil {
				info = st
			}
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read bundle %s: %w", root, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *source) fetchTarball(force bool) (fs.FS, error) {
	info, err := os.Stat(s.loc)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	fp := fmt.Sprintf("%d\x00%d", info.Size(), info.ModTime().UnixNano())
	if fp == s.stat && !force {
		return nil, ErrNotModified
	}
	f, err := os.Open(s.loc)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	defer f.Close()
	m, err := untar(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", s.loc, err)
	}
	s.stat = fp
	return m, nil
}

// fetchURL asks the bundle service for the bundle with If-None-Match. The
// caller's ctx carries the fetch deadline (Config.FetchTimeout): it bounds
// the request, the answer and its body.
func (s *source) fetchURL(ctx context.Context, client *http.Client) (fs.FS, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.loc, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle %s: %w", s.name(), err)
	}
	req.Header.Set("Accept", "application/gzip, application/octet-stream")
	if s.etag != "" {
		req.Header.Set("If-None-Match", s.etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error text may quote the URL; name the source instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("fetch bundle %s: %w", s.name(), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, ErrNotModified
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("fetch bundle %s: HTTP %d", s.name(), resp.StatusCode)
	}
	m, err := untar(io.LimitReader(resp.Body, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch bundle %s: %w", s.name(), err)
	}
	s.etag = resp.Header.Get("ETag")
	return m, nil
}

// untar unpacks a gzipped bundle tarball into memory. Paths are cleaned of a
// leading "/" or "./" (opa build writes "/.manifest"); paths that climb out
// of the bundle are refused.
func untar(r io.Reader) (fstest.MapFS, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzipped tarball: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	m := fstest.MapFS{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tarball: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" || name == "." || strings.HasPrefix(h.Name, "../") || strings.Contains(h.Name, "/../") {
			return nil, fmt.Errorf("tarball entry %q is outside the bundle", h.Name)
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(tr, MaxBundleBytes-total+1))
		if err != nil {
			return nil, fmt.Errorf("read tarball entry %s: %w", name, err)
		}
		if total += n; total > MaxBundleBytes {
			return nil, fmt.Errorf("bundle is larger than %d bytes", MaxBundleBytes)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("tarball holds %s twice", name)
		}
		m[name] = &fstest.MapFile{Data: buf.Bytes(), Mode: 0o444}
	}
	return m, nil
}

// digestFS is a content digest of an in-memory bundle.
func digestFS(m fstest.MapFS) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(m[n].Data))
		h.Write(m[n].Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
