package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
)

// destinationRow is a destination as the pages show it: its URL's query
// values hidden, its keys never shown.
type destinationRow struct {
	ID, Kind, URL, Description, Events, Filter string
	Enabled                                    bool
	DisabledReason                             string
	FailingSince                               int64
	CreatedAt                                  int64
	State                                      string // ok, failing, disabled: the badge
}

func rowOf(d *delivery.Destination) destinationRow {
	r := destinationRow{ID: d.ID, Kind: string(d.Kind), URL: dispatch.RedactURL(d.URL), Description: d.Description,
		Enabled: d.Enabled, DisabledReason: d.DisabledReason, FailingSince: d.FailingSince, CreatedAt: d.CreatedAt, State: "ok"}
	var types []string
	for _, t := range d.Filter.Types {
		types = append(types, string(t))
	}
	r.Events = strings.Join(types, ", ")
	var f []string
	if d.Filter.AppKey != "" {
		f = append(f, "app "+d.Filter.AppKey)
	}
	if d.Filter.RoomPrefix != "" {
		f = append(f, "rooms "+d.Filter.RoomPrefix+"…")
	}
	r.Filter = strings.Join(f, ", ")
	switch {
	case !d.Enabled:
		r.State = "disabled"
	case d.FailingSince != 0:
		r.State = "failing"
	}
	return r
}

type destinationsView struct {
	page
	Items []destinationRow
}

type destinationView struct {
	page
	destinationRow
	Attempts    []delivery.AttemptRecord
	DeadLetters []delivery.DeadLetter
	Notice      string
}

func (d *Dashboard) destinations(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	list, err := d.opts.Destinations.Destinations(ctx)
	if err != nil {
		return err
	}
	v := &destinationsView{page: page{Title: "Destinations", Nav: "destinations"}}
	for i := range list {
		v.Items = append(v.Items, rowOf(&list[i]))
	}
	d.render(w, r, http.StatusOK, "destinations", v)
	return nil
}

// destinationID returns the path's id, or a notFound for one that could
// not be a destination's.
func destinationID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !delivery.ValidID(id) {
		return "", &notFound{"No such destination."}
	}
	return id, nil
}

func (d *Dashboard) destination(w http.ResponseWriter, r *http.Request) error {
	id, err := destinationID(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	store := d.opts.Destinations
	dst, err := store.Destination(ctx, id)
	if errors.Is(err, delivery.ErrNoDestination) {
		return &notFound{"No destination " + id + "."}
	}
	if err != nil {
		return err
	}
	v := &destinationView{page: page{Title: "Destination " + id, Nav: "destinations"}, destinationRow: rowOf(&dst)}
	if v.Attempts, err = store.Attempts(ctx, id, 50); err != nil {
		return err
	}
	if v.DeadLetters, err = store.DeadLetters(ctx, id, 200); err != nil {
		return err
	}
	if n := r.URL.Query().Get("redelivered"); n != "" {
		if k, err := strconv.Atoi(n); err == nil {
			v.Notice = strconv.Itoa(k) + " dead " + map[bool]string{true: "letter", false: "letters"}[k == 1] + " put back to be sent."
		}
	}
	d.render(w, r, http.StatusOK, "destination", v)
	return nil
}

// redeliver sends a destination's dead letters again: the one the form
// names (seq), or all.
func (d *Dashboard) redeliver(w http.ResponseWriter, r *http.Request) error {
	id, err := destinationID(r)
	if err != nil {
		return err
	}
	var seqs []int64
	if s := r.PostFormValue("seq"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return &badInput{"seq", "not a dead letter"}
		}
		seqs = []int64{n}
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if _, err := d.opts.Destinations.Destination(ctx, id); errors.Is(err, delivery.ErrNoDestination) {
		return &notFound{"No destination " + id + "."}
	} else if err != nil {
		return err
	}
	n, err := d.opts.Destinations.Redeliver(ctx, id, seqs, d.opts.Now().UnixMilli())
	if err != nil {
		return err
	}
	if d.opts.DestinationsChanged != nil {
		d.opts.DestinationsChanged()
	}
	http.Redirect(w, r, "/destinations/"+url.PathEscape(id)+"?redelivered="+strconv.Itoa(n), http.StatusSeeOther)
	return nil
}
