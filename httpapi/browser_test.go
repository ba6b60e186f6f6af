package httpapi_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/httpapi"
	"github.com/registrar-go/registrar/internal/browsertest"
	"github.com/registrar-go/registrar/reducer/registration"
)

// pageCounts reads the counts the page shows, by state, and its total.
func pageCounts(b *browsertest.Browser) (map[string]int, int) {
	m := browsertest.Eval[map[string]int](b, `Object.fromEntries(Array.from(document.querySelectorAll("#counts .count[data-state]")).map(e => [e.dataset.state, parseInt(e.querySelector(".n").textContent, 10)]))`)
	total := browsertest.Eval[int](b, `parseInt(document.getElementById("total").textContent, 10)`)
	return m, total
}

// pageRows reads the ids and states of the table's rows, visible ones
// only when visible is set.
func pageRows(b *browsertest.Browser, visible bool) (ids, states []string) {
	sel := `"#nodes tbody tr[data-id]"`
	filter := "true"
	if visible {
		filter = "!tr.hidden"
	}
	ids = browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll(`+sel+`)).filter(tr => `+filter+`).map(tr => tr.dataset.id)`)
	states = browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll(`+sel+`)).filter(tr => `+filter+`).map(tr => tr.dataset.state)`)
	return ids, states
}

// storeCounts is what the page must show: every state, with zeros.
func storeCounts(t *testing.T, r registration.Reader) (map[string]int, int) {
	t.Helper()
	m, err := r.CountByState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	total := 0
	for _, s := range registration.States() {
		out[string(s)] = m[s]
		total += m[s]
	}
	return out, total
}

// firstPage is the ids of the first page of q, as the store lists them.
func firstPage(t *testing.T, r registration.Reader, q registration.Query) []string {
	t.Helper()
	p, err := r.List(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range p.Items {
		out = append(out, it.EntityID.String())
	}
	return out
}

// eventually polls cond every 50ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatusPageInBrowser loads the status page in headless Chromium
// against the memory store: the counts and the table are the store's;
// the page refreshes itself when the store changes, without reloading;
// the form filters by state; the text box filters the rows shown; the
// transitions are listed. A screenshot is saved in the test's artifact
// directory. Any JavaScript error or policy violation fails the test.
func TestStatusPageInBrowser(t *testing.T) {
	s := memorySubject(t)
	rows := fixture(t, s, 60)
	tr := httpapi.NewTransitions(10)
	for i, r := range rows[:12] {
		tr.Record(httpapi.Transition{At: baseTime.Add(time.Duration(i) * time.Second), EntityID: r.EntityID, Input: "introspection", State: string(r.State)})
	}
	h, err := httpapi.New(s.reader, httpapi.WithRefresh(200*time.Millisecond), httpapi.WithTransitions(tr),
		httpapi.WithStats(func() registrar.Stats { return registrar.Stats{Handled: 4711} }), httpapi.WithTitle("test registry"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(time.Minute, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#nodes")))

	if title := browsertest.Eval[string](b, `document.title`); title != "test registry · registry" {
		t.Errorf("title %q", title)
	}
	wantCounts, wantTotal := storeCounts(t, s.reader)
	gotCounts, gotTotal := pageCounts(b)
	if gotTotal != wantTotal || !mapsEqual(gotCounts, wantCounts) {
		t.Errorf("page counts %v total %d, store %v total %d", gotCounts, gotTotal, wantCounts, wantTotal)
	}
	ids, _ := pageRows(b, false)
	if want := firstPage(t, s.reader, registration.Query{Limit: httpapi.DefaultPageRows}); !slices.Equal(ids, want) {
		t.Errorf("table %v, want the store's first page %v", ids, want)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("#transitions li").length`); n != 10 {
		t.Errorf("%d transitions shown, want the 10 held", n)
	}
	if first := browsertest.Eval[string](b, `document.querySelector("#transitions li a").textContent`); first != rows[11].EntityID.String() {
		t.Errorf("newest transition %s, want %s", first, rows[11].EntityID)
	}
	if got := browsertest.Eval[string](b, `document.querySelector("#runtime").textContent`); !contains(got, "4711") {
		t.Errorf("runtime section %q lacks the handled count", got)
	}

	// The page refreshes itself: a new node and a state change appear
	// without a reload (the marker set on the window survives).
	browsertest.Eval[bool](b, `window.__notReloaded = true`)
	newID := uuid.New()
	for _, r := range rows {
		if r.State == registration.StateAwaitingAck {
			s.move(t, r.EntityID, registration.StateAwaitingAck, registration.StateActive)
			break
		}
	}
	p := rows[0]
	p.EntityID, p.State = newID, registration.StateActive
	s.insert(t, p)
	wantCounts, wantTotal = storeCounts(t, s.reader)
	eventually(t, 30*time.Second, "the page did not refresh to the store's counts", func() bool {
		got, total := pageCounts(b)
		return total == wantTotal && mapsEqual(got, wantCounts)
	})
	if !browsertest.Eval[bool](b, `window.__notReloaded === true`) {
		t.Error("the page reloaded instead of refreshing")
	}
	if st := browsertest.Eval[string](b, `document.getElementById("refresh-status").textContent`); !contains(st, "live, updated") {
		t.Errorf("refresh status %q", st)
	}

	// The form filters on the server: active nodes only.
	b.Do(time.Minute,
		chromedp.Click(chromedp.CSS(`#filters input[name=state][value=active]`)),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)),
	)
	eventually(t, 30*time.Second, "the form did not load the filtered page", func() bool {
		loc, err := browsertest.TryEval[string](b, `document.readyState === "complete" ? location.search : ""`)
		return err == nil && contains(loc, "state=active")
	})
	b.Do(time.Minute, chromedp.WaitVisible(chromedp.CSS("#nodes")))
	ids, states := pageRows(b, false)
	wantActive := firstPage(t, s.reader, registration.Query{States: []registration.State{registration.StateActive}, Limit: httpapi.DefaultPageRows})
	if !slices.Equal(ids, wantActive) || len(ids) == 0 {
		t.Errorf("filtered table %v, want %v", ids, wantActive)
	}
	for _, st := range states {
		if st != "active" {
			t.Errorf("a row in state %s under state=active", st)
		}
	}
	if !browsertest.Eval[bool](b, `document.querySelector("#filters input[name=state][value=active]").checked`) {
		t.Error("the form does not show the filter it applied")
	}

	// The text box filters the rows shown, by version here.
	b.Do(time.Minute, chromedp.SendKeys(chromedp.CSS("#quick"), "1.3.0"))
	eventually(t, 10*time.Second, "the text box filtered nothing", func() bool {
		vis, _ := pageRows(b, true)
		return len(vis) < len(ids)
	})
	vis, _ := pageRows(b, true)
	versions := browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("#nodes tbody tr[data-id]")).filter(tr => !tr.hidden).map(tr => tr.querySelector(".version").textContent)`)
	want := 0
	for _, r := range rows {
		if r.State == registration.StateActive && r.NodeVersion == "1.3.0" && slices.Contains(ids, r.EntityID.String()) {
			want++
		}
	}
	if len(vis) != want || want == 0 {
		t.Errorf("%d rows shown for 1.3.0, want %d", len(vis), want)
	}
	for _, v := range versions {
		if v != "1.3.0" {
			t.Errorf("row of version %s shown for 1.3.0", v)
		}
	}
	path := b.Screenshot(browsertest.ArtifactDir(t), "status-page.png")
	t.Logf("screenshot: %s", path)
}

// TestStatusPageWithoutJavaScript: with scripts disabled, the page still
// shows the counts and the table, the filters are a form, and the pages
// are links.
func TestStatusPageWithoutJavaScript(t *testing.T) {
	s := memorySubject(t)
	fixture(t, s, 40)
	h, err := httpapi.New(s.reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := browsertest.New(t, browsertest.WithoutJavaScript())
	b.Do(time.Minute, chromedp.Navigate(srv.URL+"/?limit=25"), chromedp.WaitVisible(chromedp.CSS("#nodes")))
	wantCounts, wantTotal := storeCounts(t, s.reader)
	if got, total := pageCounts(b); total != wantTotal || !mapsEqual(got, wantCounts) {
		t.Errorf("counts %v %d, want %v %d", got, total, wantCounts, wantTotal)
	}
	if browsertest.Eval[bool](b, `document.body.hasAttribute("data-refreshes")`) {
		t.Error("the script ran although JavaScript is disabled")
	}
	if !browsertest.Eval[bool](b, `document.getElementById("quick").closest("label").hidden`) {
		t.Error("the script-only text box is shown without JavaScript")
	}
	first, _ := pageRows(b, false)
	all := firstPage(t, s.reader, registration.Query{Limit: 40})
	if !slices.Equal(first, all[:25]) {
		t.Errorf("first page %v, want %v", first, all[:25])
	}
	b.Do(time.Minute, chromedp.Click(chromedp.CSS("#next")))
	eventually(t, 30*time.Second, "the next link did not load the next page", func() bool {
		loc, err := browsertest.TryEval[string](b, `document.readyState === "complete" ? location.search : ""`)
		return err == nil && contains(loc, "cursor=")
	})
	b.Do(time.Minute, chromedp.WaitVisible(chromedp.CSS("#first")))
	second, _ := pageRows(b, false)
	if !slices.Equal(second, all[25:]) {
		t.Errorf("second page %v, want %v", second, all[25:])
	}
	if browsertest.Eval[bool](b, `document.getElementById("next") !== null`) {
		t.Error("the last page has a next link")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
