package ratelimit

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// addScript increments and sets the expiry in one atomic step, so that
// concurrent instances never read-then-write.
var addScript = redis.NewScript(`
local c = redis.call('INCRBY', KEYS[1], ARGV[1])
if c == tonumber(ARGV[1]) and c > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return c`)

// Redis is a Store shared by every instance.
type Redis struct {
	c *redis.Client
}

// NewRedis returns a Redis store on c.
func NewRedis(c *redis.Client) *Redis { return &Redis{c: c} }

// Add implements Store.
func (r *Redis) Add(ctx context.Context, key string, start time.Time, window time.Duration, n int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	k := "nexus:rl:" + key + ":" + strconv.FormatInt(start.Unix(), 10)
	return addScript.Run(ctx, r.c, []string{k}, n, (window + 5*time.Second).Milliseconds()).Int64()
}
