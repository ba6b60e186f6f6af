package contract_test

import (
	"errors"
	"fmt"

	"github.com/registrar-go/registrar/contract"
)

// Parse reports every problem of a contract at once, each with its line.
func ExampleParse() {
	const billing = `name: billing
event_bus:
  subscribe_topics: [billing.in]
  publish_topics: [billing.out, billing.in]
  dead_letter_topic: billing.in
intent_consumption:
  subscribed_intents: [ledger.write]
  intent_routing_table:
    ledger.write: ledger_effect
    ledger.void: ledger_effect
timeouts:
  ack_timeout: -30s
  sweep_intervall: 1s
`
	_, err := contract.Parse("billing.yaml", []byte(billing))
	fmt.Println(err)

	var first *contract.Error
	if errors.As(err, &first) {
		fmt.Printf("first problem: line %d, %s\n", first.Line, first.Path)
	}
	// Output:
	// billing.yaml:4:33: event_bus.publish_topics[1]: topic "billing.in" is also subscribed (event_bus.subscribe_topics[0]): a node must not consume its own output
	// billing.yaml:5:22: event_bus.dead_letter_topic: dead-letter topic "billing.in" is also an input topic (event_bus.subscribe_topics[0]): dead letters would be consumed again
	// billing.yaml:10:5: intent_consumption.intent_routing_table["ledger.void"]: intent type "ledger.void" is routed but not in intent_consumption.subscribed_intents
	// billing.yaml:12:16: timeouts.ack_timeout: negative duration -30s
	// billing.yaml:13:3: timeouts: unknown key "sweep_intervall"; did you mean "sweep_interval"?
	// first problem: line 4, event_bus.publish_topics[1]
}

// The default contract is a copy each time; edit it and validate again.
func ExampleDefault() {
	c := contract.Default()
	fmt.Println(c.Name, c.ContractVersion)
	fmt.Println(c.Group())
	topic, _ := c.TopicFor("NodeBecameActive")
	fmt.Println(topic)
	fmt.Println(c.RoutedIntents())
	fmt.Println(c.Timeouts.AckTimeout, c.Timeouts.LivenessInterval, c.Timeouts.LivenessWindow, c.Timeouts.SweepInterval)

	// Leave Consul out: unsubscribe and unroute its intent types.
	c.IntentConsumption.SubscribedIntents = c.IntentConsumption.SubscribedIntents[:3]
	for _, t := range []string{"consul.register", "consul.deregister", "consul.pass_ttl"} {
		delete(c.IntentConsumption.IntentRoutingTable, t)
	}
	fmt.Println(c.Validate(), c.RoutedIntents())
	// Output:
	// node_registration_orchestrator 1.0.0
	// node_registration_orchestrator
	// onex.evt.platform.node-became-active.v1
	// [consul.deregister consul.pass_ttl consul.register postgres.delete_registration postgres.update_registration postgres.upsert_registration]
	// 30s 1m0s 1m30s 1s
	// <nil> [postgres.delete_registration postgres.update_registration postgres.upsert_registration]
}

// A contract built in code validates the same way; its errors have paths
// but no lines.
func ExampleContract_Validate() {
	c := &contract.Contract{
		Name: "svc",
		EventBus: contract.EventBus{
			SubscribeTopics: []string{"in"},
			DeadLetterTopic: "in",
		},
		IntentConsumption: contract.IntentConsumption{
			SubscribedIntents: []string{"cache.evict"},
		},
	}
	fmt.Println(c.Validate())
	// Output:
	// event_bus.dead_letter_topic: dead-letter topic "in" is also an input topic (event_bus.subscribe_topics[0]): dead letters would be consumed again
	// intent_consumption.subscribed_intents[0]: intent type "cache.evict" is subscribed but not routed in intent_consumption.intent_routing_table
}
