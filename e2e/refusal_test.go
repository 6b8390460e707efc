package e2e

import (
	"sync"
	"testing"
	"time"
)

// watchRefusal asks every server GET /v1/partner with h, all at once, until
// each answers something other than 200 or 5 s have passed since committed.
// It returns how long after committed each refused (-1: never) and its last
// answer. Callers check the answer and log the measured value; the 1 s
// promise is asserted by them, serially.
func watchRefusal(t *testing.T, servers []*Server, h H, committed time.Time) (took []time.Duration, last []*Response) {
	t.Helper()
	hc := sourceFor(t).client
	took = make([]time.Duration, len(servers))
	last = make([]*Response, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(committed) < 5*time.Second {
				r, err := flSend(hc, "GET", s.URL+"/v1/partner", h, nil)
				if err == nil {
					last[i] = r
					if r.Status != 200 {
						took[i] = time.Since(committed)
						return
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			took[i] = -1
		}()
	}
	wg.Wait()
	return took, last
}
