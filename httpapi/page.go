package httpapi

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/registrar-go/registrar/reducer/registration"
)

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Parse(pageSource))

// partialHeader asks for the live part of the page only: the page's
// script sends it when it refreshes.
const partialHeader = "X-Registrar-Partial"

// pageTransitions is how many transitions the page shows.
const pageTransitions = 25

// pageLimits are the page sizes the form offers.
var pageLimits = []int{25, 50, 100, 250, 500, 1000}

type option struct {
	Value    string
	Selected bool
}

type countView struct {
	State string
	N     int
}

type rowView struct {
	ID, State, Type, Version string
	LastHeartbeat            string
	DeadlineKind, Deadline   string
	Generation               int64
}

type transitionView struct {
	At, ID, Input, State string
}

type statView struct {
	Name  string
	Value int64
}

type pageView struct {
	Title, Now   string
	RefreshMS    int64
	Error        string
	StateOptions []option
	TypeOptions  []option
	LimitOptions []option
	Capability   string
	Total        int
	Counts       []countView
	Runtime      []statView
	Rows         []rowView
	Filtered     bool
	FirstURL     string
	NextURL      string

	HasTransitions bool
	Transitions    []transitionView
}

// setPageHeaders sets the headers of every HTML response: no caching, and
// a policy that allows only the handler's own files.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// displayTime writes t for the page: UTC to the second, "—" when unset.
func displayTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// page renders the status page, or its live part for the page's script.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	v := pageView{Title: h.title, Now: displayTime(time.Now()), RefreshMS: h.refresh.Milliseconds(), HasTransitions: h.transitions != nil}
	status := http.StatusOK
	vals := r.URL.Query()
	q, qerr := parseQuery(r, listParams, DefaultPageRows)
	if qerr != nil {
		status, v.Error = http.StatusBadRequest, "Bad filter: "+qerr.Error()
		q = registration.Query{Limit: DefaultPageRows}
	}
	// The form shows what was asked, even when it was refused.
	for _, s := range registration.States() {
		v.StateOptions = append(v.StateOptions, option{Value: string(s), Selected: slices.Contains(q.States, s)})
	}
	for _, t := range registration.NodeTypes {
		v.TypeOptions = append(v.TypeOptions, option{Value: t, Selected: t == vals.Get("node_type")})
	}
	for _, n := range pageLimits {
		v.LimitOptions = append(v.LimitOptions, option{Value: strconv.Itoa(n), Selected: n == q.Limit})
	}
	v.Capability = vals.Get("capability")
	v.Filtered = len(q.States) > 0 || q.NodeType != "" || q.Capability != "" || !q.UpdatedSince.IsZero()

	if counts, total, err := h.counts(r); err != nil {
		status, v.Error = h.pageStoreError(r, err)
	} else {
		v.Total = total
		for _, s := range registration.States() {
			v.Counts = append(v.Counts, countView{State: string(s), N: counts[string(s)]})
		}
	}
	if v.Error == "" {
		ctx, cancel := h.withTimeout(r)
		p, err := h.reader.List(ctx, q)
		cancel()
		if err != nil {
			status, v.Error = h.pageStoreError(r, err)
		} else {
			for _, it := range p.Items {
				v.Rows = append(v.Rows, row(it))
			}
			if p.Next != "" {
				v.NextURL = pageURL(vals, p.Next)
			}
			if q.Cursor != "" {
				v.FirstURL = pageURL(vals, "")
			}
		}
	}
	if h.stats != nil {
		v.Runtime = runtimeView(h)
	}
	if h.transitions != nil {
		for _, t := range h.transitions.Recent(pageTransitions) {
			v.Transitions = append(v.Transitions, transitionView{At: displayTime(t.At), ID: t.EntityID.String(), Input: t.Input, State: t.State})
		}
	}
	name := "page"
	if r.Header.Get(partialHeader) != "" {
		name = "live"
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, name, v); err != nil {
		h.logger.Error("registrar/httpapi: render the status page", "error", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("the status page failed to render")
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageStoreError is storeError for the page: a status and the message the
// page shows.
func (h *Handler) pageStoreError(r *http.Request, err error) (int, string) {
	f := h.classify(r, err)
	switch f.status {
	case http.StatusBadRequest:
		return f.status, "Bad filter: " + err.Error()
	case http.StatusServiceUnavailable:
		return f.status, "The registration store is unavailable; the page retries."
	case 0: // the client went away
		return http.StatusServiceUnavailable, "The request ended."
	}
	return f.status, "The registration store failed to answer (see the service's log)."
}

// pageURL is the page's URL with vals and another cursor ("" for the
// first page), relative to the page.
func pageURL(vals url.Values, cursor string) string {
	u := url.Values{}
	for k, vs := range vals {
		if k != "cursor" {
			u[k] = vs
		}
	}
	if cursor != "" {
		u.Set("cursor", cursor)
	}
	if len(u) == 0 {
		return "./"
	}
	return "?" + u.Encode()
}

// row is a projection as the table shows it: the deadline is the one the
// state waits for.
func row(p *registration.Projection) rowView {
	rv := rowView{ID: p.EntityID.String(), State: string(p.State), Type: p.NodeType, Version: p.NodeVersion,
		LastHeartbeat: displayTime(p.LastHeartbeatAt), Deadline: "—", Generation: p.Generation}
	if rv.Version == "" {
		rv.Version = "—"
	}
	switch p.State {
	case registration.StateAwaitingAck:
		rv.DeadlineKind, rv.Deadline = "ack", deadline(p.AckDeadline)
	case registration.StateAckReceived, registration.StateActive:
		rv.DeadlineKind, rv.Deadline = "liveness", deadline(p.LivenessDeadline)
	}
	return rv
}

// deadline writes a deadline; one at or past bus.MaxTime's year means
// none is set in practice.
func deadline(t time.Time) string {
	if !t.IsZero() && t.Year() >= 9000 {
		return "never"
	}
	return displayTime(t)
}

// runtimeView lists the runtime's counters that an operator watches.
func runtimeView(h *Handler) []statView {
	s := h.stats()
	return []statView{
		{"handled", s.Handled}, {"no-ops", s.NoOps}, {"no-ops warned", s.NoOpsWarned},
		{"events published", s.EventsPublished}, {"intents executed", s.IntentsExecuted},
		{"dead-lettered", s.DeadLettered}, {"retries", s.Retries}, {"conflicts", s.Conflicts},
		{"relayed", s.Relayed},
	}
}
