package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// replayRecord is one line of a replay file: a kcat -J record, whose
// payload is the message value as a string, or a record whose value is the
// envelope object itself.
type replayRecord struct {
	Topic   string          `json:"topic"`
	Key     *string         `json:"key"`
	Payload *string         `json:"payload"`
	Value   json.RawMessage `json:"value"`
}

// readReplay reads the messages of a replay file; a line that is not a
// record is an error naming the line.
func readReplay(r io.Reader) ([]*bus.Message, error) {
	var msgs []*bus.Message
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var rec replayRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("line %d: not a JSON record: %w", line, err)
		}
		if rec.Topic == "" {
			return nil, fmt.Errorf("line %d: record has no topic", line)
		}
		m := &bus.Message{Topic: rec.Topic}
		if rec.Key != nil {
			m.Key = []byte(*rec.Key)
		}
		switch {
		case rec.Payload != nil:
			m.Value = []byte(*rec.Payload)
		case len(rec.Value) > 0 && !bytes.Equal(rec.Value, []byte("null")):
			m.Value = slices.Clone(rec.Value)
		default:
			return nil, fmt.Errorf("line %d: record has neither payload nor value", line)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// runReplay runs the file's messages on the workflow's input topics through
// the runtime one at a time, in file order (so the result does not depend on
// how topics interleave), and prints the projections as a JSON array.
// Records on other topics are skipped; a message the workflow cannot use is
// dead-lettered, and its reason printed on stderr. No sweeper runs: the
// projections are what the recorded messages made of them.
func runReplay(ctx context.Context, o options, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	f, err := os.Open(o.replay)
	if err != nil {
		return err
	}
	msgs, err := readReplay(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", o.replay, err)
	}
	var logOut io.Writer
	if o.verbose {
		logOut = stderr
	}
	w, err := newWorld(ctx, o.worldConfig(time.Now, logOut))
	if err != nil {
		return err
	}
	defer w.close()
	inputs := map[string]bool{}
	for _, t := range w.contract.InputTopics() {
		inputs[t] = true
	}
	handled, skipped := 0, 0
	for i, m := range msgs {
		if !inputs[m.Topic] {
			skipped++
			continue
		}
		m.Offset = int64(i)
		err := w.rt.Handle(ctx, m)
		var ce *bus.ContentError
		switch {
		case errors.As(err, &ce):
			fmt.Fprintf(stderr, "replay: record %d (%s) dead-lettered: %v\n", i+1, m.Topic, ce.Reason)
		case err != nil:
			return fmt.Errorf("replay: record %d: %w", i+1, err)
		}
		handled++
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "replay: skipped %d records on topics the workflow does not consume\n", skipped)
	}
	st := w.rt.Stats()
	fmt.Fprintf(stderr, "replay: %d messages, %d dead-lettered, %d events published, %d intents executed\n",
		handled, st.DeadLettered, st.EventsPublished, st.IntentsExecuted)
	all, err := registration.ListAll(ctx, w.store, registration.Query{Limit: registration.MaxListLimit})
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(out, '\n'))
	return err
}
