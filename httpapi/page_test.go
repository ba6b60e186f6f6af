package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/httpapi"
)

// TestPage checks the status page over httptest: its headers, the live
// part alone for the script, a refused filter (400, the form kept, the
// value escaped), and the embedded files.
func TestPage(t *testing.T) {
	s := memorySubject(t)
	fixture(t, s, 10)
	h, err := httpapi.New(s.reader)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, h, http.MethodGet, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(string(body), `<span class="n" id="total">10</span>`) || strings.Count(string(body), "<tr data-id=") != 10 {
		t.Errorf("page lacks the total or the rows:\n%s", body)
	}
	if strings.Contains(string(body), `id="transitions"`) {
		t.Error("a transitions section without WithTransitions")
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/?state=active", nil)
	req.Header.Set("X-Registrar-Partial", "1")
	h.ServeHTTP(rec, req)
	if part := rec.Body.String(); rec.Code != 200 || strings.Contains(part, "<html") || strings.Contains(part, "<form") || !strings.Contains(part, `id="counts"`) {
		t.Errorf("partial: %d %s", rec.Code, part)
	}

	hostile := `"><script>alert(1)</script>`
	resp, body = get(t, h, http.MethodGet, "/?node_type="+urlEscape(hostile)+"&capability="+urlEscape(hostile))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Bad filter") || !strings.Contains(string(body), "<form") {
		t.Errorf("bad filter: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "<script>alert") {
		t.Errorf("the filter's value is not escaped:\n%s", body)
	}

	for path, ctype := range map[string]string{"/static/app.js": "javascript", "/static/style.css": "text/css", "/static/favicon.svg": "image/svg+xml"} {
		resp, body := get(t, h, http.MethodGet, path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("%s: %d %q %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if resp, _ := get(t, h, http.MethodGet, "/static/../page.html.tmpl"); resp.StatusCode == 200 {
		t.Error("the page's template is served")
	}
	if resp, _ := get(t, h, http.MethodGet, "/nowhere"); resp.StatusCode != 404 {
		t.Errorf("/nowhere: %d", resp.StatusCode)
	}
}

func urlEscape(s string) string {
	r := strings.NewReplacer(`"`, "%22", "<", "%3C", ">", "%3E", "(", "%28", ")", "%29", "/", "%2F")
	return r.Replace(s)
}

// TestTransitions: only committed state changes are kept, newest first,
// at most the capacity; Total counts all.
func TestTransitions(t *testing.T) {
	tr := httpapi.NewTransitions(3)
	ctx := context.Background()
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	m := &bus.Message{}
	if got := tr.MessageStart(ctx, m, nil); got != ctx {
		t.Error("MessageStart changed the context")
	}
	tr.MessageEnd(ctx, m, hooks.MessageEnd{Outcome: hooks.OutcomeNoop, Kind: "heartbeat", EntityID: ids[0]})
	tr.MessageEnd(ctx, m, hooks.MessageEnd{Outcome: hooks.OutcomeApplied, Kind: "heartbeat", EntityID: ids[0]}) // no state change
	tr.MessageEnd(ctx, m, hooks.MessageEnd{Outcome: hooks.OutcomeAborted, Kind: "ack", EntityID: ids[0], State: "active", Err: errors.New("x")})
	tr.MessageEnd(ctx, m, hooks.MessageEnd{Outcome: hooks.OutcomeDeadLettered, Kind: "ack", EntityID: ids[0], State: "active"})
	if n := len(tr.Recent(0)); n != 0 || tr.Total() != 0 {
		t.Fatalf("%d transitions recorded from no commit", n)
	}
	for i, id := range ids {
		tr.MessageEnd(ctx, m, hooks.MessageEnd{Outcome: hooks.OutcomeApplied, Kind: "ack", EntityID: id, State: []string{"a", "b", "c", "d", "e"}[i]})
	}
	got := tr.Recent(0)
	if len(got) != 3 || got[0].EntityID != ids[4] || got[1].EntityID != ids[3] || got[2].EntityID != ids[2] || got[0].State != "e" || got[0].Input != "ack" {
		t.Errorf("recent %+v", got)
	}
	if one := tr.Recent(1); len(one) != 1 || one[0].EntityID != ids[4] {
		t.Errorf("Recent(1) %+v", one)
	}
	if tr.Total() != 5 || got[0].At.Location().String() != "UTC" || got[0].At.IsZero() {
		t.Errorf("total %d, at %v", tr.Total(), got[0].At)
	}
	if _, err := hooks.New(tr); err != nil {
		t.Errorf("hooks.New refuses Transitions: %v", err)
	}
}

// TestNewValidates: the constructor and the options refuse what would
// not work.
func TestNewValidates(t *testing.T) {
	s := memorySubject(t)
	for name, opts := range map[string][]httpapi.Option{
		"nil option":      {nil},
		"nil transitions": {httpapi.WithTransitions(nil)},
		"nil stats":       {httpapi.WithStats(nil)},
		"fast refresh":    {httpapi.WithRefresh(10 * 1e6)},
		"zero timeout":    {httpapi.WithTimeout(0)},
		"blank title":     {httpapi.WithTitle("  ")},
	} {
		if _, err := httpapi.New(s.reader, opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := httpapi.New(nil); err == nil {
		t.Error("nil reader: no error")
	}
}
