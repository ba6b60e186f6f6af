package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/httpapi"
	"github.com/registrar-go/registrar/internal/tcpproxy"
	"github.com/registrar-go/registrar/reducer/registration"
)

// node is a projection as a client of the API decodes it.
type node struct {
	EntityID                 uuid.UUID         `json:"entity_id"`
	Domain                   string            `json:"domain"`
	CurrentState             string            `json:"current_state"`
	NodeType                 string            `json:"node_type"`
	NodeVersion              string            `json:"node_version"`
	Capabilities             json.RawMessage   `json:"capabilities"`
	Endpoints                map[string]string `json:"endpoints"`
	AckDeadline              *time.Time        `json:"ack_deadline"`
	LivenessDeadline         *time.Time        `json:"liveness_deadline"`
	LastHeartbeatAt          *time.Time        `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *time.Time        `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *time.Time        `json:"liveness_timeout_emitted_at"`
	LastAppliedEventID       *uuid.UUID        `json:"last_applied_event_id"`
	RegisteredAt             *time.Time        `json:"registered_at"`
	UpdatedAt                *time.Time        `json:"updated_at"`
	CorrelationID            *uuid.UUID        `json:"correlation_id"`
	Generation               int64             `json:"generation"`
}

type page struct {
	Items      []node `json:"items"`
	NextCursor string `json:"next_cursor"`
}

type apiErr struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// get requests path of h and returns the status and body.
func get(t *testing.T, h http.Handler, method, path string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // the client's types are the whole contract
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// wantError checks that the response is a JSON error with this status
// and code, whose message contains each of the words.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string, words ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	e := decode[apiErr](t, body)
	if e.Error.Status != status || e.Error.Code != code {
		t.Errorf("error %+v, want status %d code %s", e.Error, status, code)
	}
	for _, w := range words {
		if !strings.Contains(e.Error.Message, w) {
			t.Errorf("message %q lacks %q", e.Error.Message, w)
		}
	}
}

// idsOf returns the ids of rows that keep, sorted as the API orders them.
func idsOf(rows []registration.Projection, keep func(registration.Projection) bool) []uuid.UUID {
	var out []uuid.UUID
	for _, r := range rows {
		if keep(r) {
			out = append(out, r.EntityID)
		}
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// walk pages through /v1/nodes with the query and page size, checking
// that every page but the last is full and has a cursor.
func walk(t *testing.T, h http.Handler, query url.Values, limit int) []uuid.UUID {
	t.Helper()
	var got []uuid.UUID
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
		resp, body := get(t, h, http.MethodGet, "/v1/nodes?"+q.Encode())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/nodes?%s: %d %s", q.Encode(), resp.StatusCode, body)
		}
		p := decode[page](t, body)
		for _, it := range p.Items {
			got = append(got, it.EntityID)
		}
		if p.NextCursor == "" {
			return got
		}
		if limit > 0 && len(p.Items) != limit {
			t.Errorf("a page with a cursor holds %d items, want %d", len(p.Items), limit)
		}
		q.Set("cursor", p.NextCursor)
	}
}

// TestAPI runs the JSON API over httptest against both stores: the
// filters against the rows written, paging, one node in full, the counts,
// and the errors of bad requests.
func TestAPI(t *testing.T) {
	for _, sub := range subjects {
		t.Run(sub.name, func(t *testing.T) {
			s := sub.make(t)
			rows := fixture(t, s, 40)
			h, err := httpapi.New(s.reader)
			if err != nil {
				t.Fatal(err)
			}
			all := func(registration.Projection) bool { return true }

			t.Run("filters", func(t *testing.T) {
				cases := []struct {
					query string
					keep  func(registration.Projection) bool
				}{
					{"", all},
					{"state=active", func(p registration.Projection) bool { return p.State == registration.StateActive }},
					{"state=active,awaiting_ack", func(p registration.Projection) bool {
						return p.State == registration.StateActive || p.State == registration.StateAwaitingAck
					}},
					{"state=active&state=rejected", func(p registration.Projection) bool {
						return p.State == registration.StateActive || p.State == registration.StateRejected
					}},
					{"node_type=effect", func(p registration.Projection) bool { return p.NodeType == "effect" }},
					{"capability=postgres", func(p registration.Projection) bool {
						return strings.Contains(string(p.Capabilities), `"postgres": true`)
					}},
					{"updated_since=" + url.QueryEscape(baseTime.Add(25*time.Minute).Format(time.RFC3339)), func(p registration.Projection) bool {
						return !p.UpdatedAt.Before(baseTime.Add(25 * time.Minute))
					}},
					{"state=active&node_type=orchestrator&capability=postgres", func(p registration.Projection) bool {
						return p.State == registration.StateActive && p.NodeType == "orchestrator" && strings.Contains(string(p.Capabilities), `"postgres": true`)
					}},
				}
				for _, c := range cases {
					q, _ := url.ParseQuery(c.query)
					want := idsOf(rows, c.keep)
					for _, limit := range []int{0, 1, 7} {
						got := walk(t, h, q, limit)
						if !slices.Equal(got, want) {
							t.Errorf("?%s limit %d: %d ids %v, want %d %v", c.query, limit, len(got), got, len(want), want)
						}
					}
				}
			})

			t.Run("one node", func(t *testing.T) {
				var p registration.Projection
				for _, r := range rows {
					if r.State == registration.StateActive {
						p = r
						break
					}
				}
				resp, body := get(t, h, http.MethodGet, "/v1/nodes/"+p.EntityID.String())
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				n := decode[node](t, body)
				if n.EntityID != p.EntityID || n.CurrentState != "active" || n.NodeType != p.NodeType || n.NodeVersion != p.NodeVersion ||
					n.Domain != registration.DefaultDomain || n.Generation != p.Generation || n.Endpoints["api"] != p.Endpoints["api"] {
					t.Errorf("node %+v, want %+v", n, p)
				}
				var gotCaps, wantCaps any
				_ = json.Unmarshal(n.Capabilities, &gotCaps)
				_ = json.Unmarshal(p.Capabilities, &wantCaps)
				if !jsonEqual(gotCaps, wantCaps) {
					t.Errorf("capabilities %s, want %s", n.Capabilities, p.Capabilities)
				}
				if n.LastHeartbeatAt == nil || !n.LastHeartbeatAt.Equal(p.LastHeartbeatAt) || n.LivenessDeadline == nil || !n.LivenessDeadline.Equal(p.LivenessDeadline) {
					t.Errorf("times %v %v, want %v %v", n.LastHeartbeatAt, n.LivenessDeadline, p.LastHeartbeatAt, p.LivenessDeadline)
				}
				if n.AckDeadline != nil || n.AckTimeoutEmittedAt != nil || n.LastAppliedEventID != nil {
					t.Errorf("unset fields are not null: %s", body)
				}
				if n.CorrelationID == nil || *n.CorrelationID != p.CorrelationID {
					t.Errorf("correlation_id %v, want %v", n.CorrelationID, p.CorrelationID)
				}
				// Times are written in UTC.
				if !strings.Contains(string(body), `"last_heartbeat_at":"`+p.LastHeartbeatAt.UTC().Format(time.RFC3339Nano)+`"`) {
					t.Errorf("last_heartbeat_at is not RFC 3339 UTC: %s", body)
				}
				// HEAD answers the same status without a body.
				resp, body = get(t, h, http.MethodHead, "/v1/nodes/"+p.EntityID.String())
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Errorf("HEAD: %d, %d bytes of body", resp.StatusCode, len(body))
				}
			})

			t.Run("stats", func(t *testing.T) {
				resp, body := get(t, h, http.MethodGet, "/v1/stats")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				var st struct {
					Total   int            `json:"total"`
					ByState map[string]int `json:"by_state"`
				}
				if err := json.Unmarshal(body, &st); err != nil {
					t.Fatal(err)
				}
				want := map[string]int{}
				for _, s := range registration.States() {
					want[string(s)] = 0
				}
				for _, r := range rows {
					want[string(r.State)]++
				}
				if st.Total != len(rows) || !mapsEqual(st.ByState, want) {
					t.Errorf("stats %+v, want total %d by_state %v", st, len(rows), want)
				}
				if strings.Contains(string(body), "runtime") || strings.Contains(string(body), "transitions_recorded") {
					t.Errorf("stats without WithStats or WithTransitions: %s", body)
				}
			})

			t.Run("errors", func(t *testing.T) {
				var active string
				for _, r := range rows {
					if r.State == registration.StateActive {
						active = r.EntityID.String()
					}
				}
				resp, body := get(t, h, http.MethodGet, "/v1/nodes?state=active&limit=2")
				cursor := decode[page](t, body).NextCursor
				if resp.StatusCode != 200 || cursor == "" {
					t.Fatalf("no cursor: %s", body)
				}
				cases := []struct {
					path   string
					status int
					code   string
					words  []string
				}{
					{"/v1/nodes?state=bogus", 400, "bad_request", []string{"States", "bogus"}},
					{"/v1/nodes?node_type=bogus", 400, "bad_request", []string{"NodeType", "bogus"}},
					{"/v1/nodes?limit=0", 400, "bad_request", []string{"limit"}},
					{"/v1/nodes?limit=abc", 400, "bad_request", []string{"limit"}},
					{"/v1/nodes?limit=1001", 400, "bad_request", []string{"MaxListLimit"}},
					{"/v1/nodes?limit=1&limit=2", 400, "bad_request", []string{"limit", "2 times"}},
					{"/v1/nodes?stat=active", 400, "bad_request", []string{`"stat"`}},
					{"/v1/nodes?updated_since=yesterday", 400, "bad_request", []string{"updated_since", "RFC 3339"}},
					{"/v1/nodes?cursor=garbage", 400, "bad_request", []string{"cursor"}},
					// A cursor of another query is refused, not misread.
					{"/v1/nodes?state=rejected&cursor=" + cursor, 400, "bad_request", []string{"other filters"}},
					{"/v1/nodes?capability=" + url.QueryEscape("a\x00b"), 400, "bad_request", []string{"Capability"}},
					{"/v1/nodes/not-a-uuid", 400, "bad_request", []string{"not-a-uuid", "UUID"}},
					{"/v1/nodes/" + strings.ReplaceAll(active, "-", ""), 400, "bad_request", []string{"UUID"}},
					{"/v1/nodes/" + uuid.NewString(), 404, "not_found", []string{"no node"}},
					{"/v1/nodes/" + active + "?x=1", 400, "bad_request", nil},
					{"/v1/stats?x=1", 400, "bad_request", nil},
					{"/v1/transitions?limit=0", 400, "bad_request", []string{"limit"}},
					{"/v1/nodes/", 404, "not_found", nil},
					{"/v1/nodes/" + active + "/extra", 404, "not_found", nil},
					{"/v1/elsewhere", 404, "not_found", []string{"/v1/elsewhere"}},
				}
				for _, c := range cases {
					resp, body := get(t, h, http.MethodGet, c.path)
					t.Run(c.path, func(t *testing.T) { wantError(t, resp, body, c.status, c.code, c.words...) })
				}
				for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
					for _, path := range []string{"/v1/nodes", "/v1/nodes/" + active, "/v1/stats", "/"} {
						resp, body := get(t, h, m, path)
						wantError(t, resp, body, 405, "method_not_allowed", "read-only")
						if resp.Header.Get("Allow") != "GET, HEAD" {
							t.Errorf("%s %s: Allow %q", m, path, resp.Header.Get("Allow"))
						}
					}
				}
				// Nothing was written by the refused methods.
				resp, body = get(t, h, http.MethodGet, "/v1/nodes/"+active)
				if resp.StatusCode != 200 || decode[node](t, body).CurrentState != "active" {
					t.Errorf("after the refused writes: %d %s", resp.StatusCode, body)
				}
			})
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestStoreUnavailable: while the Postgres store's connections are cut,
// the API answers 503 with Retry-After and the page says the store is
// unavailable, neither showing the store's error or the password (which
// is logged, without the password); after the restore, 200 again.
func TestStoreUnavailable(t *testing.T) {
	var proxy *tcpproxy.Proxy
	s := postgresSubject(t, proxied(t, &proxy))
	rows := fixture(t, s, 5)
	var logs bytes.Buffer
	h, err := httpapi.New(s.reader, httpapi.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), httpapi.WithTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	id := rows[0].EntityID.String()
	if resp, body := get(t, h, http.MethodGet, "/v1/nodes/"+id); resp.StatusCode != 200 {
		t.Fatalf("before the cut: %d %s", resp.StatusCode, body)
	}
	proxy.Cut()
	for _, path := range []string{"/v1/nodes", "/v1/nodes/" + id, "/v1/stats"} {
		resp, body := get(t, h, http.MethodGet, path)
		wantError(t, resp, body, http.StatusServiceUnavailable, "unavailable", "try again")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", path)
		}
		if strings.Contains(string(body), "canary") || strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("%s: the answer shows the store's error: %s", path, body)
		}
	}
	resp, body := get(t, h, http.MethodGet, "/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
		t.Errorf("page while cut: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "store read failed") || strings.Contains(logs.String(), "canary-secret") {
		t.Errorf("log: %s", logs.String())
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := get(t, h, http.MethodGet, "/v1/nodes/"+id)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restore: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (f failingReader) Get(context.Context, uuid.UUID) (*registration.Projection, error) {
	return nil, f.err
}

func (f failingReader) List(context.Context, registration.Query) (registration.Page, error) {
	return registration.Page{}, f.err
}

func (f failingReader) CountByState(context.Context) (map[registration.State]int, error) {
	return nil, f.err
}

// TestStoreFailure: an error that is not retryable is a 500 whose message
// does not carry the store's error.
func TestStoreFailure(t *testing.T) {
	h, err := httpapi.New(failingReader{errors.New("relation \"x\" does not exist; secret=hunter2")}, httpapi.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, h, http.MethodGet, "/v1/nodes")
	wantError(t, resp, body, http.StatusInternalServerError, "internal")
	if strings.Contains(string(body), "hunter2") {
		t.Errorf("answer shows the store's error: %s", body)
	}
	if resp, body := get(t, h, http.MethodGet, "/"); resp.StatusCode != 500 || strings.Contains(string(body), "hunter2") {
		t.Errorf("page: %d %s", resp.StatusCode, body)
	}
}
