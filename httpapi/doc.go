// Package httpapi serves the registry over HTTP for operators and tools: a
// read-only JSON API and a status page, both answered from a
// registration.Reader (effects/memory's or effects/postgres's Store).
//
// [New] returns an http.Handler a service mounts where it likes:
//
//	api, err := httpapi.New(store, httpapi.WithTransitions(recent))
//	mux.Handle("/", api)                                   // at the root, or
//	mux.Handle("/registry/", http.StripPrefix("/registry", api)) // under a prefix
//
// The page links relatively, so it works under a prefix that ends in a
// slash (/registry/, not /registry).
//
// # The JSON API
//
//	GET /v1/nodes          one page of projections: the read API's filters and cursor
//	GET /v1/nodes/{id}     one projection
//	GET /v1/stats          projections per state, and the runtime's counters (WithStats)
//	GET /v1/transitions    the most recent committed transitions (WithTransitions)
//
// /v1/nodes takes the parameters state (repeated or comma-separated:
// state=active,awaiting_ack), node_type, capability, updated_since (RFC
// 3339), limit (1 to registration.MaxListLimit, default
// registration.DefaultListLimit) and cursor (the next_cursor of the
// previous page, for the same filters). An unknown parameter is an error,
// so that a misspelled filter never silently matches everything.
//
// Fields are snake_case, as in the ONEX envelopes and the projection's
// columns; times are RFC 3339 in UTC, null when unset. Errors are JSON
// too, {"error": {"status": 400, "code": "bad_request", "message": "..."}}:
// 400 for a bad filter, cursor or id, 404 for an unknown node or path, 405
// for a method other than GET or HEAD (there are no write endpoints), 503
// with Retry-After when the store is unreachable (a retryable error), 500
// for any other store error. Messages of 5xx errors do not carry the
// store's error, which is logged instead (WithLogger).
//
// # The status page
//
// GET / is a page that shows the nodes by state with their counts, a
// table of nodes (state, type, version, last heartbeat, deadline) that the
// form above it filters by state, type and capability, and the recent
// transitions. It is plain HTML rendered on the server, usable without
// JavaScript (the filters are a GET form, the pages are links); with
// JavaScript it refreshes itself every WithRefresh interval (2 s by
// default) by fetching the same URL again, and a text box filters the
// rows shown. The page, its style sheet and its script are embedded in the
// binary (embed.FS); nothing is loaded from elsewhere, and the responses
// carry a Content-Security-Policy that allows only the handler's own
// files.
//
// # Recent transitions
//
// [Transitions] is a bounded record of the transitions a Runtime
// committed, newest first. It is a hooks.MessageTracer: install it on the
// Runtime (registrar.WithHooks(hooks.New(t))) and hand it to [New] with
// [WithTransitions]. It only knows what its own process committed; in a
// consumer group, each member sees the transitions of its partitions.
package httpapi
