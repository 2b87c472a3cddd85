package authn

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxJWKSBytes bounds a JWKS response: a provider's key set is a few KiB.
const maxJWKSBytes = 1 << 20

var errJWKSTooLarge = errors.New("JWKS response is over 1 MiB")

// jwksClient fetches the provider's keys. It follows no redirect, since a redirect could walk an
// https URL to plain http or to a host of the redirector's choosing (a 3xx is then a failed
// fetch, reported with its status), and it reads at most maxJWKSBytes of a reply. The timeout
// is keyfunc's HTTPTimeout, per request.
func jwksClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     boundedTransport{next: http.DefaultTransport},
	}
}

type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxJWKSBytes {
		resp.Body.Close()
		return nil, errJWKSTooLarge
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxJWKSBytes}
	return resp, nil
}

// boundedBody fails the read past its limit, rather than truncating: a cut-off key set must not
// look like a shorter valid one.
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errJWKSTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errJWKSTooLarge
	}
	return n, err
}

// scrubURL rewrites err so that it names the JWKS URL by scheme, host and path only: the query
// or user info may hold a secret (?client_secret=...), and net/http's url.Error, which keyfunc
// wraps into its messages, carries the URL whole.
func scrubURL(err error, raw string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	u, parseErr := url.Parse(raw)
	if parseErr != nil {
		return errors.New(strings.ReplaceAll(msg, raw, "[JWKS URL]"))
	}
	safe := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	// The URL as given and as net/http prints it (password masked) become the safe form; any
	// part that still shows is then cut out.
	for _, whole := range []string{raw, u.Redacted(), u.String()} {
		msg = strings.ReplaceAll(msg, whole, safe)
	}
	for _, part := range []string{u.RawQuery, u.Fragment, u.User.String()} {
		if part != "" {
			msg = strings.ReplaceAll(msg, part, "[redacted]")
		}
	}
	return errors.New(msg)
}
