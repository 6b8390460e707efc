package testsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// tcLog keeps what testcontainers says (its default logger writes every
// container step to stderr of every test binary). It is shown when a run
// fails, and by go test -v: see Log.
var tcLog = &logBuffer{}

func init() { tclog.SetDefault(tcLog) }

// logBuffer is a testcontainers logger that keeps the last lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

const logKeep = 200

func (l *logBuffer) Printf(format string, v ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, v...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == logKeep {
		l.lines = append(l.lines[:0], l.lines[1:]...)
	}
	l.lines = append(l.lines, line)
}

// Log returns what testcontainers logged in this binary ("" when nothing).
func Log() string {
	tcLog.mu.Lock()
	defer tcLog.mu.Unlock()
	var s string
	for _, l := range tcLog.lines {
		s += l + "\n"
	}
	return s
}

var docker struct {
	once sync.Once
	err  error
}

// Docker returns nil when a Docker engine answers testcontainers (asked
// once per binary, within 10 s, surviving a panic in the probe).
func Docker() error {
	docker.once.Do(func() { docker.err = dockerHealthy(10 * time.Second) })
	return docker.err
}

func dockerHealthy(timeout time.Duration) error {
	res := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("testcontainers panicked: %v", r)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		p, err := testcontainers.ProviderDefault.GetProvider(testcontainers.WithLogger(tcLog))
		if err != nil {
			res <- err
			return
		}
		defer p.Close()
		res <- p.Health(ctx)
	}()
	select {
	case err := <-res:
		return err
	case <-time.After(timeout + time.Second):
		return fmt.Errorf("no answer within %s", timeout)
	}
}

// startContainer starts the shared container of service and returns its
// URL (for PostgreSQL an admin URL).
func startContainer(ctx context.Context, service string) (string, func(), error) {
	img := image(os.Getenv, service)
	var (
		c   testcontainers.Container
		url string
		err error
	)
	switch service {
	case postgres:
		var pg *tcpostgres.PostgresContainer
		pg, err = tcpostgres.Run(ctx, img, testcontainers.WithLogger(tcLog),
			tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("nexus"),
			tcpostgres.BasicWaitStrategies())
		if pg != nil {
			c = pg
		}
		if err == nil {
			url, err = pg.ConnectionString(ctx, "sslmode=disable")
		}
	case redisSvc:
		var rc *tcredis.RedisContainer
		rc, err = tcredis.Run(ctx, img, testcontainers.WithLogger(tcLog))
		if rc != nil {
			c = rc
		}
		if err == nil {
			url, err = rc.ConnectionString(ctx)
		}
	default:
		return "", nil, fmt.Errorf("no container for %q", service)
	}
	var stop func()
	if c != nil {
		stop = func() { _ = testcontainers.TerminateContainer(c) }
	}
	if err != nil {
		return "", stop, fmt.Errorf("%s (%s): %w", service, img, err)
	}
	return url, stop, nil
}

// RedisContainer is a Redis of one test, in a container, that the test may
// kill and restart on the same address (a Redis outage). DEBUG is enabled
// (DEBUG SLEEP freezes it); nothing is persisted.
type RedisContainer struct {
	c    testcontainers.Container
	host string
	port string
}

// StartRedis starts a RedisContainer, or fails when no Docker engine
// answers or the container does not start.
func StartRedis(ctx context.Context) (*RedisContainer, error) {
	if err := Docker(); err != nil {
		return nil, fmt.Errorf("no Docker engine answers for testcontainers: %s", firstLine(err.Error()))
	}
	var lastErr error
	// The host port is chosen here, not by Docker, so that a restarted
	// container is on the same address; a port taken meanwhile is retried.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r, err := startRedisOn(ctx, port)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRedisOn(ctx context.Context, port string) (*RedisContainer, error) {
	img := image(os.Getenv, redisSvc)
	p := network.MustParsePort("6379/tcp")
	rc, err := tcredis.Run(ctx, img, testcontainers.WithLogger(tcLog),
		testcontainers.WithCmd("redis-server", "--save", "", "--appendonly", "no", "--enable-debug-command", "yes"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{p: {{HostIP: netip.Addr{}, HostPort: port}}}
		}))
	if err != nil {
		if rc != nil {
			_ = testcontainers.TerminateContainer(rc)
		}
		return nil, fmt.Errorf("redis container (%s): %w", img, err)
	}
	host, err := rc.Host(ctx)
	if err != nil {
		_ = testcontainers.TerminateContainer(rc)
		return nil, err
	}
	return &RedisContainer{c: rc, host: host, port: port}, nil
}

// URL is the address of the Redis, the same after Restart.
func (r *RedisContainer) URL() string {
	return "redis://" + net.JoinHostPort(r.host, r.port) + "/0"
}

// Kill stops the Redis at once (no grace period), as a crash would.
func (r *RedisContainer) Kill(ctx context.Context) error {
	zero := time.Duration(0)
	return r.c.Stop(ctx, &zero)
}

// Restart starts the killed Redis again, empty, on the same address, and
// returns when it answers.
func (r *RedisContainer) Restart(ctx context.Context) error {
	if err := r.c.Start(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		err := ping(ctx, redisSvc, r.URL())
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the restarted Redis does not answer: %w", errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Terminate removes the container.
func (r *RedisContainer) Terminate() error { return testcontainers.TerminateContainer(r.c) }

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
