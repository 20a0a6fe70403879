package dashboard

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/recledger/recledger/internal/access"
)

// loginForm shows the login form, or goes home when no login is needed.
func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	if !d.opts.Access.TokenRequired() || d.opts.Access.Check(r) == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "login", d.loginView(r, r.URL.Query().Get("next"), ""))
}

func (d *Dashboard) loginView(r *http.Request, next, problem string) *loginView {
	return &loginView{page: page{Title: "Log in", Outside: true}, Next: safeNext(next), Problem: problem, Insecure: !secureContext(r)}
}

// login checks the typed token under the API's limiter: a wrong one from a
// source past its budget is answered after its back-off, the right one at
// once (unless the source has its quota of wrong tokens waiting).
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if !d.opts.Access.TokenRequired() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		d.render(w, r, http.StatusBadRequest, "login", d.loginView(r, "", "The form could not be read."))
		return
	}
	cookie, err := d.opts.Access.Login(r, r.PostForm.Get("token"))
	if err != nil {
		if wait := access.RetryAfter(err); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		}
		if errors.Is(err, access.ErrTooManyAttempts) {
			d.render(w, r, http.StatusTooManyRequests, "login", d.loginView(r, r.PostForm.Get("next"),
				"Too many wrong tokens from your address. Wait a little and try again."))
			return
		}
		d.opts.Logger.Warn("dashboard login refused: wrong token", "remote", d.opts.Access.Client(r).String())
		d.render(w, r, http.StatusUnauthorized, "login", d.loginView(r, r.PostForm.Get("next"), "That is not this server's API token."))
		return
	}
	http.SetCookie(w, cookie)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// logout ends the session everywhere (access.Rule.Logout) and clears the
// cookie.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	cookie, err := d.opts.Access.Logout(r)
	http.SetCookie(w, cookie)
	if err != nil {
		d.opts.Logger.Error("logout not recorded for the other instances", "err", err)
		d.render(w, r, http.StatusServiceUnavailable, "message", &messageView{page: page{Title: "Logged out here only", Outside: true},
			Message: "You are logged out of this server, but the store could not record it for the others. Log in and out again when the store is back."})
		return
	}
	target := "/login"
	if !d.opts.Access.TokenRequired() {
		target = "/"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site. Browsers strip tab,
// CR and LF anywhere in a URL, trim spaces and control characters at its
// ends, and read "\" as "/": "/\t/evil" becomes "//evil", another host. So
// only a plain path is kept: no control character or space anywhere, no
// backslash, one leading "/" not followed by another, and it must parse as
// a URL without scheme or host. Anything else is "/".
func safeNext(next string) string {
	if len(next) == 0 || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for _, c := range next {
		if unicode.IsControl(c) || unicode.IsSpace(c) || c == unicode.ReplacementChar || !unicode.IsPrint(c) {
			return "/"
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// secureContext reports whether the browser will keep a Secure cookie from
// this request: over HTTPS (directly or through a proxy that says so) or
// on a loopback host name.
func secureContext(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
