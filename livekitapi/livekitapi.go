// Package livekitapi is the service's one client of LiveKit's server API (RoomService and
// AgentDispatchService, through server-sdk-go), signed with the configured key. Every call runs
// under a short budget, since each one sits in front of a reply or a webhook.
package livekitapi

import (
	"context"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
)

// Client reaches LiveKit's server API. It is safe for concurrent use.
type Client struct {
	Rooms    *lksdk.RoomServiceClient
	Dispatch *lksdk.AgentDispatchClient
	timeout  time.Duration
}

// New returns a client of the server API at url (http:// or https://; ws:// and wss:// are
// read as their HTTP counterparts) whose calls each get at most timeout.
func New(url, apiKey, apiSecret string, timeout time.Duration) *Client {
	return &Client{
		Rooms:    lksdk.NewRoomServiceClient(url, apiKey, apiSecret),
		Dispatch: lksdk.NewAgentDispatchServiceClient(url, apiKey, apiSecret),
		timeout:  timeout,
	}
}

// Budget returns a context for one call: ctx's values and cancellation, ended after the
// configured timeout at the latest.
func (c *Client) Budget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Timeout is the budget of one call (LIVEKIT_API_TIMEOUT_MS).
func (c *Client) Timeout() time.Duration { return c.timeout }
