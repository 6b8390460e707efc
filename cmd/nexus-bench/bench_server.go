package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/nexus-fintech/nexus/internal/app"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
)

// benchMasterKey is a fixed, public test key (base64 of 32 bytes): the
// bench databases are throw-away and hold nothing secret.
const benchMasterKey = "bmV4dXMtYmVuY2gtbWFzdGVyLWtleS0wMDAwMDAwMDA=" // "nexus-bench-master-key-000000000"

// benchMetricsToken lets the bench read the server's /metrics (a loopback
// server of its own: a public value is harmless).
const benchMetricsToken = "nexus-bench-metrics-token"

// benchServer is a running server on a loopback port.
type benchServer struct {
	Addr string // 127.0.0.1:PORT
	PID  int    // the server's process; 0 when in this process
	stop func() error
}

func (s *benchServer) Stop() error {
	if s == nil || s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop()
}

// benchConfig is the server the bench measures: nexus serve's defaults,
// except what the bench needs (a logger at warn, its test keys, limits no
// load from one IP can trip).
func benchConfig(dbURL, addr, redisURL string, logw io.Writer) app.Config {
	return app.Config{
		DatabaseURL: dbURL, Listen: addr, Issuer: "http://" + addr, RedisURL: redisURL,
		MasterKey: benchMasterKey, MetricsToken: benchMetricsToken,
		Environments: []nexus.Environment{nexus.Live, nexus.Test},
		JWTAudience:  "nexus-api", InternalAudience: "nexus-internal",
		// The benchmark hammers one IP; it must not trip the lockouts.
		IPLimit: 1_000_000_000, FailedAuthLimit: 1_000_000_000,
		PasswordChecks: oauth.DefaultPasswordChecks(), AccessLog: "on",
		ExpiryWarningInterval: time.Minute, KeyCacheSize: auth.DefaultCacheSize,
		AuditRetention: audit.DefaultRetention, IdemAbandoned: time.Minute,
		Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// childArg, as the first argument, makes nexus-bench the server of a run
// (started by startSubprocess): DATABASE_URL ADDR REDIS_URL follow.
const childArg = "serve-child"

// runChild is the server side of startSubprocess: it serves until SIGTERM.
func runChild(args []string) int {
	if len(args) != 3 {
		fmt.Fprintf(os.Stderr, "nexus-bench %s: want DATABASE_URL ADDR REDIS_URL\n", childArg)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.Open(ctx, benchConfig(args[0], args[1], args[2], os.Stderr))
	if err == nil {
		err = a.Run(ctx)
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nexus-bench server: %v\n", err)
		return 1
	}
	return 0
}

// startSubprocess runs the server in a child process (this binary again),
// so that the server and the load generator do not share a Go runtime.
func startSubprocess(ctx context.Context, dbURL, redisURL string, logw io.Writer) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, childArg, dbURL, addr, redisURL)
	// The server's whole configuration is benchConfig: no NEXUS_* variable
	// of the caller's may change what is measured.
	cmd.Env = withoutNexusEnv(os.Environ())
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	setBenchProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	logDone := make(chan struct{})
	go func() { defer close(logDone); copyServerLog(stderr, logw) }()
	exited := make(chan error, 1)
	go func() { <-logDone; exited <- cmd.Wait() }()

	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("server exited: %v", err)
			}
			return err
		case <-time.After(35 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("server did not stop within 35 s of SIGTERM; killed")
		}
	}
	if err := waitReady(ctx, addr, exited); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return &benchServer{Addr: addr, PID: cmd.Process.Pid, stop: stop}, nil
}

// startInProcess runs the server in this process (for --cpuprofile: one
// profile then covers the server's code).
func startInProcess(ctx context.Context, dbURL, redisURL string, logw io.Writer) (*benchServer, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	a, err := app.Open(ctx, benchConfig(dbURL, addr, redisURL, logw))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	exited := make(chan error, 1)
	go func() {
		// Every server goroutine inherits the label: -tagfocus bench=server.
		pprof.Do(sctx, pprof.Labels("bench", "server"), func(sctx context.Context) {
			err := a.Run(sctx)
			if cerr := a.Close(); err == nil {
				err = cerr
			}
			exited <- err
		})
	}()
	stop := func() error {
		cancel()
		select {
		case err := <-exited:
			return err
		case <-time.After(35 * time.Second):
			return errors.New("in-process server did not stop within 35 s")
		}
	}
	if err := waitReady(ctx, addr, exited); err != nil {
		cancel()
		return nil, err
	}
	return &benchServer{Addr: addr, stop: stop}, nil
}

// waitReady polls /readyz until the server answers 200.
func waitReady(ctx context.Context, addr string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("server did not start: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("server not ready after 60 s")
		}
	}
}

// freeLoopbackAddr asks the kernel for a free port on 127.0.0.1.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func withoutNexusEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NEXUS_") {
			out = append(out, kv)
		}
	}
	return out
}

// copyServerLog forwards the server's log lines (warnings and errors only,
// at --log-level warn), prefixed, up to a limit; the rest are counted.
func copyServerLog(r io.Reader, w io.Writer) {
	const maxLines = 20
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		if n <= maxLines {
			fmt.Fprintf(w, "  server: %s\n", sc.Text())
		}
	}
	if n > maxLines {
		fmt.Fprintf(w, "  server: … %d more log lines not shown\n", n-maxLines)
	}
}

// serverLog is an io.Writer for the in-process server's log with the same
// prefix and limit as a subprocess's.
type serverLog struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	n   int
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.n++
		if l.n <= 20 {
			fmt.Fprintf(l.w, "  server: %s\n", l.buf[:i])
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// benchPG is the fresh PostgreSQL database of a run.
type benchPG struct {
	URL   string
	name  string
	admin *sql.DB
}

// createPostgresDB makes a fresh database nexus_bench_<random> through the
// admin URL; Drop removes it.
func createPostgresDB(ctx context.Context, adminURL string) (*benchPG, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("--postgres-url must be a postgres:// URL")
	}
	if h := u.Hostname(); h != "localhost" && h != "" {
		if err := loopbackOnly(net.JoinHostPort(h, "0")); err != nil {
			return nil, fmt.Errorf("--postgres-url: the benchmark only talks to loopback: %w", err)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "nexus_bench_" + hex.EncodeToString(b[:])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminURL)))
	admin.SetMaxOpenConns(1)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	nu := *u
	nu.Path = "/" + name
	return &benchPG{URL: nu.String(), name: name, admin: admin}, nil
}

// Drop removes the database (the server must be stopped).
func (p *benchPG) Drop() error {
	defer p.admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+p.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", p.name, err)
	}
	return nil
}

// Sessions is how many connections were ever opened to the database
// (pg_stat_database.sessions, PostgreSQL 14+; flushed within about a
// second). -1 when unknown.
func (p *benchPG) Sessions() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n sql.NullInt64
	if err := p.admin.QueryRowContext(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = $1", p.name).Scan(&n); err != nil || !n.Valid {
		return -1
	}
	return n.Int64
}
