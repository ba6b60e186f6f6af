package otelhooks

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Prometheus is an OpenTelemetry MeterProvider whose metrics an
// http.Handler serves in the Prometheus text format: create [Metrics] on
// [Prometheus.MeterProvider] and serve [Prometheus.Handler] at /metrics.
//
// It is built on the OpenTelemetry Prometheus exporter
// (go.opentelemetry.io/otel/exporters/prometheus) rather than on
// client_golang's own instruments, so that one instrumentation, [Metrics],
// feeds both Prometheus and any other OpenTelemetry exporter (OTLP): a
// service that already runs an SDK MeterProvider passes it to
// [WithMeterProvider] and needs no Prometheus at all. The exporter is set
// so that the names served are exactly those documented on [Metrics]:
// it translates with otlptranslator.UnderscoreEscapingWithSuffixes (dots
// become underscores, a unit "s" becomes the suffix _seconds, a unit in
// braces such as "{message}" adds nothing, a counter gains _total), and
// it serves neither the otel_scope_* labels nor the target_info metric.
// TestPrometheusNames holds the names to that.
type Prometheus struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// PrometheusOption configures [NewPrometheus].
type PrometheusOption interface {
	applyPrometheus(*prometheusConfig)
}

type prometheusConfig struct {
	registry *prometheus.Registry
}

type prometheusOption func(*prometheusConfig)

func (f prometheusOption) applyPrometheus(c *prometheusConfig) { f(c) }

// WithRegistry sets the registry the exporter registers with and the
// handler serves, e.g. one that also holds client_golang's Go runtime
// and process collectors. The default is a new, empty registry (never
// prometheus.DefaultRegisterer).
func WithRegistry(r *prometheus.Registry) PrometheusOption {
	return prometheusOption(func(c *prometheusConfig) { c.registry = r })
}

// NewPrometheus returns a Prometheus with its own SDK MeterProvider,
// whose only reader is the Prometheus exporter. It starts no goroutine:
// the metrics are collected when the handler is scraped. A nil option is
// an error.
func NewPrometheus(opts ...PrometheusOption) (*Prometheus, error) {
	cfg := prometheusConfig{}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("registrar/otelhooks: prometheus option %d is nil", i)
		}
		o.applyPrometheus(&cfg)
	}
	if cfg.registry == nil {
		cfg.registry = prometheus.NewRegistry()
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(cfg.registry),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("registrar/otelhooks: prometheus exporter: %w", err)
	}
	return &Prometheus{
		registry: cfg.registry,
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler:  promhttp.HandlerFor(cfg.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
	}, nil
}

// MeterProvider returns the provider to create [Metrics] on
// ([WithMeterProvider]).
func (p *Prometheus) MeterProvider() metric.MeterProvider { return p.provider }

// Registry returns the registry the handler serves.
func (p *Prometheus) Registry() *prometheus.Registry { return p.registry }

// Handler returns the http.Handler that serves the metrics in the
// Prometheus text format (OpenMetrics is not offered; a request that asks
// for protobuf gets it), collecting them on each request. A metric
// that fails to collect is left out, and the others are served.
func (p *Prometheus) Handler() http.Handler { return p.handler }

// Shutdown shuts the MeterProvider down: later scrapes serve none of its
// metrics. Later calls return an error.
func (p *Prometheus) Shutdown(ctx context.Context) error {
	if err := p.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("registrar/otelhooks: shut down the meter provider: %w", err)
	}
	return nil
}
