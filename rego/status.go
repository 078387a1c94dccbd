package rego

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status describes the policy now serving and the last failure to replace
// it: for GET /admin/policy/status, logs and metrics.
type Status struct {
	// Revision is Engine.Revision: the serving bundles' revisions joined.
	Revision string
	// Source lists the bundles' sources, joined with ",".
	Source string
	// LoadedAt is when the serving policy was swapped in.
	LoadedAt time.Time
	// LastError is the last failure to read, verify, compile, check or test
	// a bundle; empty when there was none since the engine started.
	LastError string
	// LastErrorAt is when LastError happened; zero when there was none.
	LastErrorAt time.Time
	// Reloads counts policies swapped in after the first.
	Reloads uint64
	// Failures counts refused bundles and failed fetches.
	Failures uint64
	// Bundles describes each serving bundle.
	Bundles []BundleStatus
	// Fetching lists the sources being fetched right now; empty when none
	// is. A fetch that hangs shows here until Config.FetchTimeout ends it.
	Fetching []FetchStatus
}

// FetchStatus is a fetch of a bundle source under way.
type FetchStatus struct {
	// Source is the source as in BundleInfo.Source.
	Source string `json:"source"`
	// StartedAt is when the fetch started.
	StartedAt time.Time `json:"started_at"`
}

// BundleStatus is one serving bundle with the last failure of its source.
type BundleStatus struct {
	BundleInfo
	// LoadedAt is when the bundle was first loaded at its revision.
	LoadedAt time.Time
	// LastError is the last failure to fetch or load a new version of this
	// bundle; empty when its last fetch and load succeeded.
	LastError string
	// LastErrorAt is when LastError happened; zero when LastError is empty.
	LastErrorAt time.Time
}

// MarshalJSON writes the status in DESIGN §10.12's shape: snake_case names,
// RFC 3339 times, null for a time that never happened.
func (s Status) MarshalJSON() ([]byte, error) {
	fetching := make([]FetchStatus, len(s.Fetching))
	for i, f := range s.Fetching {
		fetching[i] = FetchStatus{Source: f.Source, StartedAt: f.StartedAt.UTC()}
	}
	return json.Marshal(struct {
		Revision    string         `json:"revision"`
		Source      string         `json:"source"`
		LoadedAt    *time.Time     `json:"loaded_at"`
		LastError   string         `json:"last_error"`
		LastErrorAt *time.Time     `json:"last_error_at"`
		Reloads     uint64         `json:"reloads"`
		Failures    uint64         `json:"failures"`
		Bundles     []BundleStatus `json:"bundles"`
		Fetching    []FetchStatus  `json:"fetching"`
	}{s.Revision, s.Source, timeOrNil(s.LoadedAt), s.LastError, timeOrNil(s.LastErrorAt), s.Reloads, s.Failures, s.Bundles, fetching})
}

// MarshalJSON writes a bundle's status with snake_case names.
func (b BundleStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name        string     `json:"name"`
		Source      string     `json:"source"`
		Revision    string     `json:"revision"`
		Roots       []string   `json:"roots"`
		LoadedAt    *time.Time `json:"loaded_at"`
		LastError   string     `json:"last_error"`
		LastErrorAt *time.Time `json:"last_error_at"`
	}{b.Name, b.Source, b.Revision, b.Roots, timeOrNil(b.LoadedAt), b.LastError, timeOrNil(b.LastErrorAt)})
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// statusTracker counts loads and failures and keeps the per-source errors.
type statusTracker struct {
	reloads  atomic.Uint64
	failures atomic.Uint64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	perSource map[string]sourceError
}

// sourceError is the last failure of one source.
type sourceError struct {
	msg string
	at  time.Time
}

// loaded counts a swap; the first load is not a reload.
func (t *statusTracker) loaded(reload bool) {
	if reload {
		t.reloads.Add(1)
	}
}

// failed counts a refused bundle or a failed fetch.
func (t *statusTracker) failed(err error) {
	t.failures.Add(1)
	t.mu.Lock()
	t.lastErr, t.lastErrAt = err.Error(), time.Now()
	t.mu.Unlock()
}

// setSource records (err != nil) or clears the error of a source.
func (t *statusTracker) setSource(name string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		delete(t.perSource, name)
		return
	}
	if t.perSource == nil {
		t.perSource = map[string]sourceError{}
	}
	t.perSource[name] = sourceError{msg: err.Error(), at: time.Now()}
}

// Status reports the serving policy and the last failures. It is cheap and
// safe to call concurrently (for metrics scrapes).
func (e *Engine) Status() Status {
	st := e.cur.Load()
	s := Status{
		Revision: st.revision,
		LoadedAt: st.loadedAt,
		Reloads:  e.status.reloads.Load(),
		Failures: e.status.failures.Load(),
		Bundles:  make([]BundleStatus, len(st.bundles)),
		Fetching: e.fetching(),
	}
	srcs := make([]string, len(st.bundles))
	e.status.mu.Lock()
	s.LastError, s.LastErrorAt = e.status.lastErr, e.status.lastErrAt
	for i, b := range st.bundles {
		srcs[i] = b.Source
		bs := BundleStatus{BundleInfo: b, LoadedAt: st.bundleLoaded[i]}
		bs.Roots = append([]string(nil), b.Roots...)
		if se, ok := e.status.perSource[b.Source]; ok {
			bs.LastError, bs.LastErrorAt = se.msg, se.at
		}
		s.Bundles[i] = bs
	}
	e.status.mu.Unlock()
	s.Source = strings.Join(srcs, ",")
	return s
}
