// Package redisdb is the service's one adapter to Redis: one redis.UniversalClient, and so one
// connection pool per replica, for the rate limiter, the bans and the dispatch locks, in every
// shape production Redis comes in (one node, a cluster, a Sentinel-watched primary; TLS with a
// provider's CA; an ACL user), with one key namespace.
//
// The budget rule: every call states its own latency budget (Within), and the budget is kept
// on the socket (go-redis's ContextTimeoutEnabled) with no retry behind the caller's back, so a
// budget is the most a call takes. Keys and channels are Key(name): the configured prefix, then
// the name.
package redisdb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Settings say which Redis to reach and how (config.Redis).
type Settings struct {
	Mode     string // single, cluster or sentinel
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Failover *redis.FailoverOptions
	Host     string // for messages: the URL's host and port, never its password
	Prefix   string
}

// Client is the shared client. It is safe for concurrent use.
type Client struct {
	rdb    redis.UniversalClient
	prefix string
	host   string
	mode   string
}

// clusterReload is how often a cluster client rereads the slot map. go-redis's default (60 s)
// keeps sending a dead primary's slots to it for up to a minute after its replica took over.
const clusterReload = time.Second

// Open returns a client for s. It does not dial: Check does, at start-up.
func Open(s Settings) *Client {
	off := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := &Client{prefix: s.Prefix, host: s.Host, mode: s.Mode}
	switch {
	case s.Cluster != nil:
		o := *s.Cluster
		o.ContextTimeoutEnabled, o.MaxRetries, o.DisableIdentity = true, -1, true
		o.ClusterStateReloadInterval = clusterReload
		o.MaintNotificationsConfig = off
		c.rdb = redis.NewClusterClient(&o)
	case s.Failover != nil:
		o := *s.Failover
		o.ContextTimeoutEnabled, o.MaxRetries, o.DisableIdentity = true, -1, true
		c.rdb = redis.NewFailoverClient(&o)
	default:
		o := *s.Single
		// Retries would stretch a budget past itself, and a count (INCR) must not run twice.
		o.ContextTimeoutEnabled, o.MaxRetries, o.DisableIdentity = true, -1, true
		o.MaintNotificationsConfig = off
		c.rdb = redis.NewClient(&o)
	}
	return c
}

// Key is name in the namespace: every key and channel of the service is one.
func (c *Client) Key(name string) string { return c.prefix + name }

// Redis is the client itself, for what the adapter does not wrap (scripts, pipelines, pub/sub).
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// Mode is single, cluster or sentinel.
func (c *Client) Mode() string { return c.mode }

// Within is the context for one call under budget: ctx's values but not its cancellation (a
// caller that hangs up must not cut a write in half), ended by the budget.
func Within(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), budget)
}

// Close releases the connections.
func (c *Client) Close() error { return c.rdb.Close() }

// ErrCertificate means Redis answered with a certificate the configured CAs do not vouch for:
// a configuration error, not an outage.
var ErrCertificate = errors.New("certificate not trusted")

// Check asks Redis whether it answers and how it evicts, for start-up. A certificate it does not
// trust is an error (ErrCertificate, naming the host); anything else that goes wrong is a
// warning, since the service runs without Redis too. A policy that may evict any key
// (allkeys-*) is a warning: it may evict the bans, which every replica then writes back from
// its own copy, but a replica that starts meanwhile knows none.
func (c *Client) Check(ctx context.Context) (warnings []string, err error) {
	ctx, cancel := Within(ctx, 3*time.Second)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		var verify *tls.CertificateVerificationError
		if errors.As(err, &verify) {
			return nil, fmt.Errorf("%w: Redis at %s presented a certificate that REDIS_CA_FILE (or the system's CAs) does not vouch for", ErrCertificate, c.host)
		}
		return []string{"Redis at " + c.host + " did not answer at start-up: counting rate limits in memory and knowing no bans until it does"}, nil
	}
	policies, err := c.evictionPolicies(ctx)
	if err != nil {
		return []string{"Redis at " + c.host + " did not say its maxmemory-policy (INFO memory): make sure it is noeviction or volatile-*, which never evict the bans"}, nil
	}
	for _, p := range policies {
		if strings.HasPrefix(p, "allkeys-") {
			return []string{"Redis at " + c.host + " has maxmemory-policy " + p + ", which may evict the bans under memory pressure: each replica writes back those it holds, but set volatile-lru (it evicts only rate-limit counters and locks) or noeviction"}, nil
		}
	}
	return nil, nil
}

// evictionPolicies reads maxmemory_policy from INFO memory (CONFIG GET would expose every
// setting to the service's ACL user), on every primary of a cluster.
func (c *Client) evictionPolicies(ctx context.Context) ([]string, error) {
	read := func(info string) (string, error) {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
				return v, nil
			}
		}
		return "", errors.New("no maxmemory_policy in INFO memory")
	}
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		var policies []string
		var mu sync.Mutex // ForEachMaster asks the primaries at once
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			info, err := node.Info(ctx, "memory").Result()
			if err != nil {
				return err
			}
			p, err := read(info)
			mu.Lock()
			policies = append(policies, p)
			mu.Unlock()
			return err
		})
		return policies, err
	}
	info, err := c.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return nil, err
	}
	p, err := read(info)
	return []string{p}, err
}

// Timeout reports whether err is a call that missed its budget (on the socket, the wait for a
// connection, or the context), as opposed to Redis's own answer.
func Timeout(err error) bool {
	var netErr interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}
