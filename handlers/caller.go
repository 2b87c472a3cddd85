package handlers

import (
	"context"
	"net/http"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/token"
)

type callerKey struct{}

// identify establishes who is calling before any body is read, and refuses credentials that do
// not verify; what the caller may ask for is decided later by the issuer's policy.
func identify(auth *authn.Authenticator, reply responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller, err := auth.Identify(r)
			if err != nil {
				reply.error(w, r, err)
				return
			}
			if caller == (token.Caller{}) { // anonymous is what callerOf returns anyway; saves two allocations
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
		})
	}
}

// callerOf returns the caller identify established; anonymous if it did not run.
func callerOf(r *http.Request) token.Caller {
	caller, _ := r.Context().Value(callerKey{}).(token.Caller)
	return caller
}
