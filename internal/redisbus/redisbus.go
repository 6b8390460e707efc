// Package redisbus carries cache invalidations between instances over
// Redis pub/sub, for deployments that configure Redis. A subscriber that
// loses the channel drops its whole cache (it may have missed messages)
// and reconnects.
package redisbus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel of invalidation topics.
const Channel = "nexus:invalidate"

// Publish announces a topic; failures are logged, not returned: the
// database channel still carries it.
func Publish(ctx context.Context, c *redis.Client, log *slog.Logger, topic string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Publish(ctx, Channel, topic).Err(); err != nil {
		log.Warn("cache invalidation: redis publish failed", "err", err)
	}
}

// Subscribe calls drop for every topic until ctx ends, dropping "all"
// whenever the subscription (re)starts.
func Subscribe(ctx context.Context, c *redis.Client, log *slog.Logger, drop func(string)) {
	for ctx.Err() == nil {
		sub := c.Subscribe(ctx, Channel)
		if _, err := sub.Receive(ctx); err != nil {
			sub.Close()
			if ctx.Err() == nil {
				log.Warn("cache invalidation: redis subscribe failed; retrying", "err", err)
				drop("all")
				sleep(ctx, time.Second)
			}
			continue
		}
		drop("all") // whatever was published while we were away
		ch := sub.Channel(redis.WithChannelHealthCheckInterval(5 * time.Second))
	receive:
		for {
			select {
			case <-ctx.Done():
				// Cancelling ctx does not close go-redis's channel.
				break receive
			case msg, ok := <-ch:
				if !ok {
					break receive
				}
				drop(msg.Payload)
			}
		}
		sub.Close()
		if ctx.Err() == nil {
			log.Warn("cache invalidation: redis channel lost; cache dropped, reconnecting")
			drop("all")
			sleep(ctx, 500*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Logger routes go-redis's own messages into slog, so that JSON logs stay
// JSON (install it with redis.SetLogger).
type Logger struct{ Log *slog.Logger }

// Printf implements go-redis's logging interface.
func (l Logger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
