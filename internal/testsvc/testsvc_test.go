package testsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeFinder stands in for the environment, the Docker engine and the
// containers; it records what was started and stopped.
type fakeFinder struct {
	env       map[string]string
	dockerErr error
	startErr  map[string]error // by service
	pingErr   map[string]error // by service
	started   []string
	stopped   []string
}

func (f *fakeFinder) finder() finder {
	return finder{
		getenv: func(k string) string { return f.env[k] },
		docker: func() error { return f.dockerErr },
		start: func(_ context.Context, service string) (string, func(), error) {
			f.started = append(f.started, service)
			stop := func() { f.stopped = append(f.stopped, service) }
			if err := f.startErr[service]; err != nil {
				return "", stop, err
			}
			return "container://" + service, stop, nil
		},
		ping: func(_ context.Context, service, _ string) error { return f.pingErr[service] },
	}
}

func TestFindFromEnvironment(t *testing.T) {
	f := &fakeFinder{env: map[string]string{
		"NEXUS_TEST_DATABASE_URL": "postgres://pg", "NEXUS_TEST_REDIS_URL": "redis://r",
	}, dockerErr: errors.New("must not be asked")}
	s, stop, err := f.finder().find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if s.PostgresURL != "postgres://pg" || s.RedisURL != "redis://r" || s.NoPostgres != "" || s.NoRedis != "" {
		t.Fatalf("services %+v, want both from the environment", s)
	}
	if len(f.started) != 0 {
		t.Fatalf("containers started although the environment names both servers: %v", f.started)
	}
}

// A server named in the environment that does not answer is an error, and
// the containers already started are removed.
func TestFindEnvironmentNotAnswering(t *testing.T) {
	f := &fakeFinder{env: map[string]string{"NEXUS_TEST_REDIS_URL": "redis://r"},
		pingErr: map[string]error{"redis": errors.New("connection refused")}}
	_, _, err := f.finder().find(context.Background())
	if err == nil || !strings.Contains(err.Error(), "NEXUS_TEST_REDIS_URL does not answer") {
		t.Fatalf("err %v, want NEXUS_TEST_REDIS_URL does not answer", err)
	}
	if len(f.started) != len(f.stopped) {
		t.Fatalf("started %v, stopped %v: a container was left behind", f.started, f.stopped)
	}
}

func TestFindNoDocker(t *testing.T) {
	f := &fakeFinder{dockerErr: errors.New("Cannot connect to the Docker daemon\nmore")}
	s, _, err := f.finder().find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.PostgresURL != "" || s.RedisURL != "" {
		t.Fatalf("services %+v without Docker or environment", s)
	}
	for _, why := range []string{s.NoPostgres, s.NoRedis} {
		if !strings.Contains(why, "no Docker engine answers") || !strings.Contains(why, "Cannot connect") || strings.Contains(why, "more") {
			t.Errorf("reason %q: want the missing engine and the first line of its error", why)
		}
	}
}

// Docker answers but an image cannot be pulled: that service is left out
// with the reason, the other one still comes from its container, and the
// run goes on (no error).
func TestFindPullFails(t *testing.T) {
	f := &fakeFinder{env: map[string]string{"NEXUS_TEST_POSTGRES_IMAGE": "postgres:nope"},
		startErr: map[string]error{"postgres": errors.New("pull access denied for postgres:nope")}}
	s, stop, err := f.finder().find(context.Background())
	if err != nil {
		t.Fatalf("a container that does not start aborted the run: %v", err)
	}
	if s.PostgresURL != "" || !strings.Contains(s.NoPostgres, "pull access denied") {
		t.Errorf("postgres %q (%q), want none with the pull error as the reason", s.PostgresURL, s.NoPostgres)
	}
	if s.RedisURL != "container://redis" || s.RedisFrom != "testcontainers redis:7-alpine" {
		t.Errorf("redis %q from %q, want the container", s.RedisURL, s.RedisFrom)
	}
	stop()
	if strings.Join(f.stopped, ",") != "redis,postgres" {
		t.Errorf("stopped %v, want every container removed (the failed one too), last first", f.stopped)
	}
}

// With PostgreSQL in the environment and no Redis, Redis comes from a
// container: NEXUS_TEST_REQUIRE_SERVICES=1 runs then have both.
func TestFindMixed(t *testing.T) {
	f := &fakeFinder{env: map[string]string{"NEXUS_TEST_DATABASE_URL": "postgres://pg"}}
	s, _, err := f.finder().find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.PostgresFrom != "NEXUS_TEST_DATABASE_URL" || s.RedisURL != "container://redis" || strings.Join(f.started, ",") != "redis" {
		t.Fatalf("services %+v, started %v: want PostgreSQL from the environment and a Redis container", s, f.started)
	}
}

func TestLogBufferKeepsTheLastLines(t *testing.T) {
	l := &logBuffer{}
	for i := 0; i < logKeep+5; i++ {
		l.Printf("line %d", i)
	}
	if len(l.lines) != logKeep || !strings.HasSuffix(l.lines[0], "line 5") || !strings.HasSuffix(l.lines[logKeep-1], "line 204") {
		t.Fatalf("kept %d lines, first %q, last %q", len(l.lines), l.lines[0], l.lines[len(l.lines)-1])
	}
}
