// Package health serves readiness and liveness checks over HTTP, for
// Kubernetes probes and load balancers: [Readyz] for /readyz and [Healthz]
// for /healthz.
//
// A check is anything with a Ready or a Live method that returns a
// [Report]: a list of named [Check]s, each ok or failed with a reason. The
// registrar Runtime implements both ([ReadinessChecker] and
// [LivenessChecker]); a sweeper, a node or a whole process can too, and
// [Func] turns a function into either.
//
// # Readiness and liveness
//
// Readiness says whether the component can do its work now: a runtime
// whose database is down is not ready, and a probe that fails takes it out
// of rotation until it recovers. Liveness says whether it is still running
// at all: a failed liveness probe restarts the process, so a check of
// liveness must not fail for an outage of something outside the process.
// Keep the two apart: a database outage must make every replica not ready,
// never not live, or the orchestrator restarts them all at once.
//
// # The HTTP contract
//
// Both handlers answer GET and HEAD (405 Method Not Allowed, with an Allow
// header, otherwise), with 200 when every check passed and 503 Service
// Unavailable when one failed, and a JSON body (none for HEAD):
//
//	{"status":"not_ready","checks":[
//	  {"name":"running","ok":true},
//	  {"name":"store","ok":false,"error":"registrar/postgres: ping: ..."}]}
//
// The status is "ready" or "not_ready" for [Readyz], "live" or "not_live"
// for [Healthz]. Check names are snake_case and stable; "detail" says more
// about a check that passed, "error" why one failed. The check runs under
// the request's context bounded by a timeout ([DefaultTimeout],
// [WithTimeout]); a check that has not returned by then fails the probe
// with a check named "timeout". Responses are not cached (Cache-Control:
// no-store).
//
// What a check puts in a reason is served to whoever can reach the
// endpoint: it must never carry a secret (a password, a DSN, a token).
//
// This package imports only the standard library.
package health
