// Package dispatch makes sure the agents a join token dispatches get dispatched. LiveKit applies
// a token's room configuration, agent dispatch included, only when that join creates the room
// (livekit/livekit#4390): for a room that exists already, the service creates the dispatches
// itself through AgentDispatchService.
package dispatch

import (
	"context"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/livekitapi"
	"github.com/token-service/token-service/logging"
	"github.com/token-service/token-service/token"
)

// The modes of a token.Dispatch.
const (
	Token       = "token"       // the room does not exist: the join creates it and dispatches from the token
	Explicit    = "explicit"    // the room existed: the service created the dispatch
	Existing    = "existing"    // the room existed with a dispatch of this agent already
	Unconfirmed = "unconfirmed" // LiveKit's API did not answer in time: the token is issued regardless
)

// budget is how long one Ensure may take: four API timeouts (ListRooms, the lock, ListDispatch
// and the creations share them), and never so long that the reply would miss the server's
// 15 s write timeout. A creation the budget leaves no time for is unconfirmed.
func budget(apiTimeout time.Duration) time.Duration { return min(4*apiTimeout, maxEnsure) }

const maxEnsure = 8 * time.Second

// Dispatcher ensures dispatches. It is safe for concurrent use.
type Dispatcher struct {
	api   *livekitapi.Client
	locks locker
	log   zerolog.Logger
	// onDispatch counts one agent's outcome by mode.
	onDispatch func(mode string)

	unconfirmedLines logging.PerSecond // an outage would otherwise log every request
}

// New returns a dispatcher that serialises the check-then-create of one room across replicas
// through Redis when redis is not nil, and within this process otherwise.
func New(api *livekitapi.Client, redis *RedisLocks, log zerolog.Logger, onDispatch func(string)) *Dispatcher {
	if onDispatch == nil {
		onDispatch = func(string) {}
	}
	var locks locker = newLocalLocks()
	if redis != nil {
		locks = redis
	}
	return &Dispatcher{api: api, locks: locks, log: log, onDispatch: onDispatch}
}

// Ensure makes sure that each agent the token for room dispatches is dispatched, and says how
// (once per agent name, in the token's order). It never fails: what it cannot confirm within
// its budget is Unconfirmed. roomConfigApplied is false when the room existed (the token's other
// room settings were not applied either), true when the join will create it, nil when unknown.
func (d *Dispatcher) Ensure(ctx context.Context, room string, agents []*livekit.RoomAgentDispatch) (dispatches []token.Dispatch, roomConfigApplied *bool) {
	agents = distinct(agents)
	// The caller hanging up must not leave a dispatch half made; the budget still ends it.
	limit := budget(d.api.Timeout())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	exists, err := d.roomExists(ctx, room)
	if err != nil {
		return d.unconfirmed(room, agents, "list rooms", err), nil
	}
	if !exists {
		return d.all(agents, Token), boolPtr(true)
	}
	unlock, err := d.locks.lock(ctx, room, limit)
	if err != nil {
		return d.unconfirmed(room, agents, "lock the room's dispatches", err), boolPtr(false)
	}
	defer unlock()
	existing, err := d.existing(ctx, room)
	if err != nil {
		return d.unconfirmed(room, agents, "list dispatches", err), boolPtr(false)
	}
	var failed []*livekit.RoomAgentDispatch
	var failure error
	for _, a := range agents {
		if id, ok := existing[a.GetAgentName()]; ok {
			dispatches = append(dispatches, d.outcome(a, id, Existing))
			continue
		}
		if failure == nil {
			failure = ctx.Err() // the budget is spent: the rest are not tried
		}
		if failure != nil {
			failed = append(failed, a)
			continue
		}
		callCtx, cancelCall := d.api.Budget(ctx)
		// Everything the token's own dispatch would carry, so that explicit and token
		// dispatches start the same job.
		created, err := d.api.Dispatch.CreateDispatch(callCtx, &livekit.CreateAgentDispatchRequest{
			Room: room, AgentName: a.GetAgentName(), Metadata: a.GetMetadata(),
			Attributes: a.GetAttributes(), Deployment: a.GetDeployment(), RestartPolicy: a.GetRestartPolicy(),
		})
		cancelCall()
		if err != nil {
			failed, failure = append(failed, a), err
			continue
		}
		dispatches = append(dispatches, d.outcome(a, created.GetId(), Explicit))
	}
	if len(failed) > 0 {
		dispatches = append(dispatches, d.unconfirmed(room, failed, "create dispatch", failure)...)
	}
	return dispatches, boolPtr(false)
}

// roomExists asks RoomService by name (ListDispatch would stall for seconds on a missing room).
func (d *Dispatcher) roomExists(ctx context.Context, room string) (bool, error) {
	ctx, cancel := d.api.Budget(ctx)
	defer cancel()
	res, err := d.api.Rooms.ListRooms(ctx, &livekit.ListRoomsRequest{Names: []string{room}})
	if err != nil {
		return false, err
	}
	for _, r := range res.GetRooms() {
		if r.GetName() == room {
			return true, nil
		}
	}
	return false, nil
}

// existing maps each agent name dispatched in room to one of its dispatch ids. The empty name
// (LiveKit's default dispatch to unnamed workers) is not an agent a token names.
func (d *Dispatcher) existing(ctx context.Context, room string) (map[string]string, error) {
	ctx, cancel := d.api.Budget(ctx)
	defer cancel()
	res, err := d.api.Dispatch.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for _, dispatch := range res.GetAgentDispatches() {
		if name := dispatch.GetAgentName(); name != "" {
			byName[name] = dispatch.GetId()
		}
	}
	return byName, nil
}

func (d *Dispatcher) outcome(a *livekit.RoomAgentDispatch, id, mode string) token.Dispatch {
	d.onDispatch(mode)
	return token.Dispatch{AgentName: a.GetAgentName(), DispatchID: id, Mode: mode}
}

func (d *Dispatcher) all(agents []*livekit.RoomAgentDispatch, mode string) []token.Dispatch {
	out := make([]token.Dispatch, 0, len(agents))
	for _, a := range agents {
		out = append(out, d.outcome(a, "", mode))
	}
	return out
}

func (d *Dispatcher) unconfirmed(room string, agents []*livekit.RoomAgentDispatch, step string, err error) []token.Dispatch {
	if d.unconfirmedLines.Allow() { // counted always, logged at most once a second
		names := make([]string, 0, len(agents))
		for _, a := range agents {
			names = append(names, a.GetAgentName())
		}
		d.log.Warn().Err(err).Str("room", room).Strs("agents", names).Str("step", step).
			Msg("agent dispatch unconfirmed: LiveKit's API did not answer in time; the token was issued")
	}
	return d.all(agents, Unconfirmed)
}

// distinct keeps the first dispatch of each agent name: one outcome per agent.
func distinct(agents []*livekit.RoomAgentDispatch) []*livekit.RoomAgentDispatch {
	if len(agents) < 2 {
		return agents
	}
	seen := make(map[string]bool, len(agents))
	out := make([]*livekit.RoomAgentDispatch, 0, len(agents))
	for _, a := range agents {
		if !seen[a.GetAgentName()] {
			seen[a.GetAgentName()] = true
			out = append(out, a)
		}
	}
	return out
}

func boolPtr(b bool) *bool { return &b }
