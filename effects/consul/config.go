package consul

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of the [Config] fields.
const (
	// DefaultCheckTTL is the TTL of a service's check: the registration
	// reducer's default liveness window, which is also its default Consul
	// TTL (registration.Config.ConsulTTL).
	DefaultCheckTTL = 90 * time.Second
	// DefaultDeregisterCriticalServiceAfter is how long a service's check may
	// stay critical before Consul removes the service by itself.
	DefaultDeregisterCriticalServiceAfter = 5 * time.Minute
	// DefaultTimeout bounds each request to the agent.
	DefaultTimeout = 10 * time.Second
)

// Config configures an [Effect]: how it reaches the Consul agent, and what it
// registers.
//
// The connection fields (Address, Scheme, Datacenter, Token, TLS) describe a
// client that [New] builds and owns. Alternatively, Agent is an agent client
// the caller built and owns; the connection fields must then be empty.
// Connection fields left empty take the defaults of the hashicorp/consul/api
// client, which honour the usual environment variables (CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN, CONSUL_CACERT, ...) and otherwise mean
// http://127.0.0.1:8500 without a token.
//
// Config's String method leaves out the token, so a Config can be logged.
type Config struct {
	// Address is the agent's HTTP API address: "host:port", or a URL
	// "http://host:port" or "https://host:port".
	Address string
	// Scheme is "http" or "https". Default: "https" if TLS is configured or
	// Address says https, else "http".
	Scheme string
	// Datacenter is the datacenter requests go to. Default: the agent's.
	Datacenter string
	// Token is the ACL token sent with every request. It appears in no error
	// and no log record.
	Token string
	// TLS configures HTTPS to the agent.
	TLS TLSConfig

	// Agent, if set, is the client the effect calls, for example
	// client.Agent() of an *api.Client the caller built. The caller owns it;
	// [Effect.Close] leaves it alone.
	Agent Agent
	// EditAPIConfig, if set, edits the hashicorp/consul/api configuration
	// that New builds from the connection fields, before the client is
	// created: the escape hatch to settings Config does not have (a
	// namespace, HTTP basic auth, a custom transport). Not allowed with
	// Agent.
	EditAPIConfig func(*api.Config)

	// Projections, if set, is the projection store (the Store of
	// effects/postgres or effects/memory) the effect reads to fence its
	// writes: every register, deregister and heal then makes the node's
	// services converge to what its projection says now, reading the
	// projection again after each write (see the package documentation).
	// Without it the effect acts on the intents' payloads alone, and only a
	// [Reconciler] repairs the races between two writers.
	//
	// With effects/postgres, give this Store a pool of its own, not the
	// pool of the Store the Runtime commits and relays through: a relay
	// holds one connection of that pool for its lease while the effect
	// runs, so once as many relays run as the pool has connections, each
	// waits for a connection to read the projection that the others hold.
	// (Each read is bounded by Timeout, so they fail and retry rather than
	// wait for good, but such a pool makes little progress.)
	Projections Projections

	// Timeout bounds each request to the agent, and each read of
	// Projections, on top of the context's deadline. Default
	// [DefaultTimeout].
	Timeout time.Duration
	// CheckTTL is the TTL of each service's check. Set it to the reducer's
	// Consul TTL (registration.Config.ConsulTTL, by default its liveness
	// window), which paces the consul.pass_ttl intents. Default
	// [DefaultCheckTTL].
	CheckTTL time.Duration
	// DeregisterCriticalServiceAfter is how long a service's check may stay
	// critical before Consul removes the service itself. Consul enforces a
	// minimum of one minute and reaps every 30 seconds or so. Default
	// [DefaultDeregisterCriticalServiceAfter].
	DeregisterCriticalServiceAfter time.Duration

	// Logger receives a debug record per intent executed (info for a skipped
	// one). Nil means silent.
	Logger *slog.Logger
}

// TLSConfig configures HTTPS to the agent. Setting any field makes the
// default scheme "https".
type TLSConfig struct {
	// CAFile is a PEM file of the CA certificates that verify the agent's
	// certificate. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key (PEM), for
	// agents that verify clients. Set both or neither.
	CertFile, KeyFile string
	// ServerName is the name the agent's certificate must carry. Default:
	// the host of Address.
	ServerName string
	// InsecureSkipVerify disables the verification of the agent's
	// certificate. For tests only.
	InsecureSkipVerify bool
}

func (c TLSConfig) configured() bool { return c != TLSConfig{} }

// connectionSet reports whether any connection field is set.
func (c Config) connectionSet() bool {
	return c.Address != "" || c.Scheme != "" || c.Datacenter != "" || c.Token != "" || c.TLS.configured()
}

// Validate reports every problem with c at once (joined with [errors.Join]),
// or nil. It never includes the token.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Agent != nil {
		if c.connectionSet() {
			add("agent: set together with connection fields (Address, Scheme, Datacenter, Token, TLS); a caller-built agent carries its own")
		}
		if c.EditAPIConfig != nil {
			add("agent: set together with EditAPIConfig, which only edits a client New builds")
		}
	}

	addrScheme := ""
	if c.Address != "" {
		host := c.Address
		if before, after, ok := strings.Cut(c.Address, "://"); ok {
			addrScheme, host = before, after
			if addrScheme != "http" && addrScheme != "https" {
				add("address %q: scheme %q is not http or https", c.Address, addrScheme)
			}
			host, _, _ = strings.Cut(host, "/")
		}
		if err := checkHostPort(host); err != nil {
			add("address %q: %v", c.Address, err)
		}
	}
	switch c.Scheme {
	case "", "http", "https":
	default:
		add("scheme %q: want http or https", c.Scheme)
	}
	if addrScheme != "" && c.Scheme != "" && addrScheme != c.Scheme {
		add("scheme %q contradicts address %q", c.Scheme, c.Address)
	}
	if c.TLS.configured() && (c.Scheme == "http" || addrScheme == "http") {
		add("tls: configured, but the scheme is http")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: set both CertFile and KeyFile, or neither")
	}
	if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("token: contains whitespace or control characters")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"timeout", c.Timeout}, {"check TTL", c.CheckTTL},
		{"deregister critical service after", c.DeregisterCriticalServiceAfter},
	} {
		if d.v < 0 {
			add("%s: negative duration %v", d.name, d.v)
		}
	}
	if c.CheckTTL > 0 && c.CheckTTL < time.Second {
		add("check TTL %v: below one second", c.CheckTTL)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/consul: invalid config: %w", err)
	}
	return nil
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("port %q is not a port number", port)
	}
	return nil
}

// withDefaults returns c with its zero durations set to their defaults.
func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CheckTTL == 0 {
		c.CheckTTL = DefaultCheckTTL
	}
	if c.DeregisterCriticalServiceAfter == 0 {
		c.DeregisterCriticalServiceAfter = DefaultDeregisterCriticalServiceAfter
	}
	return c
}

// String describes c for logs, without the token: it says only whether one is
// set.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("consul.Config{")
	if c.Agent != nil {
		fmt.Fprintf(&b, "Agent: %T, ", c.Agent)
	} else {
		token := "unset"
		if c.Token != "" {
			token = "set"
		}
		fmt.Fprintf(&b, "Address: %q, Scheme: %q, Datacenter: %q, Token: %s, TLS: %t, ",
			c.Address, c.Scheme, c.Datacenter, token, c.TLS.configured())
	}
	fmt.Fprintf(&b, "Timeout: %v, CheckTTL: %v, DeregisterCriticalServiceAfter: %v}",
		c.Timeout, c.CheckTTL, c.DeregisterCriticalServiceAfter)
	return b.String()
}

// LogValue makes slog log c as [Config.String] does: without the token.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// apiConfig returns the hashicorp/consul/api configuration of c's connection
// fields.
func (c Config) apiConfig() *api.Config {
	ac := &api.Config{
		Address:    c.Address,
		Scheme:     c.Scheme,
		Datacenter: c.Datacenter,
		Token:      c.Token,
		TLSConfig: api.TLSConfig{
			Address:            c.TLS.ServerName,
			CAFile:             c.TLS.CAFile,
			CertFile:           c.TLS.CertFile,
			KeyFile:            c.TLS.KeyFile,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
	}
	if ac.Scheme == "" && c.TLS.configured() {
		ac.Scheme = "https"
	}
	return ac
}
