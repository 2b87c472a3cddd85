package authn

import (
	"context"
	"net/http"

	"github.com/token-service/token-service/token"
)

type callerKey struct{}

type identified struct {
	caller token.Caller
	err    error
}

// Middleware establishes who is calling before any body is read and keeps the answer, or the
// refusal of credentials that do not verify, for CallerOf. It never replies itself, so that the
// rate limit can count a request with bad credentials (by its address) before it is refused.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := a.Identify(r)
		if err == nil && caller == (token.Caller{}) { // anonymous is what CallerOf returns anyway; saves two allocations
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, identified{caller, err})))
	})
}

// CallerOf returns the caller Middleware established (anonymous if it did not run), and
// token.ErrBadCredentials if the request's credentials did not verify.
func CallerOf(r *http.Request) (token.Caller, error) {
	id, _ := r.Context().Value(callerKey{}).(identified)
	return id.caller, id.err
}
