package token

// The domain's refusals. The router's error table (handlers/respond.go) turns each into a status,
// a code and a field; nothing else picks a status.

// Invalid is a client mistake in one field of a request (400).
type Invalid struct {
	Field  string // the JSON name, e.g. "ttl_seconds" or "grants.canPublish"
	Reason string // a sentence fragment that follows the field name
}

func (e *Invalid) Error() string { return e.Field + " " + e.Reason }

// Unauthorized means the caller must bring credentials, or bring valid ones (401). It never
// says why credentials that were sent did not verify.
type Unauthorized struct {
	// BadCredentials is true when credentials were sent and did not verify (RFC 6750's
	// invalid_token), false when none were sent where some are needed.
	BadCredentials bool
	// Reason replaces the default sentence, where the credential is not a caller's (a
	// webhook's signature).
	Reason string
}

func (e *Unauthorized) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	if e.BadCredentials {
		return "the credentials sent are not valid"
	}
	return "credentials required: send Authorization: Bearer <key or token>"
}

// ErrUnauthenticated and ErrBadCredentials are the two Unauthorized refusals.
var (
	ErrUnauthenticated error = &Unauthorized{}
	ErrBadCredentials  error = &Unauthorized{BadCredentials: true}
)

// Forbidden means the caller is known but may not have what it asked for (403).
type Forbidden struct {
	Field  string // the JSON name of the field refused, if one is
	Reason string // a whole sentence
}

func (e *Forbidden) Error() string { return e.Reason }
