package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each write it gets.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) state() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

func TestLogWriterGathersLines(t *testing.T) {
	var dst countingWriter
	lw := NewLogWriter(&dst, 300*time.Millisecond)
	start := time.Now()
	for i := range 3 {
		fmt.Fprintf(lw, "line %d\n", i)
	}
	if got, n := dst.state(); n != 0 || got != "" {
		t.Fatalf("written before the interval: %d writes, %q", n, got)
	}
	waitFor(t, "the lines to be written", func() bool { _, n := dst.state(); return n > 0 })
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("written after %v, before the 300ms interval", waited)
	}
	if got, n := dst.state(); n != 1 || got != "line 0\nline 1\nline 2\n" {
		t.Errorf("got %d writes of %q, want one write of the three lines in order", n, got)
	}

	// The timer is armed again by the next line, and Flush writes at once.
	fmt.Fprintln(lw, "line 3")
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, n := dst.state(); n != 2 || !strings.HasSuffix(got, "line 2\nline 3\n") {
		t.Errorf("after Flush: %d writes, %q", n, got)
	}
	if err := lw.Flush(); err != nil { // nothing queued: no write
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // the stopped timer does not write either
	if _, n := dst.state(); n != 2 {
		t.Errorf("%d writes, want 2: an empty flush wrote", n)
	}
}

func TestLogWriterWritesWhenFull(t *testing.T) {
	var dst countingWriter
	lw := NewLogWriter(&dst, time.Hour)
	line := strings.Repeat("x", 1023) + "\n"
	for range logFlushBytes/len(line) - 1 {
		lw.Write([]byte(line))
	}
	if _, n := dst.state(); n != 0 {
		t.Fatalf("%d writes below %d bytes", n, logFlushBytes)
	}
	lw.Write([]byte(line))
	if got, n := dst.state(); n != 1 || len(got) != logFlushBytes {
		t.Errorf("at %d bytes: %d writes of %d bytes, want one of all", logFlushBytes, n, len(got))
	}
}

func TestLogWriterUnbuffered(t *testing.T) {
	var dst countingWriter
	lw := NewLogWriter(&dst, 0)
	fmt.Fprintln(lw, "a")
	fmt.Fprintln(lw, "b")
	if got, n := dst.state(); n != 2 || got != "a\nb\n" {
		t.Errorf("interval 0: %d writes of %q, want each line at once", n, got)
	}
}

// TestLogWriterWarningsAtOnce checks that a logger on a LogWriter writes a
// warning, and the info lines queued before it, at once and in order.
func TestLogWriterWarningsAtOnce(t *testing.T) {
	for _, format := range []string{FormatJSON, FormatText} {
		t.Run(format, func(t *testing.T) {
			var dst countingWriter
			lw := NewLogWriter(&dst, time.Hour)
			log, err := NewLogger(lw, format, "debug")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("request", "n", 1)
			log.With("component", "x").Debug("detail")
			if _, n := dst.state(); n != 0 {
				t.Fatalf("info and debug written at once (%d writes)", n)
			}
			log.WithGroup("g").With("component", "x").Warn("slow upstream")
			got, n := dst.state()
			if n != 1 || strings.Count(got, "\n") != 3 {
				t.Fatalf("after a warning: %d writes of %q, want one of three lines", n, got)
			}
			if i, j, k := strings.Index(got, "request"), strings.Index(got, "detail"), strings.Index(got, "slow upstream"); i < 0 || j < i || k < j {
				t.Errorf("lines out of order: %q", got)
			}
			log.Error("failed")
			if got, n := dst.state(); n != 2 || !strings.Contains(got, "failed") {
				t.Errorf("an error was not written at once: %d writes, %q", n, got)
			}
		})
	}
}

// TestLogWriterConcurrent checks that lines from many goroutines all arrive
// whole (run with -race).
func TestLogWriterConcurrent(t *testing.T) {
	var dst countingWriter
	lw := NewLogWriter(&dst, 10*time.Millisecond)
	log, err := NewLogger(lw, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				log.Info("request", "g", g, "i", i, "pad", strings.Repeat("p", i%300))
			}
		})
	}
	wg.Wait()
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	got, n := dst.state()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != goroutines*each {
		t.Fatalf("%d lines, want %d", len(lines), goroutines*each)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") {
			t.Fatalf("a broken line: %q", l)
		}
		i := strings.Index(l, `"g":`)
		j := strings.Index(l, `,"pad"`)
		seen[l[i:j]] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct lines, want %d", len(seen), goroutines*each)
	}
	if n >= goroutines*each {
		t.Errorf("%d writes for %d lines: nothing was gathered", n, goroutines*each)
	}
}
