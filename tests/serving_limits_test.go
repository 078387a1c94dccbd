package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// pausedStream answers streamed chat calls with n chunks, pausing before
// the chunk at index pauseAt for pause: a silence longer than the client
// limits under test.
func pausedStream(n, pauseAt int, pause time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range n {
			if i == pauseAt {
				select {
				case <-time.After(pause):
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
			_ = rc.Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		_ = rc.Flush()
	})
}

// TestServingLimits runs the real binary with a 1s header timeout and a
// 1s idle timeout (and the default 1 MiB header limit): a client sending
// its headers byte by byte is cut after about a second, headers over 1 MiB
// get 431 while headers just under pass, idle keep-alive connections are
// closed after about a second, and a stream with a silence longer than
// both timeouts completes. After each, readiness is 200 and the process's
// goroutines are back to their baseline.
func TestServingLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	up := startUpstream(t)
	up.setHandler(pausedStream(6, 3, 2500*time.Millisecond))
	const timeout = time.Second
	g := runGateway(t, bin, opsConfig, up.URL, "--read-header-timeout", timeout.String(), "--idle-timeout", timeout.String())
	base := "http://" + g.addr
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	g.ready(t, probe, base)
	base0 := baseline(t, probe, base)

	// closedWithin reads c until the server closes it and reports how long
	// that took from start, and what it had sent.
	closedWithin := func(c net.Conn, start time.Time) (time.Duration, []byte, error) {
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		b, err := io.ReadAll(c)
		if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
			return 0, b, errors.New("the server did not close the connection within 15s")
		}
		return time.Since(start), b, nil
	}

	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		head := "GET /health/readiness HTTP/1.1\r\nHost: gateway\r\nUser-Agent: slowloris\r\nX-Padding: " + strings.Repeat("a", 40) + "\r\n\r\n"
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			// A byte every 100 ms: the headers would take 10 s.
			for i := range len(head) {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{head[i]}); err != nil {
					return
				}
			}
		}()
		took, got, err := closedWithin(c, start)
		if err != nil {
			t.Fatal(err)
		}
		if took < timeout*8/10 || took > timeout+2*time.Second {
			t.Errorf("slow headers: the connection closed after %v, want about %v", took, timeout)
		}
		// net/http may say 400 before it closes; never an answer to the
		// request itself.
		if len(got) != 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) && !bytes.HasPrefix(got, []byte("HTTP/1.1 408 ")) {
			t.Errorf("slow headers were answered %q, want the connection closed", got)
		}
		g.healthy(t, probe, base, base0)
	})

	t.Run("header bytes", func(t *testing.T) {
		const limit = 1 << 20
		// The request line and the other headers take well under 2 KiB.
		tests := []struct {
			name string
			size int
			want int
		}{
			{"just under 1 MiB", limit - 2<<10, http.StatusOK},
			{"over 1 MiB", limit + 2<<10, http.StatusRequestHeaderFieldsTooLarge},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/health/readiness", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-Big", strings.Repeat("b", tc.size))
				resp, err := probe.Do(req)
				if err != nil {
					t.Fatalf("GET with %d header bytes: %v", tc.size, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("GET with a %d-byte header = %d, want %d", tc.size, resp.StatusCode, tc.want)
				}
			})
		}
		g.healthy(t, probe, base, base0)
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		const conns = 20
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", g.addr)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				fmt.Fprintf(c, "GET /health/readiness HTTP/1.1\r\nHost: gateway\r\nUser-Agent: idle-%d\r\n\r\n", i)
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Close {
					errs <- fmt.Errorf("connection %d: status %d, close %v; want 200 kept alive", i, resp.StatusCode, resp.Close)
					return
				}
				idleFrom := time.Now()
				_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
				rest, err := io.ReadAll(br)
				took := time.Since(idleFrom)
				if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
					errs <- fmt.Errorf("connection %d: still open after 15s idle", i)
					return
				}
				if len(rest) != 0 || took < timeout*8/10 || took > timeout+3*time.Second {
					errs <- fmt.Errorf("connection %d: closed after %v idle with %q, want about %v and nothing", i, took, rest, timeout)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		g.healthy(t, probe, base, base0)
	})

	t.Run("long stream", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(opsChatBody("gpt-4o", true)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+opsKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("stream cut after %v: %v; got %q", time.Since(start), err, tail(b, 200))
		}
		if resp.StatusCode != http.StatusOK || bytes.Count(b, []byte("data: ")) != 7 || !bytes.HasSuffix(bytes.TrimSpace(b), []byte("data: [DONE]")) {
			t.Errorf("stream = %d, %d events, end %q; want 200, 6 chunks and [DONE]", resp.StatusCode, bytes.Count(b, []byte("data: ")), tail(b, 200))
		}
		if took := time.Since(start); took < 2*timeout {
			t.Errorf("stream took %v, want longer than both timeouts (%v) for the test to mean anything", took, timeout)
		}
		g.healthy(t, probe, base, base0)
	})
}
