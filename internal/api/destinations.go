package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
)

// Destinations is what the destinations endpoints work on.
type Destinations struct {
	Store        delivery.Store
	AllowPrivate bool // --allow-private-destinations
	// Changed is called after a change the dispatcher must see at once.
	Changed func()
	// Senders make the test attempts (POST .../test).
	Senders dispatch.Senders
	// Announce, when set, turns the outbox on before a destination is
	// added, so the new destination's cursor (the outbox's end) misses
	// nothing this instance projects after it.
	Announce func(on bool)
	Now      func() time.Time
}

// errBadBody is a request body that cannot be used.
type errBadBody struct{ reason string }

func (e *errBadBody) Error() string { return e.reason }

// DestinationView is a destination as the API shows it (and the CLI reads
// it): keys as hints, the URL's query values hidden.
type DestinationView struct {
	ID             string          `json:"id"`
	Type           delivery.Kind   `json:"type"`
	URL            string          `json:"url"`
	Description    string          `json:"description,omitempty"`
	Events         []delivery.Type `json:"events"`
	AppKey         string          `json:"appKey,omitempty"`
	RoomPrefix     string          `json:"roomPrefix,omitempty"`
	Stream         string          `json:"stream,omitempty"`
	Prefix         string          `json:"prefix,omitempty"`
	MaxAge         string          `json:"maxAge,omitempty"` // nats: the stream's retention, e.g. 168h0m0s
	Keys           []KeyView       `json:"keys"`
	PublicKey      string          `json:"publicKey,omitempty"` // whpk_..., when it signs v1a
	Enabled        bool            `json:"enabled"`
	DisabledReason string          `json:"disabledReason,omitempty"`
	FailingSince   *int64          `json:"failingSince"`
	CreatedAt      int64           `json:"createdAt"`
	Cursor         int64           `json:"cursor"`
	// Secret is the new secret or key, in full: only in the answer that
	// created it.
	Secret string `json:"secret,omitempty"`
}

// KeyView is a signing key as the API shows it.
type KeyView struct {
	Hint    string `json:"hint"`              // the start of the key, for telling keys apart
	Expires *int64 `json:"expires,omitempty"` // a key being rotated out: when it stops signing
}

func viewOf(d *delivery.Destination) DestinationView {
	v := DestinationView{ID: d.ID, Type: d.Kind, URL: dispatch.RedactURL(d.URL), Description: d.Description,
		Events: d.Filter.Types, AppKey: d.Filter.AppKey, RoomPrefix: d.Filter.RoomPrefix, Stream: d.Stream, Prefix: d.Prefix,
		Keys: []KeyView{}, Enabled: d.Enabled, DisabledReason: d.DisabledReason, CreatedAt: d.CreatedAt, Cursor: d.Cursor}
	if d.MaxAge != 0 {
		v.MaxAge = d.MaxAge.String()
	}
	if v.Events == nil {
		v.Events = []delivery.Type{}
	}
	if d.FailingSince != 0 {
		v.FailingSince = &d.FailingSince
	}
	for _, k := range d.Keys {
		kv := KeyView{Hint: webhook.Hint(k.Secret)}
		if k.Expires != 0 {
			kv.Expires = &k.Expires
		}
		v.Keys = append(v.Keys, kv)
		if v.PublicKey == "" && strings.HasPrefix(k.Secret, webhook.PrivateKeyPrefix) {
			if kp, err := webhook.ParseKeyPair(k.Secret); err == nil {
				v.PublicKey = kp.PublicKey()
			}
		}
	}
	return v
}

// destinationRequest is the body of POST and PATCH.
type destinationRequest struct {
	Type        *delivery.Kind   `json:"type"`
	URL         *string          `json:"url"`
	Secret      *string          `json:"secret"`  // webhook: whsec_... or whsk_...; generated when absent
	Signing     *string          `json:"signing"` // webhook: "v1" (HMAC, default) or "v1a" (ed25519)
	Description *string          `json:"description"`
	Events      *[]delivery.Type `json:"events"`
	AppKey      *string          `json:"appKey"`
	RoomPrefix  *string          `json:"roomPrefix"`
	Stream      *string          `json:"stream"`
	Prefix      *string          `json:"prefix"`
	MaxAge      *string          `json:"maxAge"` // nats: how long the stream keeps messages, e.g. 336h
	Enabled     *bool            `json:"enabled"`
}

func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &errBadBody{"the body is not the JSON object expected: " + err.Error()}
	}
	return nil
}

func (a *API) destinations() *Destinations {
	d := a.opts.Destinations
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

func (a *API) changed() {
	if c := a.opts.Destinations.Changed; c != nil {
		c()
	}
}

func newID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "dst_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (a *API) createDestination(w http.ResponseWriter, r *http.Request) error {
	ds := a.destinations()
	var req destinationRequest
	if err := readBody(r, &req); err != nil {
		return err
	}
	d := delivery.Destination{ID: newID(), Kind: delivery.Webhook, Enabled: true, CreatedAt: ds.Now().UnixMilli()}
	if req.Type != nil {
		d.Kind = *req.Type
	}
	if req.URL == nil {
		return &errBadBody{"url is required"}
	}
	var secret string
	if d.Kind == delivery.Webhook {
		switch {
		case req.Secret != nil:
			secret = *req.Secret
		case req.Signing == nil || *req.Signing == "v1":
			secret = webhook.NewSecret().Reveal()
		case *req.Signing == "v1a":
			secret = webhook.NewKeyPair().Reveal()
		default:
			return &errBadBody{"signing: want v1 or v1a"}
		}
		d.Keys = []delivery.Key{{Secret: secret}}
	} else if req.Secret != nil || req.Signing != nil {
		return &errBadBody{"secret and signing are for webhook destinations"}
	}
	if err := apply(&d, &req); err != nil {
		return err
	}
	if err := dispatch.Check(&d, ds.AllowPrivate); err != nil {
		return &errBadBody{err.Error()}
	}
	if ds.Announce != nil {
		ds.Announce(true)
	}
	if err := ds.Store.AddDestination(r.Context(), &d); err != nil {
		return err
	}
	a.changed()
	v := viewOf(&d)
	v.Secret = secret
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// apply sets what a request gives (not type, secret or signing).
func apply(d *delivery.Destination, req *destinationRequest) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&d.URL, req.URL)
	set(&d.Description, req.Description)
	set(&d.Filter.AppKey, req.AppKey)
	set(&d.Filter.RoomPrefix, req.RoomPrefix)
	set(&d.Stream, req.Stream)
	set(&d.Prefix, req.Prefix)
	if req.Events != nil {
		d.Filter.Types = *req.Events
	}
	if req.MaxAge != nil {
		age, err := time.ParseDuration(*req.MaxAge)
		if err != nil || age < 0 {
			return &errBadBody{"maxAge: want a duration such as 336h"}
		}
		d.MaxAge = age
	}
	if req.Enabled != nil {
		d.Enabled = *req.Enabled
		if d.Enabled {
			d.DisabledReason = ""
		} else {
			d.DisabledReason = "disabled by a user"
		}
	}
	if len(d.Description) > 1000 || len(d.Filter.AppKey) > 256 || len(d.Filter.RoomPrefix) > 256 || len(d.URL) > 2048 ||
		len(d.Stream) > 256 || len(d.Prefix) > 256 || len(d.Filter.Types) > 64 {
		return &errBadBody{"description (1000), appKey, roomPrefix, stream, prefix (256), url (2048) or events (64) is too long"}
	}
	for name, v := range map[string]string{"url": d.URL, "description": d.Description, "appKey": d.Filter.AppKey,
		"roomPrefix": d.Filter.RoomPrefix, "stream": d.Stream, "prefix": d.Prefix} {
		if !delivery.PlainText(v) || strings.ContainsRune(v, utf8.RuneError) {
			return &errBadBody{name + " holds a control character or invalid UTF-8"}
		}
	}
	return nil
}

func (a *API) listDestinations(w http.ResponseWriter, r *http.Request) error {
	list, err := a.destinations().Store.Destinations(r.Context())
	if err != nil {
		return err
	}
	items := make([]DestinationView, 0, len(list))
	for i := range list {
		items = append(items, viewOf(&list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) destination(r *http.Request) (delivery.Destination, error) {
	if !delivery.ValidID(r.PathValue("id")) {
		return delivery.Destination{}, fmt.Errorf("destination %q: %w", r.PathValue("id"), errNotFound)
	}
	d, err := a.destinations().Store.Destination(r.Context(), r.PathValue("id"))
	if errors.Is(err, delivery.ErrNoDestination) {
		return d, fmt.Errorf("destination %q: %w", r.PathValue("id"), errNotFound)
	}
	return d, err
}

func (a *API) getDestination(w http.ResponseWriter, r *http.Request) error {
	d, err := a.destination(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(&d))
	return nil
}

func (a *API) patchDestination(w http.ResponseWriter, r *http.Request) error {
	d, err := a.destination(r)
	if err != nil {
		return err
	}
	var req destinationRequest
	if err := readBody(r, &req); err != nil {
		return err
	}
	if req.Type != nil && *req.Type != d.Kind || req.Secret != nil || req.Signing != nil {
		return &errBadBody{"type cannot change; secrets change with POST /v1/destinations/{id}/rotate-secret"}
	}
	if err := apply(&d, &req); err != nil {
		return err
	}
	if err := dispatch.Check(&d, a.destinations().AllowPrivate); err != nil {
		return &errBadBody{err.Error()}
	}
	if err := a.destinations().Store.UpdateDestination(r.Context(), &d); err != nil {
		return err
	}
	a.changed()
	d, err = a.destination(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(&d))
	return nil
}

func (a *API) deleteDestination(w http.ResponseWriter, r *http.Request) error {
	if !delivery.ValidID(r.PathValue("id")) {
		return fmt.Errorf("destination %q: %w", r.PathValue("id"), errNotFound)
	}
	err := a.destinations().Store.RemoveDestination(r.Context(), r.PathValue("id"))
	if errors.Is(err, delivery.ErrNoDestination) {
		return fmt.Errorf("destination %q: %w", r.PathValue("id"), errNotFound)
	}
	if err != nil {
		return err
	}
	a.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateSecret gives the destination a new key of the kind it signs with;
// the old one keeps signing beside it for 24 hours.
func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	d, err := a.destination(r)
	if err != nil {
		return err
	}
	if d.Kind != delivery.Webhook {
		return &errBadBody{"only webhook destinations have secrets"}
	}
	now := a.destinations().Now()
	var secret string
	if len(d.Keys) > 0 && strings.HasPrefix(d.Keys[0].Secret, webhook.PrivateKeyPrefix) {
		secret = webhook.NewKeyPair().Reveal()
	} else {
		secret = webhook.NewSecret().Reveal()
	}
	d.Keys = delivery.Rotate(d.Keys, secret, now)
	if err := a.destinations().Store.UpdateDestination(r.Context(), &d); err != nil {
		return err
	}
	a.changed()
	v := viewOf(&d)
	v.Secret = secret
	writeJSON(w, http.StatusOK, v)
	return nil
}

// publicKey publishes a v1a destination's public key: receivers verify
// with it, and it is no secret, so it is served without the token.
func (a *API) publicKey(w http.ResponseWriter, r *http.Request) error {
	d, err := a.destination(r)
	if err != nil {
		return err
	}
	v := viewOf(&d)
	if v.PublicKey == "" {
		return fmt.Errorf("destination %q signs with no public key: %w", d.ID, errNotFound)
	}
	writeJSON(w, http.StatusOK, map[string]string{"publicKey": v.PublicKey})
	return nil
}

func (a *API) listAttempts(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.destination(r); err != nil {
		return err
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	items, err := a.destinations().Store.Attempts(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.destination(r); err != nil {
		return err
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	items, err := a.destinations().Store.DeadLetters(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// redeliver sends dead letters again: those whose seqs the body lists, or
// all of them when it lists none.
func (a *API) redeliver(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.destination(r); err != nil {
		return err
	}
	var req struct {
		Seqs []int64 `json:"seqs"`
	}
	if r.ContentLength != 0 {
		if err := readBody(r, &req); err != nil {
			return err
		}
	}
	if len(req.Seqs) > 1000 {
		return &errBadBody{"at most 1000 seqs at once; send none to redeliver every dead letter"}
	}
	n, err := a.destinations().Store.Redeliver(r.Context(), r.PathValue("id"), req.Seqs, a.destinations().Now().UnixMilli())
	if err != nil {
		return err
	}
	a.changed()
	writeJSON(w, http.StatusOK, map[string]int{"redelivered": n})
	return nil
}

// testDestination sends a test event (type recledger.test, not stored in
// the outbox) and answers with the attempt.
func (a *API) testDestination(w http.ResponseWriter, r *http.Request) error {
	d, err := a.destination(r)
	if err != nil {
		return err
	}
	ds := a.destinations()
	sender, err := ds.Senders(&d)
	if err != nil {
		return &errBadBody{err.Error()}
	}
	defer sender.Close()
	now := ds.Now().UTC()
	id := "evt_test_" + strconv.FormatInt(now.UnixNano(), 36)
	payload, _ := json.Marshal(map[string]any{"id": id, "type": TestEventType, "time": now.Format(time.RFC3339Nano),
		"destination": d.ID, "message": "a test event from recledger"})
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	at := sender.Send(ctx, &delivery.Stored{ID: id, Type: TestEventType, AppKey: "test", Payload: payload})
	out := map[string]any{"eventId": id, "outcome": at.Outcome.String(), "status": at.Status, "latencyMs": at.Latency.Milliseconds()}
	if at.Err != nil {
		out["error"] = at.Err.Error()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// TestEventType is the type of the event POST .../test sends.
const TestEventType delivery.Type = "recledger.test"
