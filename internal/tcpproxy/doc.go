// Package tcpproxy is a TCP proxy for fault tests: it forwards connections
// to a target and can cut them all, refuse new ones, and come back on the
// same address. The Postgres fault test (effects/postgres) puts it between
// the pool and the server and cuts it in the middle of a stream of intents;
// the chaos harness (internal/chaos) cuts it while Runtimes work.
package tcpproxy
