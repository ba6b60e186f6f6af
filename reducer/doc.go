// Package reducer defines the pure decision function at the heart of
// registrar.
//
// A [Reducer] first decodes a message's envelope into an [Input] (a malformed
// payload is a content error, dead-lettered by the runtime), then decides:
// given the entity's current state, the input and the time, it returns a
// [Decision]: the new state, the events to publish and the intents to execute.
//
// Decide is pure. It does no I/O, reads no clock and draws no random numbers;
// ids it needs are derived from the causing envelope (UUIDv5), and the time
// is passed in. A redelivered message therefore yields the identical
// decision, which is what makes at-least-once delivery safe: the runtime may
// execute a decision's intents and publish its events more than once, and
// every copy is the same.
//
// The registration state machine is in package reducer/registration.
package reducer
