package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Check is the outcome of one named check.
type Check struct {
	// Name is the check's stable snake_case name, such as "store".
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Detail says more about a check that passed (such as "idle: owns no
	// partitions"); it may be empty.
	Detail string `json:"detail,omitempty"`
	// Error says why the check failed; it is empty when OK. It must not
	// carry a secret.
	Error string `json:"error,omitempty"`
}

// Report is the outcome of a readiness or liveness check: the checks it is
// made of, in a stable order.
type Report struct {
	Checks []Check `json:"checks"`
}

// OK reports whether every check passed. A report without checks is ok.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed returns the names of the checks that failed, in order.
func (r Report) Failed() []string {
	var names []string
	for _, c := range r.Checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return names
}

// Check returns the check named name, and whether the report has it.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// ReadinessChecker is what [Readyz] checks. Ready must return by the time
// ctx ends and be safe for concurrent use.
type ReadinessChecker interface {
	Ready(ctx context.Context) Report
}

// LivenessChecker is what [Healthz] checks. Live must return by the time
// ctx ends, be safe for concurrent use, and not fail because something
// outside the process (a database, a broker) is down.
type LivenessChecker interface {
	Live(ctx context.Context) Report
}

// Func is a check function; it is both a [ReadinessChecker] and a
// [LivenessChecker].
type Func func(ctx context.Context) Report

// Ready calls f.
func (f Func) Ready(ctx context.Context) Report { return f(ctx) }

// Live calls f.
func (f Func) Live(ctx context.Context) Report { return f(ctx) }

// DefaultTimeout bounds a check run by a handler, by default; see
// [WithTimeout].
const DefaultTimeout = 2 * time.Second

// Option configures a handler of this package.
type Option interface {
	apply(*handler)
}

type optionFunc func(*handler)

func (f optionFunc) apply(h *handler) { f(h) }

// WithTimeout bounds how long the handler waits for the check, on top of
// the request's own context; the default is [DefaultTimeout]. Values that
// are not positive keep the default.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(h *handler) {
		if d > 0 {
			h.timeout = d
		}
	})
}

// Status words of the JSON body.
const (
	StatusReady    = "ready"
	StatusNotReady = "not_ready"
	StatusLive     = "live"
	StatusNotLive  = "not_live"
)

// Readyz returns the handler of a readiness probe (/readyz) that checks c:
// 200 and status "ready" when every check passed, 503 and "not_ready" with
// the reasons otherwise. See the package documentation for the contract.
func Readyz(c ReadinessChecker, opts ...Option) http.Handler {
	return newHandler(c.Ready, StatusReady, StatusNotReady, opts)
}

// Healthz returns the handler of a liveness probe (/healthz) that checks c:
// 200 and status "live" when every check passed, 503 and "not_live" with
// the reasons otherwise. See the package documentation for the contract.
func Healthz(c LivenessChecker, opts ...Option) http.Handler {
	return newHandler(c.Live, StatusLive, StatusNotLive, opts)
}

type handler struct {
	check      func(context.Context) Report
	pass, fail string
	timeout    time.Duration
}

func newHandler(check func(context.Context) Report, pass, fail string, opts []Option) *handler {
	h := &handler{check: check, pass: pass, fail: fail, timeout: DefaultTimeout}
	for _, o := range opts {
		o.apply(h)
	}
	return h
}

// body is the JSON the handlers serve.
type body struct {
	Status string  `json:"status"`
	Checks []Check `json:"checks"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep := h.run(req.Context())
	b := body{Status: h.pass, Checks: rep.Checks}
	code := http.StatusOK
	if !rep.OK() {
		b.Status, code = h.fail, http.StatusServiceUnavailable
	}
	if b.Checks == nil {
		b.Checks = []Check{}
	}
	out, err := json.Marshal(b)
	if err != nil { // a Check holds only strings and a bool
		panic(fmt.Sprintf("health: marshal the report: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(append(out, '\n'))
}

// run runs the check under ctx bounded by the timeout. A check that
// overruns is left to finish on its own goroutine (it must return once its
// context ends) and the report says it timed out.
func (h *handler) run(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	done := make(chan Report, 1)
	go func() { done <- h.check(ctx) }()
	select {
	case rep := <-done:
		return rep
	case <-ctx.Done():
		// Prefer a report that arrived together with the deadline.
		select {
		case rep := <-done:
			return rep
		default:
		}
		return Report{Checks: []Check{{Name: "timeout", Error: fmt.Sprintf("the check did not return within %v", h.timeout)}}}
	}
}
