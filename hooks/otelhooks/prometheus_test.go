package otelhooks_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/hooks/otelhooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// documentedNames are the names the Metrics doc comment documents, with
// their Prometheus types and labels.
var documentedNames = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	"registrar_messages_total":                 {dto.MetricType_COUNTER, []string{"kind", "outcome"}},
	"registrar_handle_duration_seconds":        {dto.MetricType_HISTOGRAM, []string{"kind", "outcome"}},
	"registrar_batch_size":                     {dto.MetricType_HISTOGRAM, nil},
	"registrar_decisions_total":                {dto.MetricType_COUNTER, []string{"kind", "result"}},
	"registrar_noops_total":                    {dto.MetricType_COUNTER, []string{"kind", "reason", "warned"}},
	"registrar_step_duration_seconds":          {dto.MetricType_HISTOGRAM, []string{"result", "step"}},
	"registrar_effect_duration_seconds":        {dto.MetricType_HISTOGRAM, []string{"intent_type", "result"}},
	"registrar_intents_total":                  {dto.MetricType_COUNTER, []string{"intent_type", "outcome"}},
	"registrar_published_total":                {dto.MetricType_COUNTER, nil},
	"registrar_retries_total":                  {dto.MetricType_COUNTER, []string{"class", "op"}},
	"registrar_dead_letters_total":             {dto.MetricType_COUNTER, []string{"reason"}},
	"registrar_conflicts_total":                {dto.MetricType_COUNTER, nil},
	"registrar_partitions_assigned":            {dto.MetricType_GAUGE, []string{"group", "topic"}},
	"registrar_partition_assignments_total":    {dto.MetricType_COUNTER, []string{"group"}},
	"registrar_sweeps_total":                   {dto.MetricType_COUNTER, []string{"result"}},
	"registrar_sweep_duration_seconds":         {dto.MetricType_HISTOGRAM, nil},
	"registrar_sweep_overdue_total":            {dto.MetricType_COUNTER, nil},
	"registrar_timeout_checks_published_total": {dto.MetricType_COUNTER, nil},
	"registrar_nodes":                          {dto.MetricType_GAUGE, []string{"state"}},
	"registrar_consumer_lag":                   {dto.MetricType_GAUGE, []string{"partition", "topic"}},
}

// scrape serves a GET /metrics from h and returns the body.
func scrape(t *testing.T, h http.Handler) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	return rec.Body.Bytes()
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return mfs
}

// value sums the counter or gauge samples of family name whose labels
// include want ("name", "value", ...).
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Errorf("/metrics has no %s", name)
		return -1
	}
	var v float64
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v
}

func newPrometheusMetrics(t *testing.T, opts ...otelhooks.MetricsOption) (*otelhooks.Metrics, *otelhooks.Prometheus) {
	t.Helper()
	p, err := otelhooks.NewPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	m, err := otelhooks.NewMetrics(append([]otelhooks.MetricsOption{otelhooks.WithMeterProvider(p.MeterProvider())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, p
}

// TestPrometheusNames: after the known workload, a sweep and an
// assignment, /metrics passes client_golang's promlint with zero
// problems, serves every documented name with its type and labels and
// nothing else (no otel_scope_* labels, no target_info), and its values
// equal the Runtime's Stats.
func TestPrometheusNames(t *testing.T) {
	var counter otelhooks.StateCounterFunc = func(ctx context.Context) (map[registration.State]int, error) {
		return map[registration.State]int{registration.StateActive: workNodes, registration.StateAwaitingAck: workPending}, nil
	}
	lag := func(context.Context) []otelhooks.PartitionLag {
		return []otelhooks.PartitionLag{{Topic: "onex.evt.platform.node-heartbeat.v1", Partition: 2, Lag: 9}}
	}
	m, p := newPrometheusMetrics(t, otelhooks.WithNodeStates(counter), otelhooks.WithConsumerLag(lag))
	d := runWorkload(t, m)
	m.OnSweep(context.Background(), hooks.Sweep{Overdue: 4, Published: 2})
	m.OnAssigned("registrar", map[string][]int32{"onex.evt.platform.node-heartbeat.v1": {0, 1, 2}})
	body := scrape(t, p.Handler())

	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}

	mfs := parse(t, body)
	for name, want := range documentedNames {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		if mf.GetType() != want.typ {
			t.Errorf("%s is a %v, want a %v", name, mf.GetType(), want.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
		for _, metric := range mf.GetMetric() {
			var labels []string
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetName())
			}
			slices.Sort(labels)
			if !slices.Equal(labels, want.labels) {
				t.Errorf("%s has labels %v, want %v", name, labels, want.labels)
				break
			}
		}
	}
	for name := range mfs {
		if _, ok := documentedNames[name]; !ok {
			t.Errorf("/metrics serves %s, which is not documented", name)
		}
	}

	st := d.rt.Stats()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"handled", value(t, mfs, "registrar_messages_total", "outcome", "applied") + value(t, mfs, "registrar_messages_total", "outcome", "noop"), float64(st.Handled)},
		{"dead-lettered", value(t, mfs, "registrar_dead_letters_total"), float64(st.DeadLettered)},
		{"dead-lettered outcomes", value(t, mfs, "registrar_messages_total", "outcome", "dead_lettered"), float64(st.DeadLettered)},
		{"retries", value(t, mfs, "registrar_retries_total"), float64(st.Retries)},
		{"conflicts", value(t, mfs, "registrar_conflicts_total"), float64(st.Conflicts)},
		{"no-ops", value(t, mfs, "registrar_noops_total"), float64(st.NoOps)},
		{"published", value(t, mfs, "registrar_published_total"), float64(st.EventsPublished)},
		{"handle durations", value(t, mfs, "registrar_handle_duration_seconds"), workHandled + workGarbage},
		{"consul.register errors", value(t, mfs, "registrar_effect_duration_seconds", "intent_type", registration.IntentConsulReg, "result", "error"), workRetries},
		{"active nodes", value(t, mfs, "registrar_nodes", "state", "active"), workNodes},
		{"rejected nodes", value(t, mfs, "registrar_nodes", "state", "rejected"), 0},
		{"lag", value(t, mfs, "registrar_consumer_lag", "topic", "onex.evt.platform.node-heartbeat.v1", "partition", "2"), 9},
		{"partitions", value(t, mfs, "registrar_partitions_assigned", "group", "registrar"), 3},
		{"overdue", value(t, mfs, "registrar_sweep_overdue_total"), 4},
		{"checks", value(t, mfs, "registrar_timeout_checks_published_total"), 2},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: /metrics says %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if n := len(mfs["registrar_nodes"].GetMetric()); n != len(registration.States()) {
		t.Errorf("registrar_nodes has %d series, want one per state (%d)", n, len(registration.States()))
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestPrometheusHandlerServesOverHTTP: the handler answers a real HTTP
// GET, and a Prometheus that was shut down serves none of the metrics.
func TestPrometheusHandlerServesOverHTTP(t *testing.T) {
	m, p := newPrometheusMetrics(t)
	m.OnConflict(context.Background(), [16]byte{1})
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	get := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if body := get(); !strings.Contains(body, "registrar_conflicts_total 1\n") {
		t.Errorf("/metrics lacks registrar_conflicts_total 1:\n%s", body)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body := get(); strings.Contains(body, "registrar_") {
		t.Errorf("after Shutdown /metrics still serves:\n%s", body)
	}
}

// TestNewPrometheusRefusesNilOption: a nil option is an error.
func TestNewPrometheusRefusesNilOption(t *testing.T) {
	if _, err := otelhooks.NewPrometheus(nil); err == nil {
		t.Error("NewPrometheus(nil) returned no error")
	}
}

// TestPromlintFindsProblems: the lint TestPrometheusNames relies on does
// report a badly named metric (a counter without _total, no HELP).
func TestPromlintFindsProblems(t *testing.T) {
	problems, err := promlint.New(strings.NewReader("# TYPE requests counter\nrequests 1\n")).Lint()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) == 0 {
		t.Error("promlint found no problem in a counter without _total and HELP")
	}
}
