package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-fintech/nexus/internal/redisbus"
)

// KeyPrefix starts every key the limiter writes in Redis.
const KeyPrefix = "nexus:rl:"

// Redis is a Store shared by every instance.
type Redis struct {
	c *redis.Client
}

// NewRedis returns a Redis store on c.
func NewRedis(c *redis.Client) *Redis { return &Redis{c: c} }

// locksKey is the hash of the keys locked out: field key, value the unix
// milliseconds its lock ends. An instance that starts (or missed the
// announcements) reads it.
const locksKey = KeyPrefix + "locks"

// reserveScript takes a slot of a lockout window (a hash: f failures, i
// in flight): -1 locked, 0 every slot left in flight, 1 reserved.
var reserveScript = redis.NewScript(`
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
if f >= tonumber(ARGV[1]) then return {-1, f} end
local i = tonumber(redis.call('HGET', KEYS[1], 'i') or '0')
if f + i >= tonumber(ARGV[1]) then return {0, f} end
redis.call('HINCRBY', KEYS[1], 'i', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, f}`)

// settleScript ends a reservation (ARGV[1]) and/or counts a failure
// (ARGV[2]); a failure that reaches the limit records the lock.
var settleScript = redis.NewScript(`
if ARGV[1] == '1' then
  if redis.call('HINCRBY', KEYS[1], 'i', -1) < 0 then redis.call('HSET', KEYS[1], 'i', 0) end
end
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
if ARGV[2] == '1' then f = redis.call('HINCRBY', KEYS[1], 'f', 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[2] == '1' and f >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return f`)

// Reserve implements LockStore.
func (r *Redis) Reserve(ctx context.Context, key string, start time.Time, window time.Duration, limit int) (int, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, redisbus.CallTimeout)
	defer cancel()
	res, err := reserveScript.Run(ctx, r.c, []string{lockKey(key, start)}, limit, ttl(start, window)).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, 0, errors.Join(err, errors.New("lockout reserve: unexpected answer"))
	}
	return int(res[0]), res[1], nil
}

// Settle implements LockStore.
func (r *Redis) Settle(ctx context.Context, key string, start time.Time, window time.Duration, limit int, release, failed bool) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, redisbus.CallTimeout)
	defer cancel()
	return settleScript.Run(ctx, r.c, []string{lockKey(key, start), locksKey},
		flag(release), flag(failed), limit, ttl(start, window), key, start.Add(window).UnixMilli()).Int64()
}

// Locks implements LockStore.
func (r *Redis) Locks(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*redisbus.CallTimeout)
	defer cancel()
	all, err := r.c.HGetAll(ctx, locksKey).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(all))
	for k, v := range all {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err == nil && ms > now.UnixMilli() {
			out[k] = time.UnixMilli(ms)
		}
	}
	return out, nil
}

// ttl keeps a window's key a little beyond the window's end.
func ttl(start time.Time, window time.Duration) int64 {
	return max(time.Until(start.Add(window)).Milliseconds()+5000, 1000)
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leaseScript grants up to ARGV[2] of a budget of ARGV[1], never more in
// sum, and returns {granted, count}; the count expires with its window.
var leaseScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = tonumber(ARGV[1]) - used
if left <= 0 then return {0, used} end
local g = math.min(left, tonumber(ARGV[2]))
used = redis.call('INCRBY', KEYS[1], g)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {g, used}`)

// Lease implements LeaseStore.
func (r *Redis) Lease(ctx context.Context, key string, start time.Time, window time.Duration, limit int, want int64) (int64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, redisbus.CallTimeout)
	defer cancel()
	k := KeyPrefix + key + ":" + strconv.FormatInt(start.Unix(), 10)
	res, err := leaseScript.Run(ctx, r.c, []string{k}, limit, want, (window + 5*time.Second).Milliseconds()).Int64Slice()
	if err == nil && len(res) != 2 {
		err = errors.New("rate limit lease: unexpected answer")
	}
	if err != nil {
		return 0, 0, err
	}
	return res[0], res[1], nil
}
