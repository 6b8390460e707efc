package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-fintech/nexus/internal/redisbus"
)

// addScript increments and sets the expiry in one atomic step, so that
// concurrent instances never read-then-write and no key it writes ever
// lives without a TTL.
var addScript = redis.NewScript(`
local c = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return c`)

// KeyPrefix starts every key the limiter writes in Redis.
const KeyPrefix = "nexus:rl:"

// Redis is a Store shared by every instance.
type Redis struct {
	c *redis.Client
}

// NewRedis returns a Redis store on c.
func NewRedis(c *redis.Client) *Redis { return &Redis{c: c} }

// Add implements Store. A read (n = 0) is a GET: it never creates a key.
func (r *Redis) Add(ctx context.Context, key string, start time.Time, window time.Duration, n int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, redisbus.CallTimeout)
	defer cancel()
	k := KeyPrefix + key + ":" + strconv.FormatInt(start.Unix(), 10)
	if n == 0 {
		c, err := r.c.Get(ctx, k).Int64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return c, err
	}
	return addScript.Run(ctx, r.c, []string{k}, n, (window + 5*time.Second).Milliseconds()).Int64()
}
