package main

import (
	"context"
	"fmt"
	"net"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// scenario is one kind of request, sent over and over by every connection.
type scenario struct {
	Name   string // short id, as the table and --scenarios name it
	Label  string // what the table shows
	Method string
	Path   string
	Auth   string // Authorization header value; "" for none
	// Auths, when set, are Authorization values used in turn, one per
	// request across every connection (many credentials in use at once);
	// Turn counts the requests sent with them, over every run.
	Auths []string
	Turn  *atomic.Uint64
	Body  []byte // request body, if any
	// ContentType is Body's media type. Optional. Default: application/json.
	ContentType string
	// Want, when set, must be in the answer's body (checked once, before
	// the runs): a 200 that says no (an inactive token) is a setup mistake.
	Want string
}

func (sc scenario) contentType() string {
	if sc.ContentType != "" {
		return sc.ContentType
	}
	return "application/json"
}

// loadResult is what one scenario measured.
type loadResult struct {
	Requests  uint64        // answered in the measured window
	Errors    uint64        // non-2xx answers and transport errors, warm-up included
	Elapsed   time.Duration // the measured window
	Hist      histogram     // latencies of the measured window
	FirstErr  string        // a sample error, for the report
	WarmupReq uint64        // answered during warm-up (for the record)
	// CPU used during the measured window (zero where /proc is missing).
	ServerCPU, ClientCPU, DBCPU, OtherCPU, Wall time.Duration
}

func (r *loadResult) rps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// loadConfig bounds one scenario's run.
type loadConfig struct {
	Addr        string // host:port, always on loopback
	Connections int
	Warmup      time.Duration
	Measure     time.Duration
	// ServerPID is the server's process, for CPU accounting; 0 when the
	// server runs in this process.
	ServerPID int
	// DBCPU adds the local PostgreSQL's CPU time to the accounting.
	DBCPU bool
}

// runLoad drives a closed loop: Connections workers, each with its own
// keep-alive connection, send sc back to back for Warmup+Measure. Only
// requests both sent and answered inside the measured window count
// towards throughput and latency; errors count over the whole run.
func runLoad(ctx context.Context, cfg loadConfig, sc scenario) (*loadResult, error) {
	if err := loopbackOnly(cfg.Addr); err != nil {
		return nil, err
	}
	hc := &fasthttp.HostClient{
		Addr:                          cfg.Addr,
		MaxConns:                      cfg.Connections,
		MaxIdleConnDuration:           time.Minute,
		MaxIdemponentCallAttempts:     1, // a failure is a failure, not a retry
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		MaxConnWaitTimeout:            30 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	defer hc.CloseIdleConnections()

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	measureTo := measureFrom.Add(cfg.Measure)
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, measureTo)
	defer cancel()

	// CPU readings at both ends of the measured window.
	cpu := make(chan [2]cpuSample, 1)
	go func() {
		var s [2]cpuSample
		for i, at := range []time.Time{measureFrom, measureTo} {
			select {
			case <-parent.Done():
				cpu <- s
				return
			case <-time.After(time.Until(at)):
			}
			s[i] = readCPU(cfg.ServerPID, cfg.DBCPU)
		}
		cpu <- s
	}()

	workers := make([]loadWorker, cfg.Connections)
	var errs atomic.Uint64
	var wg sync.WaitGroup
	uri := "http://" + cfg.Addr + sc.Path
	for i := range workers {
		w := &workers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Labelled so that a --cpuprofile of an in-process run can
			// leave the load generator out: -tagignore bench=client.
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("bench", "client")))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				// Set on every loop: Do may reset parts of a request it
				// failed to send.
				req.Reset()
				req.SetRequestURI(uri)
				req.Header.SetMethod(sc.Method)
				switch {
				case len(sc.Auths) > 0:
					req.Header.Set("Authorization", sc.Auths[(sc.Turn.Add(1)-1)%uint64(len(sc.Auths))])
				case sc.Auth != "":
					req.Header.Set("Authorization", sc.Auth)
				}
				if sc.Body != nil {
					req.Header.SetContentType(sc.contentType())
					req.SetBody(sc.Body)
				}
				t0 := time.Now()
				err := hc.Do(req, resp)
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the run, not a server error
					}
					w.fail(&errs, err.Error())
					// Transport error: do not spin on a dead server.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				if code := resp.StatusCode(); code < 200 || code > 299 {
					w.fail(&errs, fmt.Sprintf("%s %s: status %d: %.300s", sc.Method, sc.Path, code, resp.Body()))
					continue
				}
				switch {
				case t0.Before(measureFrom):
					w.warm++
				case !t1.After(measureTo):
					w.hist.record(t1.Sub(t0))
					w.n++
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != context.DeadlineExceeded {
		return nil, err
	}
	res := &loadResult{Elapsed: cfg.Measure, Errors: errs.Load()}
	if s := <-cpu; s[0].ok && s[1].ok {
		res.Wall = s[1].at.Sub(s[0].at)
		res.ServerCPU = s[1].server - s[0].server
		ours := res.ServerCPU
		if cfg.ServerPID != 0 {
			res.ClientCPU = s[1].self - s[0].self
			ours += res.ClientCPU
		}
		res.DBCPU = s[1].db - s[0].db
		ours += res.DBCPU
		res.OtherCPU = max(0, s[1].machineBusy-s[0].machineBusy-ours)
	}
	for i := range workers {
		w := &workers[i]
		res.Hist.merge(&w.hist)
		res.Requests += w.n
		res.WarmupReq += w.warm
		if res.FirstErr == "" {
			res.FirstErr = w.firstErr
		}
	}
	return res, nil
}

// loadWorker is one connection's tally.
type loadWorker struct {
	hist     histogram
	n, warm  uint64
	firstErr string
}

func (w *loadWorker) fail(errs *atomic.Uint64, msg string) {
	errs.Add(1)
	if w.firstErr == "" {
		w.firstErr = msg
	}
}

// loopbackOnly refuses any address that is not a loopback IP: the
// benchmark never sends traffic off the machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("bench: %s is not a loopback address", addr)
	}
	return nil
}
