// Package redisbus carries lockout announcements between instances over
// Redis pub/sub, for deployments that configure Redis, and bounds every
// Redis call. Cache invalidations do not travel here: the database's own
// channel (store.Bus) carries them, in the same transaction as the change
// and from every writer, the admin CLI included. A subscriber that loses
// the channel hears TopicResubscribed when it is back (it may have missed
// messages) and reconnects.
package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-fintech/nexus/internal/breaker"
)

// Channel is the pub/sub channel of lockout topics. (Its name is from when
// it carried cache invalidations too; instances of that version still
// publish them here, and LockTopic's subscribers ignore them.)
const Channel = "nexus:invalidate"

// TopicResubscribed is what Subscribe hears when the subscription starts
// or comes back: announcements may have been missed meanwhile.
const TopicResubscribed = "all"

// CallTimeout bounds every Redis call on a request's path: a Redis that
// stalls costs a request at most this, and trips the breaker soon after.
const CallTimeout = 200 * time.Millisecond

// NewClient opens a client on rawURL whose every call is bounded: go-redis
// ignores context deadlines unless told to (ContextTimeoutEnabled), and its
// default 3 s read timeout and 4 s pool wait would stall requests while
// Redis is frozen.
func NewClient(rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	opt.DialTimeout = CallTimeout
	opt.ReadTimeout = CallTimeout
	opt.WriteTimeout = CallTimeout
	opt.PoolTimeout = CallTimeout
	// Retries (of a connection found dead after a Redis restart, say) stay
	// within the call's deadline.
	return redis.NewClient(opt), nil
}

// Publish announces a topic, unless the breaker skips Redis; failures are
// logged, not returned: a missed announcement is not a missed lock (the
// shared counts in Redis still refuse), it only keeps another instance
// from answering Locked without asking. Never call
// it while holding a lock others wait on: it may take CallTimeout.
func Publish(ctx context.Context, c *redis.Client, b *breaker.Breaker, log *slog.Logger, topic string) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	err := b.Do(ctx, func(ctx context.Context) error { return c.Publish(ctx, Channel, topic).Err() })
	if err != nil && !errors.Is(err, breaker.ErrOpen) {
		log.Debug("cache invalidation: redis publish failed", "err", err)
	}
}

// lockPrefix starts the topic announcing a lockout: lock:<unix ms>:<key>.
const lockPrefix = "lock:"

// LockTopic is the topic announcing that key is locked out until until.
func LockTopic(key string, until time.Time) string {
	return lockPrefix + strconv.FormatInt(until.UnixMilli(), 10) + ":" + key
}

// ParseLockTopic reads a LockTopic.
func ParseLockTopic(topic string) (key string, until time.Time, ok bool) {
	rest, ok := strings.CutPrefix(topic, lockPrefix)
	if !ok {
		return "", time.Time{}, false
	}
	ms, key, ok := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || key == "" {
		return "", time.Time{}, false
	}
	return key, time.UnixMilli(n), true
}

// Subscribe calls drop for every topic until ctx ends, and with
// TopicResubscribed whenever the subscription (re)starts or fails.
func Subscribe(ctx context.Context, c *redis.Client, log *slog.Logger, drop func(string)) {
	for ctx.Err() == nil {
		sub := c.Subscribe(ctx, Channel)
		if _, err := sub.Receive(ctx); err != nil {
			sub.Close()
			if ctx.Err() == nil {
				log.Warn("cache invalidation: redis subscribe failed; retrying", "err", err)
				drop(TopicResubscribed)
				sleep(ctx, time.Second)
			}
			continue
		}
		drop(TopicResubscribed) // whatever was published while we were away
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
			drop(TopicResubscribed)
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
