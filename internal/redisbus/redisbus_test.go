package redisbus_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/redisbus"
)

func TestLockTopicRoundTrip(t *testing.T) {
	until := time.UnixMilli(1_800_000_000_123)
	key, got, ok := redisbus.ParseLockTopic(redisbus.LockTopic("ip:10.0.0.1", until))
	if !ok || key != "ip:10.0.0.1" || !got.Equal(until) {
		t.Errorf("ParseLockTopic(LockTopic) = %q, %v, %v", key, got, ok)
	}
	for _, topic := range []string{"cred:key_1", "all", "lock:", "lock:12", "lock:x:key", "lock:12:"} {
		if _, _, ok := redisbus.ParseLockTopic(topic); ok {
			t.Errorf("ParseLockTopic(%q) accepted", topic)
		}
	}
}

// A subscriber hears TopicResubscribed when it starts (it may have missed
// announcements), then what is published.
func TestPublishSubscribe(t *testing.T) {
	url := os.Getenv("NEXUS_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("NEXUS_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("NEXUS_TEST_REQUIRE_SERVICES=1 but NEXUS_TEST_REDIS_URL is not set")
		}
		t.Skip("no Redis: set NEXUS_TEST_REDIS_URL (for example redis://127.0.0.1:6379/0)")
	}
	c, err := redisbus.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan string, 64)
	done := make(chan struct{})
	go func() { defer close(done); redisbus.Subscribe(ctx, c, log, func(topic string) { heard <- topic }) }()
	defer func() { cancel(); <-done }()
	if got := <-heard; got != redisbus.TopicResubscribed {
		t.Fatalf("first topic %q, want %q", got, redisbus.TopicResubscribed)
	}
	want := redisbus.LockTopic("test:"+time.Now().Format(time.RFC3339Nano), time.Now().Add(time.Minute))
	redisbus.Publish(context.Background(), c, nil, log, want)
	timeout := time.After(10 * time.Second) // a bound for a stuck Redis, not a speed check
	for {
		select {
		case got := <-heard:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("%s never heard", want)
		}
	}
}
