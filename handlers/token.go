package handlers

import (
	"net/http"

	"github.com/livekit/protocol/livekit"

	"github.com/token-service/token-service/dispatch"
	"github.com/token-service/token-service/token"
)

// handleJoin issues a room-join token for an end user (the browser app).
func handleJoin(issuer *token.Issuer, dispatcher *dispatch.Dispatcher, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.JoinRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		issued, err := issuer.Join(callerOf(r), req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		ensureDispatches(r, dispatcher, issued.Room, &issued.AgentDispatch)
		encode(w, http.StatusOK, issued)
	}
}

// handleAgent issues a token for a server-side participant such as the Media Bridge.
func handleAgent(issuer *token.Issuer, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.AgentRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		issued, err := issuer.Agent(callerOf(r), req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, issued)
	}
}

// handleVerify says whether a token is one LiveKit would accept, and what it grants.
func handleVerify(issuer *token.Issuer, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.VerifyRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		verification, err := issuer.Verify(callerOf(r), req.Token)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, verification)
	}
}

// handleConnectionDetails is LiveKit's TokenSource endpoint: what the client SDKs'
// TokenSource.endpoint() calls to get a server URL and a participant token.
func handleConnectionDetails(issuer *token.Issuer, dispatcher *dispatch.Dispatcher, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req livekit.TokenSourceRequest
		if err := decodeProto(w, r, &req); err != nil {
			reply.error(w, r, err)
			return
		}
		details, err := issuer.ConnectionDetails(callerOf(r), &req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		ensureDispatches(r, dispatcher, details.RoomName, &details.AgentDispatch)
		encode(w, http.StatusOK, details)
	}
}

// ensureDispatches makes sure the agents an issued token dispatches are dispatched, and says how.
// A token without agents makes no call to LiveKit.
func ensureDispatches(r *http.Request, dispatcher *dispatch.Dispatcher, room string, ad *token.AgentDispatch) {
	if len(ad.Agents) > 0 {
		ad.Dispatches, ad.RoomConfigApplied = dispatcher.Ensure(r.Context(), room, ad.Agents)
	}
}
