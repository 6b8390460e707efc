package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

const benchUsage = `usage: nexus-bench [flags]    (from a clone: go run ./cmd/nexus-bench [flags])

A bounded load benchmark. It starts the Nexus server (as nexus serve does)
on 127.0.0.1 with a fresh database, sets up a partner, an API key, HS256
and EdDSA service credentials, an OAuth client and token, a funded balance
and an address, then measures,
one scenario after the other and in several rounds, requests/s and p50/p99
latency of:

  GET /healthz (baseline, no credential)
  GET /v1/partner with an API key, a service JWT (HS256, EdDSA), an OAuth token,
    and with 1,000 and 10,000 API keys of the partner used in turn
  POST /oauth/introspect of the OAuth token by its client (RFC 7662)
  GET /v1/balances and POST /v1/requests (new withdrawal each time)

for SQLite and, when a PostgreSQL URL is given, PostgreSQL (in a fresh
database nexus_bench_<random>, dropped at the end). Every figure is also
shown as a ratio of the baseline of the same backend: the median over rounds
of the scenario's throughput over the mean of the baseline runs just before
and after it. Traffic only goes to
127.0.0.1. Any non-2xx answer counts as an error; a run with errors exits 1.

Flags:
`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	database := fs.String("database", "", "sqlite, postgres or both (default: sqlite, plus postgres when a PostgreSQL URL is set)")
	pgURL := fs.String("postgres-url", env("NEXUS_BENCH_POSTGRES_URL", env("NEXUS_TEST_DATABASE_URL", "")),
		"admin URL of a local PostgreSQL, used to create and drop the bench database [NEXUS_BENCH_POSTGRES_URL, NEXUS_TEST_DATABASE_URL]")
	conns := fs.Int("connections", 64, "concurrent keep-alive connections (closed loop: one request in flight on each)")
	duration := fs.Duration("duration", 1500*time.Millisecond, "time per scenario and round, warm-up included")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "warm-up per scenario and round, not measured")
	rounds := fs.Int("rounds", 3, "rounds: every scenario runs once per round between two runs of the baseline; ratios are medians over rounds")
	only := fs.String("scenarios", "", "comma-separated scenarios to run (default all; ratios need baseline among them): "+strings.Join(scenarioNames(), ","))
	asJSON := fs.Bool("json", false, "print machine-readable results on stdout (the table then goes to stderr)")
	serverMode := fs.String("server", "subprocess", "subprocess (the server in a child process of this binary) or inprocess")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to FILE (with --server inprocess it covers the server too)")
	check := fs.Bool("check", false, "exit 1 also when a target is missed")
	redisURL := fs.String("redis-url", env("NEXUS_BENCH_REDIS_URL", ""),
		"redis://… the server shares limits through, to measure what Redis costs (default: no Redis) [NEXUS_BENCH_REDIS_URL]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}

	opts := benchOptions{
		Connections: *conns, Warmup: *warmup, Measure: *duration - *warmup, Rounds: *rounds,
		InProcess: *serverMode == "inprocess", Log: stderr, RedisURL: *redisURL,
	}
	switch {
	case *conns < 1 || *conns > 10_000:
		return errors.New("bench: --connections must be 1 to 10000")
	case *rounds < 1 || *rounds > 100:
		return errors.New("bench: --rounds must be 1 to 100")
	case *warmup < 0 || opts.Measure < 100*time.Millisecond:
		return errors.New("bench: --duration must exceed --warmup by at least 100ms")
	case *serverMode != "subprocess" && *serverMode != "inprocess":
		return errors.New("bench: --server must be subprocess or inprocess")
	}
	if *only != "" {
		opts.Only = map[string]bool{}
		known := map[string]bool{}
		for _, n := range scenarioNames() {
			known[n] = true
		}
		for _, n := range splitList(*only) {
			if !known[n] {
				return fmt.Errorf("bench: unknown scenario %q (known: %s)", n, strings.Join(scenarioNames(), ", "))
			}
			opts.Only[n] = true
		}
	}

	var backends []string
	switch *database {
	case "":
		backends = []string{"sqlite"}
		if *pgURL != "" {
			backends = append(backends, "postgres")
		}
	case "sqlite", "postgres":
		backends = []string{*database}
	case "both":
		backends = []string{"sqlite", "postgres"}
	default:
		return errors.New("bench: --database must be sqlite, postgres or both")
	}
	for _, b := range backends {
		if b == "postgres" && *pgURL == "" {
			return errors.New("bench: postgres needs --postgres-url (or NEXUS_BENCH_POSTGRES_URL / NEXUS_TEST_DATABASE_URL)")
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	tmp, err := os.MkdirTemp("", "nexus-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	rep := &benchReport{
		Connections: *conns, Duration: duration.String(), Warmup: warmup.String(), Rounds: *rounds,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Server: *serverMode,
		StartedAt: time.Now().UTC(),
	}
	for _, b := range backends {
		var res []benchResult
		if b == "sqlite" {
			res, err = benchBackend(ctx, b, "sqlite:"+filepath.Join(tmp, "sqlite", "nexus.db"), opts, nil)
		} else {
			pg, perr := createPostgresDB(ctx, *pgURL)
			if perr != nil {
				return perr
			}
			res, err = benchBackend(ctx, b, pg.URL, opts, pg.Sessions)
			if derr := pg.Drop(); derr != nil {
				fmt.Fprintf(stderr, "bench: %v\n", derr)
			}
		}
		rep.Results = append(rep.Results, res...)
		if err != nil {
			if len(rep.Results) > 0 {
				fmt.Fprintln(stderr, "\nPartial results:")
				rep.finish()
				rep.writeTable(stderr)
			}
			return fmt.Errorf("bench (%s): %w", b, err)
		}
	}
	rep.finish()

	table := stdout
	if *asJSON {
		table = stderr
	}
	fmt.Fprintln(table)
	rep.writeTable(table)
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	}
	if n := rep.errorCount(); n > 0 {
		return fmt.Errorf("bench: %d requests failed (see the errors column)", n)
	}
	if *check && rep.missed() > 0 {
		return fmt.Errorf("bench: %d targets missed", rep.missed())
	}
	return nil
}

type benchOptions struct {
	Connections     int
	Warmup, Measure time.Duration
	Rounds          int
	InProcess       bool
	RedisURL        string          // the server's NEXUS_REDIS_URL; empty: none
	Only            map[string]bool // nil: all
	Log             io.Writer       // progress and server warnings
}

func scenarioNames() []string {
	var out []string
	for _, sc := range benchScenarios(&benchCreds{}) {
		out = append(out, sc.Name)
	}
	return out
}

// benchBackend prepares the database, starts the server, runs every
// scenario and stops the server, whatever happens. sessions, when set,
// counts the connections ever opened to the database.
func benchBackend(ctx context.Context, backend, dbURL string, o benchOptions, sessions func() int64) (_ []benchResult, err error) {
	logf := func(format string, a ...any) { fmt.Fprintf(o.Log, backend+": "+format+"\n", a...) }
	logf("preparing a fresh database")
	if n := manyKeysFor(o.Only); n > 0 {
		logf("creating %d API keys for the scenarios of many keys", n)
	}
	creds, err := setupDatabase(ctx, dbURL, manyKeysFor(o.Only))
	if err != nil {
		return nil, err
	}
	var srv *benchServer
	if o.InProcess {
		srv, err = startInProcess(ctx, dbURL, o.RedisURL, &serverLog{w: o.Log})
	} else {
		srv, err = startSubprocess(ctx, dbURL, o.RedisURL, o.Log)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("stopping the server: %w", serr)
		}
	}()
	logf("server on %s; creating service credentials, funding, address", srv.Addr)
	if err := setupAPI(ctx, srv.Addr, creds); err != nil {
		return nil, err
	}

	var scens []scenario
	for _, sc := range benchScenarios(creds) {
		if o.Only == nil || o.Only[sc.Name] {
			scens = append(scens, sc)
		}
	}
	// Every scenario runs once per round, each between two runs of the
	// baseline (B S1 B S2 … B). A scenario's ratio for the round is its
	// throughput over the mean of the baselines just before and after it,
	// and its ratio is the median over rounds: the speed of a shared
	// machine drifts over seconds, and a slow moment then skews one
	// comparison, not all of them.
	base := slices.IndexFunc(scens, func(sc scenario) bool { return sc.Name == "baseline" })
	runs := make([][]*loadResult, len(scens))
	ratios := make([][]float64, len(scens))
	drops := make([]float64, len(scens))
	conns := make([]int64, len(scens))
	haveConns := sessions != nil
	for _, sc := range scens {
		if err := checkScenario(ctx, srv.Addr, sc); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
	}
	run := func(rnd, i int) (*loadResult, error) {
		sc := scens[i]
		s0 := int64(-1)
		if sessions != nil && len(runs[i]) == 0 {
			s0 = sessions()
		}
		d0, dropsOK := accessDrops(ctx, srv.Addr)
		lr, err := runLoad(ctx, loadConfig{Addr: srv.Addr, Connections: o.Connections, Warmup: o.Warmup, Measure: o.Measure, ServerPID: srv.PID, DBCPU: backend == "postgres"}, sc)
		if err != nil {
			return nil, err
		}
		runs[i] = append(runs[i], lr)
		if d1, ok := accessDrops(ctx, srv.Addr); ok && dropsOK {
			drops[i] += d1 - d0
		}
		if s0 >= 0 {
			// Pools grow on first use. Stats reach pg_stat_database
			// within a second or so.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(1100 * time.Millisecond):
			}
			if s1 := sessions(); s1 >= s0 {
				conns[i] = s1 - s0
			} else {
				haveConns = false
			}
		}
		r := newBenchResult(backend, sc, lr)
		logf("round %d  %-18s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  server %.1f µs/req  other load %.2f cores",
			rnd+1, sc.Name, r.RPS, r.P50ms, r.P99ms, r.Errors, r.ServerCPUus, r.OtherCores)
		if r.FirstError != "" {
			logf("  first error: %s", r.FirstError)
		}
		return lr, nil
	}
	// One unmeasured pass over every scenario first: the first authenticated
	// load on a fresh server also pays for growing its heap, queues and
	// tables, which a long-running server has long since done.
	logf("warming up")
	for _, sc := range scens {
		// A scenario of many keys warms up until each was used once: a
		// key's first use reads the database, as it does once per server.
		for done := false; !done; {
			lr, err := runLoad(ctx, loadConfig{Addr: srv.Addr, Connections: o.Connections, Measure: max(o.Warmup, 100*time.Millisecond)}, sc)
			if err != nil {
				return nil, err
			}
			if lr.Errors > 0 {
				logf("warm-up %s: %d errors, e.g. %s", sc.Name, lr.Errors, lr.FirstErr)
			}
			done = len(sc.Auths) == 0 || sc.Turn.Load() >= uint64(len(sc.Auths))
		}
	}
	for rnd := range o.Rounds {
		var before *loadResult
		if base >= 0 {
			var err error
			if before, err = run(rnd, base); err != nil {
				return nil, err
			}
		}
		for i := range scens {
			if i == base {
				continue
			}
			lr, err := run(rnd, i)
			if err != nil {
				return nil, err
			}
			if base < 0 {
				continue
			}
			after, err := run(rnd, base)
			if err != nil {
				return nil, err
			}
			if b := (before.rps() + after.rps()) / 2; b > 0 {
				ratios[i] = append(ratios[i], round(lr.rps()/b, 3))
			}
			before = after
		}
	}

	var out []benchResult
	for i, sc := range scens {
		r := newBenchResult(backend, sc, mergeLoads(runs[i]))
		r.AccessDropped, r.NewDBConns, r.HaveDBConns = drops[i], conns[i], haveConns
		if base >= 0 {
			r.RoundRatios, r.Ratio = ratios[i], median(ratios[i])
			if i == base {
				r.Ratio = 1
			}
			var b benchResult
			switch {
			case i == base:
				b = r
			case i > base:
				b = out[base]
			}
			if total, baseTotal := r.ServerCPUus+r.ClientCPUus+r.DBCPUus, b.ServerCPUus+b.ClientCPUus+b.DBCPUus; baseTotal > 0 && total > 0 && r.ClientCPUus > 0 {
				r.CPURatio = round(baseTotal/total, 3)
			}
			if b.ServerCPUus > 0 {
				r.ServerCPUx = r.ServerCPUus / b.ServerCPUus
			}
		}
		out = append(out, r)
	}
	return out, nil
}
