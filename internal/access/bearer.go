package access

import "net/http"

// ErrTokenRequired is an ErrForbidden: the endpoint is the token holder's
// alone (erasure), and no token is configured.
var ErrTokenRequired = &tokenRequiredError{}

type tokenRequiredError struct{}

func (*tokenRequiredError) Error() string {
	return "this endpoint needs an API token: set --api-token and send it as a bearer token"
}

func (*tokenRequiredError) Is(target error) bool { return target == ErrForbidden }

// CheckBearer is Check for what only the holder of the token may do (an
// erasure cannot be undone): a token must be configured and sent as
// "Authorization: Bearer TOKEN". A loopback client without a token is
// refused (ErrTokenRequired), and so is a dashboard session cookie alone
// (ErrUnauthorized): a page in the operator's browser must not be able to
// erase. Wrong tokens are paced as Check paces them.
func (r *Rule) CheckBearer(req *http.Request) error {
	if r.token() == "" {
		return ErrTokenRequired
	}
	got := bearer(req)
	if got == "" {
		return ErrUnauthorized
	}
	src := r.source(req)
	if wait := r.limiter.saturated(src); wait > 0 {
		return &RetryError{ErrTooManyAttempts, wait}
	}
	if r.tokenMatches(got) {
		return nil
	}
	return r.limiter.fail(req.Context(), src)
}
