package handlers

import (
	"net/http"

	"github.com/livekit/protocol/livekit"

	"github.com/token-service/token-service/issuance"
	"github.com/token-service/token-service/token"
)

// handleJoin issues a room-join token for an end user (the browser app).
func handleJoin(svc *issuance.Service, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.JoinRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		issued, err := svc.Join(r.Context(), callerOf(r), req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, issued)
	}
}

// handleAgent issues a token for a server-side participant such as the Media Bridge.
func handleAgent(svc *issuance.Service, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.AgentRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		issued, err := svc.Agent(r.Context(), callerOf(r), req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, issued)
	}
}

// handleVerify says whether a token is one LiveKit would accept, and what it grants.
func handleVerify(svc *issuance.Service, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[token.VerifyRequest](w, r)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		verification, err := svc.Verify(req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, verification)
	}
}

// handleConnectionDetails is LiveKit's TokenSource endpoint: what the client SDKs'
// TokenSource.endpoint() calls to get a server URL and a participant token.
func handleConnectionDetails(svc *issuance.Service, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req livekit.TokenSourceRequest
		if err := decodeProto(w, r, &req); err != nil {
			reply.error(w, r, err)
			return
		}
		details, err := svc.ConnectionDetails(r.Context(), callerOf(r), &req)
		if err != nil {
			reply.error(w, r, err)
			return
		}
		encode(w, http.StatusOK, details)
	}
}
