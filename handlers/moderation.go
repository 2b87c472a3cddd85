package handlers

import (
	"net/http"

	"github.com/token-service/token-service/moderation"
)

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
			reply.error(w, r, err)
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
		q, err := decodeBanQuery(r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		bans, err := mod.List(q)
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
		q, err := decodeBanQuery(r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		if err := mod.Lift(r.Context(), callerOf(r), q); err != nil {
			reply.error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeBanQuery reads ?room= and ?identity=, each at most once; any other parameter is
// refused, as an unknown body field is.
func decodeBanQuery(r *http.Request) (moderation.BanQuery, error) {
	query := r.URL.Query()
	for name, values := range query {
		field := echoed(name)
		switch {
		case name != "room" && name != "identity":
			return moderation.BanQuery{}, badRequest("invalid_request", "unknown query parameter "+field, field)
		case len(values) > 1:
			return moderation.BanQuery{}, badRequest("invalid_request", "query parameter "+field+" appears more than once", field)
		}
	}
	return moderation.BanQuery{Room: query.Get("room"), Identity: query.Get("identity")}, nil
}
