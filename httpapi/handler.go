package httpapi

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

//go:embed static
var staticFS embed.FS

// Defaults of the options.
const (
	// DefaultRefresh is how often the status page refreshes itself.
	DefaultRefresh = 2 * time.Second
	// DefaultTimeout bounds each read of the store a request makes.
	DefaultTimeout = 5 * time.Second
	// DefaultPageRows is the number of nodes the status page shows per
	// page when the request does not say (limit).
	DefaultPageRows = 50
)

// Handler serves the JSON API and the status page; see the package
// documentation for its routes. It is safe for concurrent use.
type Handler struct {
	reader      registration.Reader
	transitions *Transitions
	stats       func() registrar.Stats
	logger      *slog.Logger
	refresh     time.Duration
	timeout     time.Duration
	title       string
	mux         *http.ServeMux
	static      http.Handler
}

// Option configures a [Handler].
type Option interface{ apply(*Handler) error }

type optionFunc func(*Handler) error

func (f optionFunc) apply(h *Handler) error { return f(h) }

// WithTransitions shows the transitions t holds on the status page and
// serves them at GET /v1/transitions. Without it the page has no
// transitions section and /v1/transitions answers an empty list.
func WithTransitions(t *Transitions) Option {
	return optionFunc(func(h *Handler) error {
		if t == nil {
			return errors.New("registrar/httpapi: WithTransitions(nil)")
		}
		h.transitions = t
		return nil
	})
}

// WithStats adds the counters stats returns (a Runtime's Stats method) to
// GET /v1/stats, under "runtime", and to the status page.
func WithStats(stats func() registrar.Stats) Option {
	return optionFunc(func(h *Handler) error {
		if stats == nil {
			return errors.New("registrar/httpapi: WithStats(nil)")
		}
		h.stats = stats
		return nil
	})
}

// WithLogger receives one record per request that failed on the store's
// side (5xx), with the store's error; nil discards them. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(h *Handler) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		h.logger = l
		return nil
	})
}

// WithRefresh sets how often the status page refreshes itself
// (DefaultRefresh); it must be at least 100ms.
func WithRefresh(d time.Duration) Option {
	return optionFunc(func(h *Handler) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("registrar/httpapi: WithRefresh(%v): below 100ms", d)
		}
		h.refresh = d
		return nil
	})
}

// WithTimeout bounds each read of the store (DefaultTimeout); it must be
// positive. A read that runs out is answered 503.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(h *Handler) error {
		if d <= 0 {
			return fmt.Errorf("registrar/httpapi: WithTimeout(%v): not positive", d)
		}
		h.timeout = d
		return nil
	})
}

// WithTitle sets the status page's title ("registrar" by default), e.g.
// the environment's name.
func WithTitle(title string) Option {
	return optionFunc(func(h *Handler) error {
		if strings.TrimSpace(title) == "" {
			return errors.New("registrar/httpapi: WithTitle: empty title")
		}
		h.title = title
		return nil
	})
}

// New returns the handler of the JSON API and the status page, reading r.
func New(r registration.Reader, opts ...Option) (*Handler, error) {
	if r == nil {
		return nil, errors.New("registrar/httpapi: New: nil Reader")
	}
	h := &Handler{reader: r, logger: slog.Default(), refresh: DefaultRefresh, timeout: DefaultTimeout, title: "registrar"}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("registrar/httpapi: New: nil Option")
		}
		if err := o.apply(h); err != nil {
			return nil, err
		}
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("registrar/httpapi: embedded files: %w", err)
	}
	h.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/nodes", h.get(h.listNodes))
	mux.HandleFunc("/v1/nodes/{id}", h.get(h.getNode))
	mux.HandleFunc("/v1/stats", h.get(h.getStats))
	mux.HandleFunc("/v1/transitions", h.get(h.getTransitions))
	mux.HandleFunc("/v1/", h.get(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	}))
	mux.HandleFunc("/static/", h.get(h.serveStatic))
	mux.HandleFunc("/{$}", h.get(h.page))
	mux.HandleFunc("/", h.get(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		http.Error(w, "404 not found: "+r.URL.Path, http.StatusNotFound)
	}))
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// get admits GET and HEAD only.
func (h *Handler) get(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed: the API is read-only (GET, HEAD)")
			return
		}
		if r.Method == http.MethodHead {
			w = headWriter{w}
		}
		next(w, r)
	}
}

// headWriter answers HEAD: the headers and status of GET, no body (the
// server drops it too; this keeps every ResponseWriter honest).
type headWriter struct{ http.ResponseWriter }

// Write implements http.ResponseWriter; it drops b.
func (h headWriter) Write(b []byte) (int, error) { return len(b), nil }

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}

// apiError is the body of every error response.
type apiError struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e apiError
	e.Error.Status, e.Error.Code, e.Error.Message = status, code, msg
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a projection whose capabilities are not JSON (which no
		// store holds) fails to encode; it is answered as the bug it is.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"status":500,"code":"internal","message":"the response did not encode"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// storeFailure is how an error of the store is answered.
type storeFailure struct {
	status        int // 0: the client went away, nobody reads the answer
	code, message string
}

// classify says how to answer an error of the store: 404 for
// ErrNotFound, 400 for ErrBadCursor, 503 for a retryable error or a read
// that ran out of time, else 500. A 5xx is logged with the store's error,
// which the answer does not carry.
func (h *Handler) classify(r *http.Request, err error) storeFailure {
	switch {
	case errors.Is(err, registration.ErrNotFound):
		return storeFailure{http.StatusNotFound, "not_found", "no node with this id"}
	case errors.Is(err, registration.ErrBadCursor):
		return storeFailure{http.StatusBadRequest, "bad_request", err.Error()}
	case r.Context().Err() != nil:
		return storeFailure{}
	}
	unavailable := intent.IsRetryable(err) || errors.Is(err, context.DeadlineExceeded)
	h.logger.LogAttrs(r.Context(), slog.LevelError, "registrar/httpapi: store read failed",
		slog.String("path", r.URL.Path), slog.Bool("retryable", unavailable), slog.String("error", err.Error()))
	if unavailable {
		return storeFailure{http.StatusServiceUnavailable, "unavailable", "the registration store is unavailable; try again"}
	}
	return storeFailure{http.StatusInternalServerError, "internal", "the registration store failed to answer"}
}

// storeError answers an error of the store as JSON (see classify).
func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error) {
	f := h.classify(r, err)
	if f.status == 0 {
		return
	}
	if f.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, f.status, f.code, f.message)
}

// withTimeout returns the context of one store read.
func (h *Handler) withTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// listParams are the query parameters of /v1/nodes (and of the page).
var listParams = map[string]bool{"state": true, "node_type": true, "capability": true, "updated_since": true, "limit": true, "cursor": true}

// parseQuery reads the read API's query from the parameters of r; allow
// lists the parameters taken, others are an error. defLimit is the page
// size when limit is absent.
func parseQuery(r *http.Request, allow map[string]bool, defLimit int) (registration.Query, error) {
	vals := r.URL.Query()
	var q registration.Query
	for k := range vals {
		if !allow[k] {
			return q, fmt.Errorf("unknown query parameter %q (want one of state, node_type, capability, updated_since, limit, cursor)", k)
		}
	}
	for _, v := range vals["state"] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				q.States = append(q.States, registration.State(s))
			}
		}
	}
	single := func(name string) (string, error) {
		vs := vals[name]
		if len(vs) > 1 {
			return "", fmt.Errorf("query parameter %s given %d times", name, len(vs))
		}
		if len(vs) == 0 {
			return "", nil
		}
		return vs[0], nil
	}
	var err error
	if q.NodeType, err = single("node_type"); err != nil {
		return q, err
	}
	if q.Capability, err = single("capability"); err != nil {
		return q, err
	}
	if q.Cursor, err = single("cursor"); err != nil {
		return q, err
	}
	since, err := single("updated_since")
	if err != nil {
		return q, err
	}
	if since != "" {
		if q.UpdatedSince, err = time.Parse(time.RFC3339Nano, since); err != nil {
			return q, fmt.Errorf("updated_since %q is not an RFC 3339 time (2006-01-02T15:04:05Z)", since)
		}
	}
	limit, err := single("limit")
	if err != nil {
		return q, err
	}
	q.Limit = defLimit
	if limit != "" {
		if q.Limit, err = strconv.Atoi(limit); err != nil || q.Limit <= 0 {
			return q, fmt.Errorf("limit %q is not a page size from 1 to %d", limit, registration.MaxListLimit)
		}
	}
	// The read API's own checks: states, node type, capability, limit,
	// cursor. Its message names the field.
	if _, err := q.Request(); err != nil {
		return q, err
	}
	return q, nil
}

// nodePage is the body of GET /v1/nodes.
type nodePage struct {
	// Items are written by registration.Projection's MarshalJSON: the
	// projection table's columns, times in UTC, null when unset.
	Items []*registration.Projection `json:"items"`
	// NextCursor is the cursor of the next page; "" on the last page.
	NextCursor string `json:"next_cursor"`
}

func (h *Handler) listNodes(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, listParams, 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx, cancel := h.withTimeout(r)
	defer cancel()
	p, err := h.reader.List(ctx, q)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	out := nodePage{Items: p.Items, NextCursor: p.Next}
	if out.Items == nil {
		out.Items = []*registration.Projection{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getNode(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("node id %q is not a UUID (8-4-4-4-12 hex digits)", raw))
		return
	}
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "GET /v1/nodes/{id} takes no query parameters")
		return
	}
	ctx, cancel := h.withTimeout(r)
	defer cancel()
	p, err := h.reader.Get(ctx, id)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// statsJSON is the body of GET /v1/stats.
type statsJSON struct {
	// Total is the number of projections in the store's domain.
	Total int `json:"total"`
	// ByState counts them per state; every state is present.
	ByState map[string]int `json:"by_state"`
	// Transitions is how many transitions the handler's Transitions
	// recorded (absent without WithTransitions).
	Transitions *int64 `json:"transitions_recorded,omitempty"`
	// Runtime is the runtime's counters (absent without WithStats).
	Runtime *registrar.Stats `json:"runtime,omitempty"`
}

// counts reads the counts per state, every state present.
func (h *Handler) counts(r *http.Request) (map[string]int, int, error) {
	ctx, cancel := h.withTimeout(r)
	defer cancel()
	m, err := h.reader.CountByState(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]int, len(registration.States()))
	total := 0
	for _, s := range registration.States() {
		out[string(s)] = m[s]
		total += m[s]
	}
	return out, total, nil
}

func (h *Handler) getStats(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "GET /v1/stats takes no query parameters")
		return
	}
	by, total, err := h.counts(r)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	out := statsJSON{Total: total, ByState: by}
	if h.transitions != nil {
		n := h.transitions.Total()
		out.Transitions = &n
	}
	if h.stats != nil {
		s := h.stats()
		out.Runtime = &s
	}
	writeJSON(w, http.StatusOK, out)
}

// transitionsJSON is the body of GET /v1/transitions.
type transitionsJSON struct {
	Items []Transition `json:"items"`
}

func (h *Handler) getTransitions(w http.ResponseWriter, r *http.Request) {
	limit := 50
	for k, vs := range r.URL.Query() {
		if k != "limit" || len(vs) != 1 {
			writeError(w, http.StatusBadRequest, "bad_request", "GET /v1/transitions takes one parameter, limit")
			return
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n <= 0 || n > registration.MaxListLimit {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit %q is not a count from 1 to %d", vs[0], registration.MaxListLimit))
			return
		}
		limit = n
	}
	out := transitionsJSON{Items: []Transition{}}
	if h.transitions != nil {
		out.Items = h.transitions.Recent(limit)
	}
	writeJSON(w, http.StatusOK, out)
}
