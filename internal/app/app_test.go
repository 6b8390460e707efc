package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/app"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// syncBuffer is a log sink the server's goroutines may write at once.
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

func newKey(t *testing.T) string {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k[:])
}

func testConfig(dbURL, key string, log io.Writer) app.Config {
	return app.Config{
		DatabaseURL: dbURL, Listen: "127.0.0.1:0", Issuer: "http://127.0.0.1", MasterKey: key,
		Environments: []nexus.Environment{nexus.Live, nexus.Test},
		JWTAudience:  "nexus-api", InternalAudience: "nexus-internal",
		IPLimit: 100, FailedAuthLimit: 10, PasswordChecks: 1, AccessLog: "on",
		ExpiryWarningInterval: time.Minute, KeyCacheSize: 1000, IdemAbandoned: time.Minute,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	}
}

// Open, Run until the context ends, Close: the server answers once Ready,
// shuts down in order (requests, then the background writers, then the
// database) and leaves nothing listening.
func TestOpenRunClose(t *testing.T) {
	var logs syncBuffer
	a, err := app.Open(context.Background(), testConfig("sqlite:"+filepath.Join(t.TempDir(), "nexus.db"), newKey(t), &logs))
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-ran:
		t.Fatalf("Run returned before the server was ready: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /readyz = %d, want 200", resp.StatusCode)
	}

	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after the context ended: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
	if !strings.Contains(logs.String(), "cache invalidation: listening") {
		t.Errorf("Ready before the invalidation bus was heard:\n%s", logs.String())
	}
	last := -1
	for _, line := range []string{"nexus listening", "shutting down: finishing in-flight requests", "requests finished; flushing background writers", "stopped"} {
		i := strings.Index(logs.String(), line)
		if i < 0 || i < last {
			t.Errorf("log line %q missing or out of order:\n%s", line, logs.String())
		}
		last = i
	}
}

// A start that cannot succeed fails in Open, before the server changes
// anything or listens: a TLS pair that does not load leaves no database
// behind, and a master key other than the database's is refused.
func TestOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nexus.db")
	cfg := testConfig("sqlite:"+path, newKey(t), io.Discard)
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")
	if a, err := app.Open(context.Background(), cfg); err == nil {
		a.Close()
		t.Fatal("Open with a missing TLS pair succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused TLS pair left a database behind (stat: %v)", err)
	}

	a, err := app.Open(context.Background(), testConfig("sqlite:"+path, newKey(t), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a, err = app.Open(context.Background(), testConfig("sqlite:"+path, newKey(t), io.Discard))
	if err == nil {
		a.Close()
		t.Fatal("Open with another master key succeeded")
	}
	if !strings.Contains(err.Error(), "does not match the master key") {
		t.Errorf("Open with another master key: %v", err)
	}
}
