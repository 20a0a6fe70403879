// Package dashboard is recledger's web dashboard: server-rendered pages
// (overview, recordings, a recording's files and timeline, quarantine)
// embedded in the binary, readable without JavaScript. A small script of
// its own, no framework and nothing from a CDN, follows the API's event
// stream and refreshes the page's data in place as callbacks arrive.
//
// Access follows the API's rule (package access): with an API token, a
// login form sets a session cookie signed by the token; without one,
// loopback clients only.
package dashboard

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

// Store is what the dashboard reads.
type Store interface {
	Recording(ctx context.Context, recordID string) (ledger.State, error)
	RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error)
	ListRecordings(ctx context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error)
	CountRecordings(ctx context.Context, f ledger.RecordingFilter, upTo int) (int64, error)
	FileRecordings(ctx context.Context, fileName string) ([]ledger.State, error)
	ListFiles(ctx context.Context, f ledger.FileFilter) (ledger.FilePage, error)
	LatestEvents(ctx context.Context, n int) ([]ledger.Event, error)
	QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error)
	Stats(ctx context.Context, now time.Time) (ledger.Stats, error)
	Activity(ctx context.Context, since int64) ([]ledger.Minute, error)
}

// Options configure the dashboard.
type Options struct {
	// Access is the rule the API applies too; its session cookie opens both
	// (the pages follow the API's event stream).
	Access *access.Rule
	Now    func() time.Time // the server clock
	Logger *slog.Logger
	// StreamPath is the API's event stream the pages follow
	// (/v1/events/stream).
	StreamPath string
	// Destinations, when set, adds the destination pages;
	// DestinationsChanged is called after a redelivery.
	Destinations        delivery.Store
	DestinationsChanged func()
	// VerifyStorage says storage verification runs (--verify-storage): the
	// recording page offers to check its files again. The checks a store
	// keeps (Verifications) are shown either way.
	VerifyStorage bool
}

// Dashboard serves the pages.
type Dashboard struct {
	store     Store
	opts      Options
	pages     map[string]*template.Template
	assets    map[string]asset
	assetURLs map[string]string // name -> /static/BASE.HASH.EXT, for the pages
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// queryTimeout bounds one page's reads.
const queryTimeout = 10 * time.Second

// New returns the dashboard over store.
func New(store Store, o Options) (*Dashboard, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Access == nil {
		o.Access = access.New("", o.Now)
	}
	if o.StreamPath == "" {
		o.StreamPath = "/v1/events/stream"
	}
	d := &Dashboard{store: store, opts: o, pages: map[string]*template.Template{}, assets: map[string]asset{}}
	if err := d.loadAssets(); err != nil {
		return nil, err
	}
	d.assetURLs = make(map[string]string, len(d.assets))
	for n, a := range d.assets {
		d.assetURLs[n] = "/static/" + hashedName(n, a.etag)
	}
	funcs := d.funcs()
	for _, page := range []string{"overview", "recordings", "recording", "quarantine", "login", "message", "destinations", "destination", "files"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		d.pages[page] = t
	}
	return d, nil
}

func (d *Dashboard) loadAssets() error {
	return fs.WalkDir(staticFiles, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		d.assets[path.Base(p)] = asset{body: b, contentType: ct, etag: hex.EncodeToString(sum[:8])}
		return nil
	})
}

// Register adds the dashboard's routes to mux.
func (d *Dashboard) Register(mux *http.ServeMux) {
	page := func(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
		return d.guard(h)
	}
	mux.Handle("GET /{$}", page(d.overview))
	mux.Handle("GET /recordings", page(d.recordings))
	mux.Handle("GET /recordings/{recordId}", page(d.recording))
	mux.Handle("GET /recordings/{recordId}/files.csv", page(d.recordingFilesCSV))
	mux.Handle("GET /files", page(d.files))
	mux.Handle("GET /files.csv", page(d.filesCSV))
	mux.Handle("GET /quarantine", page(d.quarantine))
	mux.Handle("GET /search", page(d.search))
	mux.Handle("GET /static/{name}", http.HandlerFunc(d.static))
	mux.Handle("GET /login", d.headers(http.HandlerFunc(d.loginForm)))
	// Cross-origin form posts are refused (Sec-Fetch-Site / Origin), so
	// another site cannot log a browser in or out.
	csrf := http.NewCrossOriginProtection()
	mux.Handle("POST /login", d.headers(csrf.Handler(http.HandlerFunc(d.login))))
	mux.Handle("POST /logout", d.headers(csrf.Handler(http.HandlerFunc(d.logout))))
	mux.Handle("POST /recordings/{recordId}/verify", csrf.Handler(page(d.recheck)))
	if d.opts.Destinations != nil {
		mux.Handle("GET /destinations", page(d.destinations))
		mux.Handle("GET /destinations/{id}", page(d.destination))
		mux.Handle("POST /destinations/{id}/redeliver", csrf.Handler(page(d.redeliver)))
	}
}

// headers sets what every page carries: no caching, no framing, no
// referrer (file URLs may carry storage credentials), and a content
// policy that allows only the dashboard's own script and style. Media may
// come from the customer's storage, wherever it is.
func (d *Dashboard) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"media-src http: https:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// notFound answers 404 with the page's own message.
type notFound struct{ what string }

func (e *notFound) Error() string { return e.what }

// badInput answers 400 with a message naming the field.
type badInput struct{ field, reason string }

func (e *badInput) Error() string { return e.field + ": " + e.reason }

// guard applies the access rule, then turns a page's error into an answer.
func (d *Dashboard) guard(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return d.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := d.opts.Access.Check(r)
		if wait := access.RetryAfter(err); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		}
		switch {
		case errors.Is(err, access.ErrTooManyAttempts):
			d.render(w, r, http.StatusTooManyRequests, "message", &messageView{page: page{Title: "Too many wrong tokens", Outside: true},
				Message: "Too many wrong tokens came from your address. Wait a little and try again."})
			return
		case errors.Is(err, access.ErrUnauthorized):
			if r.Header.Get(liveHeader) != "" { // the page's script: it tells the user
				http.Error(w, "log in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		case errors.Is(err, access.ErrHost):
			d.render(w, r, http.StatusForbidden, "message", &messageView{page: page{Title: "Not allowed under this name", Outside: true},
				Message: "This recledger has no API token, so it answers only under a loopback name (localhost, 127.0.0.1, [::1]) or a name set with --allowed-hosts (RECLEDGER_ALLOWED_HOSTS): a web page on another name could otherwise read it. Open it as http://localhost:PORT/, or set --allowed-hosts or --api-token."})
			return
		case errors.Is(err, access.ErrForbidden):
			d.render(w, r, http.StatusForbidden, "message", &messageView{page: page{Title: "Not allowed", Outside: true},
				Message: "This recledger has no API token, so it answers only browsers on its own machine (and not through a proxy). Set --api-token (RECLEDGER_API_TOKEN) to open it to others."})
			return
		}
		err = h(w, r)
		if err == nil || r.Context().Err() != nil {
			return
		}
		var nf *notFound
		var bad *badInput
		switch {
		case errors.As(err, &nf):
			d.render(w, r, http.StatusNotFound, "message", &messageView{page: page{Title: "Not found"}, Message: nf.what})
		case errors.As(err, &bad):
			d.render(w, r, http.StatusBadRequest, "message", &messageView{page: page{Title: "Check the filter"}, Message: bad.Error()})
		default:
			d.opts.Logger.Error("dashboard page failed", "path", r.URL.Path, "err", err)
			d.render(w, r, http.StatusServiceUnavailable, "message", &messageView{page: page{Title: "Store unavailable"},
				Message: "The store could not answer. Retry in a moment; the server log says why."})
		}
	}))
}

// liveHeader marks the page script's refresh requests.
const liveHeader = "X-Recledger-Live"

// static serves the embedded assets. The pages ask for them under names
// carrying their content's hash (app.3f2a9c1d0e4b5a67.css), so that URL
// never changes meaning: a browser keeps it a year without asking again,
// and a new build's assets are new URLs. Any other name of an asset (its
// plain name, a hash of another build: a page from an older or newer
// instance during a rolling upgrade) gets this build's content, not to be
// kept without asking again.
func (d *Dashboard) static(w http.ResponseWriter, r *http.Request) {
	name, hash := splitHashedName(r.PathValue("name"))
	a, ok := d.assets[name]
	if !ok {
		d.ErrorPage(w, r, http.StatusNotFound, "No such file among the dashboard's assets.")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("ETag", `"`+a.etag+`"`)
	if hash == a.etag {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+a.etag+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(a.body)
}

// hashedName puts hash before name's extension: app.css -> app.HASH.css.
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// splitHashedName undoes hashedName; a name without a hash comes back
// whole, with an empty hash.
func splitHashedName(p string) (name, hash string) {
	ext := path.Ext(p)
	stem := strings.TrimSuffix(p, ext)
	h := path.Ext(stem)
	if len(h) < 2 {
		return p, ""
	}
	return strings.TrimSuffix(stem, h) + ext, h[1:]
}
