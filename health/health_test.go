package health_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type served struct {
	code   int
	header http.Header
	raw    string
	body   struct {
		Status string         `json:"status"`
		Checks []health.Check `json:"checks"`
	}
}

func serve(t *testing.T, h http.Handler, method string) served {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/readyz", nil))
	s := served{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if method == http.MethodGet && rec.Code != http.StatusMethodNotAllowed {
		if err := json.Unmarshal(rec.Body.Bytes(), &s.body); err != nil {
			t.Fatalf("body %q: %v", s.raw, err)
		}
	}
	return s
}

var (
	passing = health.Func(func(context.Context) health.Report {
		return health.Report{Checks: []health.Check{{Name: "running", OK: true}, {Name: "partitions", OK: true, Detail: "3 partitions"}}}
	})
	failing = health.Func(func(context.Context) health.Report {
		return health.Report{Checks: []health.Check{{Name: "running", OK: true}, {Name: "store", Error: "connection refused"}}}
	})
)

// TestHandlersStatusAndBody: each handler answers 200 with its pass word
// when every check passed, 503 with its fail word and the failed check's
// reason otherwise, as JSON that is not cached.
func TestHandlersStatusAndBody(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h          http.Handler
		code       int
		status     string
		failed     []string
		wantReason string
	}{
		{"readyz passing", health.Readyz(passing), 200, "ready", nil, ""},
		{"readyz failing", health.Readyz(failing), 503, "not_ready", []string{"store"}, "connection refused"},
		{"healthz passing", health.Healthz(passing), 200, "live", nil, ""},
		{"healthz failing", health.Healthz(failing), 503, "not_live", []string{"store"}, "connection refused"},
		{"no checks", health.Readyz(health.Func(func(context.Context) health.Report { return health.Report{} })), 200, "ready", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, tc.h, http.MethodGet)
			if s.code != tc.code || s.body.Status != tc.status {
				t.Fatalf("got %d %q, want %d %q; body %s", s.code, s.body.Status, tc.code, tc.status, s.raw)
			}
			if ct := s.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := s.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if s.body.Checks == nil || !strings.Contains(s.raw, `"checks":[`) {
				t.Errorf("checks is not a JSON array: %s", s.raw)
			}
			rep := health.Report{Checks: s.body.Checks}
			if got := rep.Failed(); !slices.Equal(got, tc.failed) {
				t.Errorf("failed checks %v, want %v", got, tc.failed)
			}
			for _, name := range tc.failed {
				c, _ := rep.Check(name)
				if c.Error != tc.wantReason {
					t.Errorf("check %s: error %q, want %q", name, c.Error, tc.wantReason)
				}
			}
			if strings.Contains(s.raw, `"error":""`) || strings.Contains(s.raw, `"detail":""`) {
				t.Errorf("empty fields are not omitted: %s", s.raw)
			}
		})
	}
}

// TestHandlersMethods: GET and HEAD are answered (HEAD with the status
// and no body); every other method is 405 with an Allow header, and the
// check does not run.
func TestHandlersMethods(t *testing.T) {
	ran := 0
	h := health.Readyz(health.Func(func(ctx context.Context) health.Report { ran++; return failing(ctx) }))
	if s := serve(t, h, http.MethodHead); s.code != 503 || s.raw != "" {
		t.Errorf("HEAD: %d %q, want 503 and no body", s.code, s.raw)
	}
	if ran != 1 {
		t.Fatalf("HEAD ran the check %d times", ran)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		s := serve(t, h, m)
		if s.code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, s.code)
		}
		if a := s.header.Get("Allow"); a != "GET, HEAD" {
			t.Errorf("%s: Allow %q", m, a)
		}
	}
	if ran != 1 {
		t.Errorf("the check ran for a method that is not allowed (%d runs)", ran)
	}
}

// TestHandlerBoundsTheCheck: the check's context has a deadline, and a
// check that does not return by it fails the probe with a "timeout"
// check.
func TestHandlerBoundsTheCheck(t *testing.T) {
	sawDeadline := false
	h := health.Healthz(health.Func(func(ctx context.Context) health.Report {
		_, sawDeadline = ctx.Deadline()
		return health.Report{}
	}))
	if s := serve(t, h, http.MethodGet); s.code != 200 || !sawDeadline {
		t.Fatalf("got %d, deadline %v", s.code, sawDeadline)
	}

	release := make(chan struct{})
	returned := make(chan struct{})
	stuck := health.Func(func(context.Context) health.Report {
		defer close(returned)
		<-release // ignores its context: a deadlocked component
		return health.Report{}
	})
	s := serve(t, health.Healthz(stuck, health.WithTimeout(10*time.Millisecond)), http.MethodGet)
	close(release)
	<-returned
	if s.code != 503 || s.body.Status != "not_live" {
		t.Fatalf("got %d %s", s.code, s.raw)
	}
	if c, ok := (health.Report{Checks: s.body.Checks}).Check("timeout"); !ok || c.OK || c.Error == "" {
		t.Fatalf("no failed timeout check: %s", s.raw)
	}
}
