package handlers

import (
	"net/http"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/token"
)

// callerOf is who authn established is calling; refuseBadCredentials has already answered any
// request whose credentials did not verify.
func callerOf(r *http.Request) token.Caller {
	caller, _ := authn.CallerOf(r)
	return caller
}
