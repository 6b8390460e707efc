// Package e2e holds the end-to-end tests of Nexus: they build the real
// binary, run `nexus serve` as a subprocess against real databases and talk
// to it over HTTP, and drive the operator CLI (`nexus admin`, `nexus
// migrate`) the way an operator would.
//
// Every test runs against every available backend: SQLite, always (a
// temporary file), and PostgreSQL when internal/testsvc finds one, in the
// order every test binary of the module uses: the admin URL in
// NEXUS_TEST_DATABASE_URL (for example
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), else a
// testcontainers container when a Docker engine answers (image
// NEXUS_TEST_POSTGRES_IMAGE, default postgres:16-alpine), else none, with
// the reason printed. Redis likewise: NEXUS_TEST_REDIS_URL, else a container
// (NEXUS_TEST_REDIS_IMAGE, default redis:7-alpine). A container that does
// not start (an image that cannot be pulled) leaves its service out, with
// the reason, as if there were no Docker.
//
// Each run creates a fresh PostgreSQL database (nexus_e2e_<random>) and
// drops it at the end. The PostgreSQL backend's servers run on the Redis;
// the SQLite backend's run without it, except in the Redis scenarios (the
// fleet tests), which use it on both backends. The Redis outage tests start
// a Redis of their own: a redis-server process, else a container. With
// NEXUS_TEST_REQUIRE_SERVICES=1 a missing PostgreSQL or Redis fails the run
// instead of leaving those subtests skipped.
//
// Each test sends its requests from a loopback address of its own
// (127.R.x.y, R drawn per run; see sourceIP), so that tests failing
// authentication on purpose do not trip each other's failed-attempt lockout.
// Servers log JSON; a server that exits non-zero after SIGTERM or logs an
// ERROR fails the test that started it (or the run, for the shared ones).
// -short skips the slowest test.
//
//	go test ./e2e/
//	NEXUS_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' \
//	NEXUS_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test ./e2e/
package e2e
