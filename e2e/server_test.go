package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one `nexus serve` subprocess.
type Server struct {
	URL  string // http://127.0.0.1:PORT (https:// when it serves TLS)
	Addr string // 127.0.0.1:PORT

	// client reaches it (trusting its certificate when it serves TLS).
	client *http.Client

	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done

	stopOnce sync.Once
	stopErr  error
	stopTook time.Duration
}

// errKilled is Stop's answer when it had to kill the process.
var errKilled = errors.New("did not exit within 10 s of SIGTERM; killed")

// startServer starts `nexus serve` for backend b on a free loopback port with
// JSON logs and extra environment, and waits until /healthz answers. A port
// taken between choosing and binding it is retried.
func startServer(b *Backend, name string, extra []string, args ...string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env := []string{"NEXUS_LISTEN=" + addr, "NEXUS_LOG_FORMAT=json", "NEXUS_METRICS_TOKEN=" + metricsToken}
		if b.RedisURL != "" {
			env = append(env, "NEXUS_REDIS_URL="+b.RedisURL)
		}
		s, err := launch(b.dir, b.env(append(env, extra...)...), addr, append([]string{"serve"}, args...)...)
		if err == nil {
			err = s.waitListening(20 * time.Second)
		}
		if err == nil {
			return s, nil
		}
		lastErr = fmt.Errorf("%s: %w", name, err)
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

// metricsToken opens /metrics of every server startServer starts.
const metricsToken = "e2e-metrics-token-0123456789"

// scrape reads s's /metrics.
func scrape(t testing.TB, s *Server) *Response {
	t.Helper()
	return do(t, "GET", s.URL+"/metrics", bearer(metricsToken), nil)
}

// launch starts the binary with args and waits for GET /healthz on addr.
func launch(dir string, env []string, addr string, args ...string) (*Server, error) {
	return launchWith(dir, env, "http://"+addr, &http.Client{Timeout: time.Second}, args...)
}

// launchWith starts the binary with args and waits for GET base/healthz
// through client.
func launchWith(dir string, env []string, base string, client *http.Client, args ...string) (*Server, error) {
	addr := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	s := &Server{URL: base, Addr: addr, client: client, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(nexusBin, args...)
	s.cmd.Dir = dir
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitHealthy(20 * time.Second); err != nil {
		s.kill()
		return nil, fmt.Errorf("%v\nstderr:\n%s", err, s.stderr.String())
	}
	return s, nil
}

func (s *Server) waitHealthy(timeout time.Duration) error {
	c := s.client
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("nexus serve exited before answering: %v", s.err)
		default:
		}
		resp, err := c.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("GET /healthz did not answer 200 within %s", timeout)
}

// waitListening waits for the server's ready signal of cache invalidation
// (its log line): the listener empties the caches once when it starts, so a
// test that counts cache misses must not cache anything before it.
func (s *Server) waitListening(timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); !strings.Contains(s.stderr.String(), "cache invalidation: listening"); {
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("the cache invalidation listener did not start within %s\nstderr:\n%s", timeout, tail(s.stderr.String(), 4000))
		}
		select {
		case <-s.done:
			return fmt.Errorf("nexus serve exited before listening: %v", s.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop sends SIGTERM and waits up to 10 s for the process to exit; it
// returns the exit error (nil for status 0). Later calls return the same.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		start := time.Now()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.stopErr = err
		}
		select {
		case <-s.done:
			if s.stopErr == nil {
				s.stopErr = s.err
			}
		case <-time.After(10 * time.Second):
			s.kill()
			s.stopErr = errKilled
		}
		s.stopTook = time.Since(start)
	})
	return s.stopErr
}

// stopAndCheck stops the server and lists what went wrong: a non-zero exit,
// log lines that are not JSON, and ERROR log entries (each of them is an
// internal error some request ran into).
func (s *Server) stopAndCheck() []string {
	var problems []string
	if err := s.Stop(); err != nil {
		problems = append(problems, fmt.Sprintf("exit after SIGTERM: %v\nstderr:\n%s", err, tail(s.stderr.String(), 4000)))
	}
	for _, line := range s.LogLines() {
		if line.Raw != "" {
			problems = append(problems, "log line is not JSON (NEXUS_LOG_FORMAT=json): "+line.Raw)
			continue
		}
		if line.Fields["level"] == "ERROR" {
			b, _ := json.Marshal(line.Fields)
			problems = append(problems, "ERROR logged: "+string(b))
		}
	}
	return problems
}

// Logs is everything the server wrote to stderr so far.
func (s *Server) Logs() string { return s.stderr.String() }

// Stdout is everything the server wrote to stdout so far.
func (s *Server) Stdout() string { return s.stdout.String() }

// LogLine is one stderr line: its JSON fields, or Raw when it is not JSON.
type LogLine struct {
	Fields map[string]any
	Raw    string
}

// LogLines parses the server's stderr.
func (s *Server) LogLines() []LogLine {
	var out []LogLine
	sc := bufio.NewScanner(strings.NewReader(s.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var f map[string]any
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			out = append(out, LogLine{Raw: line})
			continue
		}
		out = append(out, LogLine{Fields: f})
	}
	return out
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// syncBuffer is a bytes.Buffer safe for a writing process and reading tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
