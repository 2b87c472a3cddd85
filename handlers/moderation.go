package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/token-service/token-service/moderation"
	"github.com/token-service/token-service/token"
)

var (
	errBanStoreDown = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: moderation.ErrUnavailable.Error() + ": retry"}
	errTooManyBans  = &apiError{Status: http.StatusConflict, Code: "too_many_bans", Message: strconv.Itoa(moderation.MaxBans) + " bans are held already: lift some, or wait for them to expire"}
	errNoSuchBan    = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no ban in force for this room and identity"}
)

// moderationError turns the store's failures into replies; the rest goes to the responder.
func moderationError(err error) error {
	switch {
	case errors.Is(err, moderation.ErrUnavailable):
		return errBanStoreDown
	case errors.Is(err, moderation.ErrFull):
		return errTooManyBans
	}
	return err
}

// handleBan bans an identity from a room (or every room) and removes it from there.
func handleBan(mod *moderation.Moderator, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[moderation.BanRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		ban, err := mod.Ban(r.Context(), callerOf(r), req)
		if err != nil {
			reply.error(w, r, moderationError(err))
			return
		}
		encode(w, http.StatusCreated, ban)
	}
}

type banList struct {
	Bans []moderation.Ban `json:"bans"`
}

// handleListBans lists the bans in force, filtered by room and identity when they are given.
func handleListBans(mod *moderation.Moderator, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, identity, err := banFilter(r, false)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		bans, err := mod.List(callerOf(r), room, identity)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, banList{Bans: bans})
	}
}

// handleLiftBan lifts the ban of one identity from one room.
func handleLiftBan(mod *moderation.Moderator, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, identity, err := banFilter(r, true)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		lifted, err := mod.Lift(r.Context(), callerOf(r), room, identity)
		switch {
		case err != nil:
			reply.error(w, r, moderationError(err))
		case !lifted:
			reply.error(w, r, errNoSuchBan)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// banFilter reads ?room= and ?identity=, each at most once and checked as a ban's are; any
// other parameter is refused, as an unknown body field is.
func banFilter(r *http.Request, required bool) (room, identity string, err error) {
	query := r.URL.Query()
	for name, values := range query {
		field := echoed(name)
		switch {
		case name != "room" && name != "identity":
			return "", "", badRequest("invalid_request", "unknown query parameter "+field, field)
		case len(values) > 1:
			return "", "", badRequest("invalid_request", "query parameter "+field+" appears more than once", field)
		}
	}
	room, identity = query.Get("room"), query.Get("identity")
	if err := moderation.CheckRoom("room", room, required); err != nil {
		return "", "", err
	}
	if err := token.CheckIdentifier("identity", identity, required); err != nil {
		return "", "", err
	}
	return room, identity, nil
}
