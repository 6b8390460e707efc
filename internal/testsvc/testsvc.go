// Package testsvc finds the PostgreSQL and Redis servers that tests run
// against, the same way for every test binary (internal packages through
// storetest, and the e2e suite):
//
//  1. the environment: NEXUS_TEST_DATABASE_URL (an admin URL: tests create
//     databases of their own through it) and NEXUS_TEST_REDIS_URL; a server
//     named there that does not answer is an error, not a skip;
//  2. else testcontainers, when a Docker engine answers (images
//     NEXUS_TEST_POSTGRES_IMAGE, default postgres:16-alpine, and
//     NEXUS_TEST_REDIS_IMAGE, default redis:7-alpine); a container that does
//     not start (an image that cannot be pulled, …) leaves that service out,
//     with the reason;
//  3. else none, with the reason: the tests that need it skip, or fail under
//     NEXUS_TEST_REQUIRE_SERVICES=1.
//
// Only test code imports this package.
package testsvc

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Services are the servers found for one test binary. A URL is "" when the
// service is missing, and the matching No* field says why.
type Services struct {
	PostgresURL  string // admin URL: fresh databases are created through it
	PostgresFrom string // where it came from, for messages
	NoPostgres   string

	RedisURL  string
	RedisFrom string
	NoRedis   string
}

// Required reports NEXUS_TEST_REQUIRE_SERVICES=1: a missing service fails
// the tests that need it instead of skipping them.
func Required() bool { return os.Getenv("NEXUS_TEST_REQUIRE_SERVICES") == "1" }

// Service names, as finder.start and finder.ping take them.
const (
	postgres = "postgres"
	redisSvc = "redis"
)

// finder holds what Find depends on, so that a test can stand in for the
// environment, the Docker engine and the containers.
type finder struct {
	getenv func(string) string
	// docker returns nil when a Docker engine answers.
	docker func() error
	// start starts a container of service and returns its URL and a
	// function that removes it.
	start func(ctx context.Context, service string) (url string, stop func(), err error)
	ping  func(ctx context.Context, service, url string) error
}

var realFinder = finder{getenv: os.Getenv, docker: Docker, start: startContainer, ping: ping}

// find picks both services in the package's order. The returned stop
// removes the containers it started; err is set only when a server named in
// the environment does not answer.
func (f finder) find(ctx context.Context) (Services, func(), error) {
	var s Services
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, c := range []struct {
		service         string
		url, from, none *string
	}{
		{postgres, &s.PostgresURL, &s.PostgresFrom, &s.NoPostgres},
		{redisSvc, &s.RedisURL, &s.RedisFrom, &s.NoRedis},
	} {
		r := f.findOne(ctx, c.service)
		if r.stop != nil {
			stops = append(stops, r.stop)
		}
		if r.err != nil {
			stop()
			return Services{}, func() {}, r.err
		}
		*c.url, *c.from, *c.none = r.url, r.from, r.none
	}
	return s, stop, nil
}

// one service found: its URL and origin, or why there is none.
type one struct {
	url, from, none string
	stop            func() // removes its container; nil when none was started
	err             error  // the environment names a server that does not answer
}

func (f finder) findOne(ctx context.Context, service string) one {
	env := "NEXUS_TEST_DATABASE_URL"
	if service == redisSvc {
		env = "NEXUS_TEST_REDIS_URL"
	}
	if u := f.getenv(env); u != "" {
		if err := f.ping(ctx, service, u); err != nil {
			return one{err: fmt.Errorf("%s does not answer: %v", env, err)}
		}
		return one{url: u, from: env}
	}
	if err := f.docker(); err != nil {
		return one{none: fmt.Sprintf("%s is not set and no Docker engine answers for testcontainers (%s)", env, firstLine(err.Error()))}
	}
	u, stop, err := f.start(ctx, service)
	if err != nil {
		// Docker answers but the container did not come up (an image that
		// cannot be pulled, …): the run goes on without it.
		return one{stop: stop, none: fmt.Sprintf("%s is not set and its testcontainers container did not start: %s", env, firstLine(err.Error()))}
	}
	return one{url: u, from: "testcontainers " + image(f.getenv, service), stop: stop}
}

var shared struct {
	mu    sync.Mutex
	found map[string]*one
	stops []func()
}

// get finds service once per test binary, starting its container on the
// first call when needed.
func get(service string) one {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if r, ok := shared.found[service]; ok {
		return *r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := realFinder.findOne(ctx, service)
	if shared.found == nil {
		shared.found = map[string]*one{}
	}
	shared.found[service] = &r
	if r.stop != nil {
		shared.stops = append(shared.stops, r.stop)
	}
	return r
}

// Get returns both services, the same answer to every caller of the test
// binary; err is set when the environment names a server that does not
// answer.
func Get() (Services, error) {
	s, err := GetPostgres()
	if err != nil {
		return s, err
	}
	r, err := GetRedis()
	s.RedisURL, s.RedisFrom, s.NoRedis = r.RedisURL, r.RedisFrom, r.NoRedis
	return s, err
}

// GetPostgres is Get for PostgreSQL alone (its Redis fields are empty): a
// package that needs no Redis starts no Redis container.
func GetPostgres() (Services, error) {
	r := get(postgres)
	return Services{PostgresURL: r.url, PostgresFrom: r.from, NoPostgres: r.none}, r.err
}

// GetRedis is Get for Redis alone (its PostgreSQL fields are empty).
func GetRedis() (Services, error) {
	r := get(redisSvc)
	return Services{RedisURL: r.url, RedisFrom: r.from, NoRedis: r.none}, r.err
}

// Stop removes the containers Get started (testcontainers' reaper would
// remove them when the binary exits anyway; this is sooner). Call it from
// TestMain after m.Run.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for i := len(shared.stops) - 1; i >= 0; i-- {
		shared.stops[i]()
	}
	shared.stops = nil
}

func ping(ctx context.Context, service, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if service == redisSvc {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		c := redis.NewClient(opt)
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(url)))
	defer db.Close()
	return db.PingContext(ctx)
}

// image is the container image of service, from the environment or the
// default.
func image(getenv func(string) string, service string) string {
	name, def := "NEXUS_TEST_POSTGRES_IMAGE", "postgres:16-alpine"
	if service == redisSvc {
		name, def = "NEXUS_TEST_REDIS_IMAGE", "redis:7-alpine"
	}
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
