package token

import (
	"errors"
	"slices"

	"github.com/livekit/protocol/livekit"
)

// Caller is who asks for a token, as the service established it from the request's credentials.
// The zero Caller is anonymous.
type Caller struct {
	Service      bool   // presented a valid service API key: a trusted backend
	ServiceKeyID string // which key: a digest prefix, never the key itself
	User         *User  // presented a valid end-user JWT from the app's identity provider
}

// User is an end user vouched for by the identity provider.
type User struct {
	Identity string
	Name     string
	// Rooms the user may join, when the identity provider restricts them.
	Rooms           []string
	RoomsRestricted bool
}

// Policy is who may ask for what. It follows from the configuration.
type Policy struct {
	Production  bool // no open privileged endpoints without service keys
	ServiceKeys bool // SERVICE_API_KEYS is set: backends identify themselves
	UserAuth    bool // POST /token needs an end user's JWT (or a service key)
}

// ErrUnauthenticated means the request needs credentials it did not bring.
var ErrUnauthenticated = errors.New("credentials required: send Authorization: Bearer <key or token>")

// Forbidden means the caller is known but may not have what it asked for.
type Forbidden struct {
	Field  string // the JSON name of the field refused, if one is
	Reason string // a whole sentence
}

func (e *Forbidden) Error() string { return e.Reason }

// admitService decides whether a caller may use a backend-only endpoint (agent tokens,
// verification). In development and test with no service keys they stay open, as on a laptop.
func (p Policy) admitService(c Caller) error {
	switch {
	case c.Service:
		return nil
	case p.ServiceKeys:
		return ErrUnauthenticated
	case p.Production:
		return &Forbidden{Reason: "this endpoint is disabled in production until SERVICE_API_KEYS is set"}
	}
	return nil
}

// admitParticipant decides whether a caller may ask for a participant token at all.
func (p Policy) admitParticipant(c Caller) error {
	if p.UserAuth && !c.Service && c.User == nil {
		return ErrUnauthenticated
	}
	return nil
}

// withCallerDefaults fills what a signed-in user left out of a join with what the identity
// provider vouches for: the identity and the display name.
func withCallerDefaults(c Caller, req JoinRequest) JoinRequest {
	if u := c.User; u != nil && !c.Service {
		if req.Identity == "" {
			req.Identity = u.Identity
		}
		if req.Name == "" {
			req.Name = u.Name
		}
	}
	return req
}

// authorizeJoin decides whether the caller may have the join it asks for: a user only as
// itself and in its rooms, and privileged grants only with a service key.
func (p Policy) authorizeJoin(c Caller, req JoinRequest, roomConfig *livekit.RoomConfiguration) error {
	if err := p.admitParticipant(c); err != nil {
		return err
	}
	if c.Service {
		return nil
	}
	if u := c.User; u != nil {
		if req.Identity != u.Identity {
			return &Forbidden{Field: "identity", Reason: "identity must be the authenticated user's own"}
		}
		if u.RoomsRestricted && !slices.Contains(u.Rooms, req.Room) {
			return &Forbidden{Field: "room", Reason: "the authenticated user may not join this room"}
		}
	}
	// A hidden participant can watch unseen and an agent-flagged one can register as a worker:
	// backend decisions, never an end user's.
	if p.Production || p.ServiceKeys || c.User != nil {
		for _, g := range []struct {
			field     string
			requested bool
		}{
			{"grants.hidden", valueOr(req.Grants.Hidden, false)},
			{"grants.agent", valueOr(req.Grants.Agent, false)},
			// Recording a room is a backend decision too (and an operator's storage bill).
			{"room_config.egress", roomConfig.GetEgress() != nil},
		} {
			if g.requested {
				return &Forbidden{Field: g.field, Reason: g.field + " needs a service API key"}
			}
		}
	}
	return nil
}
