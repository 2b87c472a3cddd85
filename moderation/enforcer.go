package moderation

import (
	"context"
	"errors"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/rs/zerolog"
	"github.com/twitchtv/twirp"

	"github.com/token-service/token-service/livekitapi"
	"github.com/token-service/token-service/logging"
)

// Why a participant is removed: the ban was just made, or LiveKit said a banned one joined.
const (
	CauseBan     = "ban"
	CauseWebhook = "webhook"
)

// What came of one removal, as counted.
const (
	Removed    = "removed"     // LiveKit removed the participant
	NotPresent = "not_present" // it was not in the room (any more)
	Failed     = "failed"      // LiveKit's API did not answer, every attempt
	Dropped    = "dropped"     // the queue was full: not attempted
)

const (
	workers   = 8
	queueSize = 1024
	attempts  = 3
)

// retryAfter is the wait before each retry: a removal is over within about a second plus three
// API timeouts.
var retryAfter = [attempts - 1]time.Duration{200 * time.Millisecond, 800 * time.Millisecond}

type removal struct {
	ban   Ban
	room  string // where to remove from: the ban's room, the joined room, or AnyRoom
	cause string
}

// Enforcer removes banned participants through LiveKit's RoomService. Removals wait in a
// bounded queue for a fixed set of workers, so neither a ban of many rooms nor a flood of
// webhooks holds a reply or grows without bound.
type Enforcer struct {
	api       *livekitapi.Client
	queue     chan removal
	log       zerolog.Logger
	onRemoval func(cause, result string)

	dropLines logging.PerSecond
}

// NewEnforcer returns an enforcer that works once Run is called.
func NewEnforcer(api *livekitapi.Client, log zerolog.Logger, onRemoval func(cause, result string)) *Enforcer {
	if onRemoval == nil {
		onRemoval = func(string, string) {}
	}
	return &Enforcer{api: api, queue: make(chan removal, queueSize), log: log, onRemoval: onRemoval}
}

// Remove queues the removal of the ban's identity from room (AnyRoom: every room it is in) and
// returns at once; false when the queue is full.
func (e *Enforcer) Remove(b Ban, room, cause string) bool {
	r := removal{ban: b, room: room, cause: cause}
	select {
	case e.queue <- r:
		return true
	default:
		e.onRemoval(cause, Dropped)
		// Counted every time, logged at most once a second: a flood must not become one.
		if e.dropLines.Allow() {
			e.audit(r, Dropped, errors.New("removal queue full"))
		}
		return false
	}
}

// Run works through the queue until ctx ends.
func (e *Enforcer) Run(ctx context.Context) {
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-e.queue:
					e.enforce(ctx, r)
				}
			}
		}()
	}
	for range workers {
		<-done
	}
}

func (e *Enforcer) enforce(ctx context.Context, r removal) {
	if r.room != AnyRoom {
		e.removeFrom(ctx, r)
		return
	}
	rooms, err := e.rooms(ctx)
	if err != nil {
		e.onRemoval(r.cause, Failed)
		e.audit(r, Failed, err)
		return
	}
	// One removal per room, in the queue like any other, so that the workers share them and a
	// ban of many rooms does not hold one worker for minutes.
	for _, room := range rooms {
		e.Remove(r.ban, room, r.cause)
	}
}

func (e *Enforcer) rooms(ctx context.Context) ([]string, error) {
	var list *livekit.ListRoomsResponse
	err := e.retry(ctx, func(ctx context.Context) (err error) {
		list, err = e.api.Rooms.ListRooms(ctx, &livekit.ListRoomsRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.GetRooms()))
	for _, room := range list.GetRooms() {
		names = append(names, room.GetName())
	}
	return names, nil
}

func (e *Enforcer) removeFrom(ctx context.Context, r removal) {
	err := e.retry(ctx, func(ctx context.Context) error {
		_, err := e.api.Rooms.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{
			Room: r.room, Identity: r.ban.Identity,
			// LiveKit Cloud then refuses every token issued before now; a self-hosted
			// livekit-server ignores it, which is why the webhook removes rejoins.
			RevokeTokenTs: time.Now().Unix(),
		})
		return err
	})
	result := Removed
	switch {
	case notFound(err):
		result = NotPresent
	case err != nil:
		result = Failed
	}
	e.onRemoval(r.cause, result)
	if result != NotPresent || r.cause == CauseWebhook {
		e.audit(r, result, err)
	}
}

// retry makes up to attempts calls, each within the API budget, until one succeeds or LiveKit
// answers with an error that trying again cannot change.
func (e *Enforcer) retry(ctx context.Context, call func(context.Context) error) error {
	var err error
	for i := range attempts {
		callCtx, cancel := e.api.Budget(ctx)
		err = call(callCtx)
		cancel()
		if err == nil || final(err) || i == attempts-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryAfter[i]):
		}
	}
	return err
}

// final errors are LiveKit's answer, not a failure to get one: the participant or room is not
// there, or the request or key is refused.
func final(err error) bool {
	var te twirp.Error
	if !errors.As(err, &te) {
		return false
	}
	switch te.Code() {
	case twirp.NotFound, twirp.InvalidArgument, twirp.PermissionDenied, twirp.Unauthenticated, twirp.FailedPrecondition:
		return true
	}
	return false
}

func notFound(err error) bool {
	var te twirp.Error
	return errors.As(err, &te) && te.Code() == twirp.NotFound
}

// audit is the one log line of an enforced removal: what was decided, by whom, never a token.
func (e *Enforcer) audit(r removal, result string, err error) {
	ev := e.log.Info()
	if result == Failed || result == Dropped {
		ev = e.log.Warn().AnErr("cause_error", err)
	}
	ev.Str("audit", "ban_removal").Str("cause", r.cause).Str("result", result).
		Str("room", r.room).Str("identity", r.ban.Identity).Str("ban_room", r.ban.Room).
		Str("reason", r.ban.Reason).Str("banned_by", r.ban.CreatedBy).Msg("banned participant removal")
}
