package nexus

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport answers every request with 200 {} and counts them.
type countingTransport struct {
	n    atomic.Int32
	last atomic.Value // string: the URL of the last request
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	t.last.Store(r.URL.String())
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, partnerJSON)
	return rec.Result(), nil
}

// No default base URL: a client without a usable one fails every call with
// ErrBaseURL and sends nothing.
func TestBaseURLRequired(t *testing.T) {
	for _, base := range []string{"", "localhost:8080", "nexus.example.com", "ftp://nexus.example.com", "https://", "/v1", "https://nexus.example.com?x=1"} {
		rt := &countingTransport{}
		var opts []Option
		if base != "" {
			opts = append(opts, WithBaseURL(base))
		}
		c := NewClient(testKey, append(opts, WithHTTPClient(&http.Client{Transport: rt}))...)
		_, err := c.Partner.Get(context.Background())
		if !errors.Is(err, ErrBaseURL) {
			t.Errorf("base URL %q: err %v, want ErrBaseURL", base, err)
		}
		if n := rt.n.Load(); n != 0 {
			t.Errorf("base URL %q: %d requests sent, want none", base, n)
		}
	}
	for base, want := range map[string]string{
		"https://nexus.example.com":       "https://nexus.example.com/v1/partner",
		"https://nexus.example.com/":      "https://nexus.example.com/v1/partner",
		"http://127.0.0.1:8080":           "http://127.0.0.1:8080/v1/partner",
		"https://example.com/nexus/base/": "https://example.com/nexus/base/v1/partner",
	} {
		rt := &countingTransport{}
		c := NewClient(testKey, WithBaseURL(base), WithHTTPClient(&http.Client{Transport: rt}))
		if _, err := c.Partner.Get(context.Background()); err != nil {
			t.Errorf("base URL %q: %v", base, err)
		}
		if got, _ := rt.last.Load().(string); got != want {
			t.Errorf("base URL %q: requested %q, want %q", base, got, want)
		}
	}
}

func TestDefaultTimeout(t *testing.T) {
	if c := NewClient(testKey, WithBaseURL("https://nexus.example.com")); c.httpClient.Timeout != DefaultTimeout || DefaultTimeout <= 0 {
		t.Errorf("default HTTP client timeout %v, want DefaultTimeout (%v)", c.httpClient.Timeout, DefaultTimeout)
	}
	if c := NewClient(testKey, WithBaseURL("https://nexus.example.com"), WithTimeout(5*time.Second)); c.httpClient.Timeout != 5*time.Second {
		t.Errorf("WithTimeout(5s): timeout %v", c.httpClient.Timeout)
	}
	own := &http.Client{Timeout: time.Minute}
	if c := NewClient(testKey, WithBaseURL("https://nexus.example.com"), WithTimeout(time.Second), WithHTTPClient(own)); c.httpClient != own {
		t.Errorf("WithHTTPClient's client was replaced")
	}

	// A server that never answers: the attempt ends at the timeout, not
	// never.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewClient(testKey, WithBaseURL(srv.URL), WithTimeout(50*time.Millisecond), WithMaxRetries(0))
	_, err := c.Partner.Get(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a call to a server that never answers: %v, want a timeout", err)
	}
}
