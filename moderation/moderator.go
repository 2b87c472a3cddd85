package moderation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/identifier"
	"github.com/token-service/token-service/token"
)

// MaxDuration is the longest a ban may last.
const MaxDuration = 30 * 24 * time.Hour

// maxReasonBytes bounds a ban's reason, which every replica holds and every audit line repeats.
const maxReasonBytes = 512

// BanRequest is the body of POST /moderation/bans.
type BanRequest struct {
	Room            string `json:"room"` // a room, or AnyRoom
	Identity        string `json:"identity"`
	DurationSeconds *int64 `json:"duration_seconds"`
	Reason          string `json:"reason"`
}

// BanQuery names bans by room and identity (GET and DELETE /moderation/bans); an empty field
// matches any, where the endpoint allows it.
type BanQuery struct {
	Room     string
	Identity string
}

// ErrNoSuchBan means there was no ban in force to lift.
var ErrNoSuchBan = errors.New("no ban in force for this room and identity")

// Moderator makes and lifts bans and enforces them, with one audit line for each. Who may do so
// is decided before it is asked (bans are a backend endpoint: policy.Backend).
type Moderator struct {
	Store    *Store
	Enforcer *Enforcer
	Log      zerolog.Logger
	// DefaultDuration is a ban's length when the request names none (MAX_TOKEN_TTL_SECONDS, at
	// most MaxDuration): by then every token issued before the ban has expired.
	DefaultDuration time.Duration
}

// Ban stores a ban made by the caller (a backend), then starts removing the identity from the
// room (every room for AnyRoom) without waiting for LiveKit.
func (m *Moderator) Ban(ctx context.Context, c token.Caller, req BanRequest) (Ban, error) {
	by := c.ServiceKeyID
	if err := (BanQuery{Room: req.Room, Identity: req.Identity}).validate(true); err != nil {
		return Ban{}, err
	}
	duration := min(m.DefaultDuration, MaxDuration)
	if d := req.DurationSeconds; d != nil {
		if *d < 1 || *d > int64(MaxDuration/time.Second) {
			return Ban{}, &token.Invalid{Field: "duration_seconds", Reason: fmt.Sprintf("must be from 1 to %d (30 days)", int64(MaxDuration/time.Second))}
		}
		duration = time.Duration(*d) * time.Second
	}
	if err := checkReason(req.Reason); err != nil {
		return Ban{}, err
	}
	now := time.Now()
	b := Ban{Room: req.Room, Identity: req.Identity, Reason: req.Reason, CreatedBy: by,
		CreatedAt: now.Unix(), ExpiresAt: now.Add(duration).Unix()}
	if err := m.Store.Add(ctx, b); err != nil {
		return Ban{}, err
	}
	m.Log.Info().Str("audit", "ban").Str("by", by).Str("room", b.Room).Str("identity", b.Identity).
		Str("reason", b.Reason).Int64("expires_at", b.ExpiresAt).Msg("ban made")
	m.Enforcer.Remove(b, b.Room, CauseBan)
	return b, nil
}

// List is the bans in force this replica knows, filtered by room and identity when not empty.
func (m *Moderator) List(q BanQuery) ([]Ban, error) {
	if err := q.validate(false); err != nil {
		return nil, err
	}
	return m.Store.List(q.Room, q.Identity), nil
}

// Lift ends the ban of an identity from a room; ErrNoSuchBan when there was none in force.
func (m *Moderator) Lift(ctx context.Context, c token.Caller, q BanQuery) error {
	if err := q.validate(true); err != nil {
		return err
	}
	b, existed, err := m.Store.Lift(ctx, q.Room, q.Identity)
	switch {
	case err != nil:
		return err
	case !existed:
		return ErrNoSuchBan
	}
	m.Log.Info().Str("audit", "ban_lifted").Str("by", c.ServiceKeyID).Str("room", q.Room).Str("identity", q.Identity).
		Str("reason", b.Reason).Msg("ban lifted")
	return nil
}

// Joined is LiveKit's word that identity joined room: a banned one is queued for removal at
// once. It reports whether it was. Only this replica's copy is read: a ban made elsewhere
// reaches it over Redis's pub/sub within milliseconds, and no webhook reply waits for Redis.
func (m *Moderator) Joined(room, identity string) bool {
	b, banned := m.Store.BanFor(room, identity)
	return banned && m.Enforcer.Remove(b, room, CauseWebhook)
}

// validate holds a ban's room (a room name as a token's, or AnyRoom) and identity to the
// identifier rules; required says whether both must be given.
func (q BanQuery) validate(required bool) error {
	for _, f := range []struct{ name, value string }{{"room", q.Room}, {"identity", q.Identity}} {
		switch {
		case f.value == "" && required:
			return &token.Invalid{Field: f.name, Reason: "is required"}
		case f.name == "room" && f.value == AnyRoom:
		default:
			if err := identifier.Check(f.value); err != nil {
				return &token.Invalid{Field: f.name, Reason: err.Error()}
			}
		}
	}
	return nil
}

func checkReason(reason string) error {
	switch {
	case len(reason) > maxReasonBytes:
		return &token.Invalid{Field: "reason", Reason: fmt.Sprintf("must be at most %d bytes", maxReasonBytes)}
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, unicode.IsControl):
		return &token.Invalid{Field: "reason", Reason: "must be valid UTF-8 without control characters"}
	}
	return nil
}
