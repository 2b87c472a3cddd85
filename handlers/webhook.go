package handlers

import (
	"errors"
	"net/http"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/webhook"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/token-service/token-service/metrics"
	"github.com/token-service/token-service/moderation"
	"github.com/token-service/token-service/token"
)

var errWebhookUnverified = &token.Unauthorized{BadCredentials: true,
	Reason: "webhook does not verify: it must be signed by LiveKit with a configured API key, over this exact body"}

type webhookReceipt struct {
	Event   string `json:"event"`
	Removal bool   `json:"removal"` // a banned participant joined and is being removed
}

// handleWebhook receives LiveKit's webhooks. Only a verified participant_joined does anything:
// a banned participant is queued for removal, and the reply never waits for it.
func handleWebhook(keys auth.KeyProvider, mod *moderation.Moderator, m *metrics.Metrics, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// webhook.Receive reads the whole body before it looks at the signature; an unsigned
		// request is refused before a byte of its body is read.
		if !signedWithKnownKey(r, keys) {
			m.WebhookVerificationFailed()
			reply.error(w, r, errWebhookUnverified)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		// webhook.Receive checks the signature again, and the body's SHA-256 in the token.
		body, err := webhook.Receive(r, keys)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			reply.error(w, r, errTooLarge)
			return
		case err != nil:
			m.WebhookVerificationFailed()
			reply.error(w, r, errWebhookUnverified)
			return
		}
		var event livekit.WebhookEvent
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &event); err != nil {
			reply.error(w, r, badRequest("invalid_request", "webhook body is not a LiveKit WebhookEvent", ""))
			return
		}
		receipt := webhookReceipt{Event: echoed(event.GetEvent())}
		if event.GetEvent() == webhook.EventParticipantJoined && event.GetRoom().GetName() != "" && event.GetParticipant().GetIdentity() != "" {
			receipt.Removal = mod.Joined(event.GetRoom().GetName(), event.GetParticipant().GetIdentity())
		}
		encode(w, http.StatusOK, receipt)
	}
}

// signedWithKnownKey reports whether the Authorization header is a token signed with one of the
// keys; the body it vouches for is checked by webhook.Receive.
func signedWithKnownKey(r *http.Request, keys auth.KeyProvider) bool {
	raw := r.Header.Get("Authorization")
	if raw == "" {
		return false
	}
	v, err := auth.ParseAPIToken(raw)
	if err != nil {
		return false
	}
	secret := keys.GetSecret(v.APIKey())
	if secret == "" {
		return false
	}
	_, _, err = v.Verify(secret)
	return err == nil
}
