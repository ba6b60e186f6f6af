package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
)

// Validate reports what is wrong with the payload, before any store is
// touched: a missing key, an invalid state, no node type.
func (u *UpsertRegistration) Validate() error {
	var errs []error
	p := &u.Projection
	if p.EntityID == uuid.Nil {
		errs = append(errs, errors.New("entity_id is the nil UUID"))
	}
	if p.Domain == "" {
		errs = append(errs, errors.New("domain is empty"))
	}
	if !p.State.Valid() {
		errs = append(errs, fmt.Errorf("current_state %q is not a registration state", string(p.State)))
	}
	if p.NodeType == "" {
		errs = append(errs, errors.New("node_type is empty"))
	}
	if len(p.Capabilities) > 0 && !json.Valid(p.Capabilities) {
		errs = append(errs, errors.New("capabilities is not valid JSON"))
	}
	if u.ExpectedState != StateNone && !u.ExpectedState.Valid() {
		errs = append(errs, fmt.Errorf("expected state %q is not a registration state", string(u.ExpectedState)))
	}
	if u.Columns&^AllColumns != 0 {
		errs = append(errs, fmt.Errorf("columns %#x are not writable columns", uint32(u.Columns&^AllColumns)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/registration: invalid upsert: %w", err)
	}
	return nil
}

// Validate reports what is wrong with the payload, before any store is
// touched: a missing key, an empty update set, a column outside the allowlist,
// an invalid state.
func (u *UpdateRegistration) Validate() error {
	var errs []error
	if u.EntityID == uuid.Nil {
		errs = append(errs, errors.New("entity_id is the nil UUID"))
	}
	if u.Domain == "" {
		errs = append(errs, errors.New("domain is empty"))
	}
	if u.Set == 0 {
		errs = append(errs, errors.New("empty update set"))
	}
	if u.Set&^AllColumns != 0 {
		errs = append(errs, fmt.Errorf("columns %#x are not writable columns", uint32(u.Set&^AllColumns)))
	}
	if u.Set.Has(ColCapabilities) && len(u.Values.Capabilities) > 0 && !json.Valid(u.Values.Capabilities) {
		errs = append(errs, errors.New("capabilities is not valid JSON"))
	}
	if u.Set.Has(ColCurrentState) && !u.Values.State.Valid() {
		errs = append(errs, fmt.Errorf("current_state %q is not a registration state", string(u.Values.State)))
	}
	if u.ExpectedState != StateNone && !u.ExpectedState.Valid() {
		errs = append(errs, fmt.Errorf("expected state %q is not a registration state", string(u.ExpectedState)))
	}
	if bad := u.Guard &^ GuardableColumns; bad != 0 {
		if named := bad & AllColumns; named != 0 {
			errs = append(errs, fmt.Errorf("guard on %s: not a guardable column (current_state is guarded by the expected state; JSON columns cannot be guarded)", named))
		}
		if bad&^AllColumns != 0 {
			errs = append(errs, fmt.Errorf("guard columns %#x are not writable columns", uint32(bad&^AllColumns)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/registration: invalid update of %s: %w", u.EntityID, err)
	}
	return nil
}

// Validate reports what is wrong with the payload, before any store is
// touched: a missing key, an expected state that is not a stored state, a
// guard on a column that cannot be guarded.
func (d *DeleteRegistration) Validate() error {
	var errs []error
	if d.EntityID == uuid.Nil {
		errs = append(errs, errors.New("entity_id is the nil UUID"))
	}
	if d.Domain == "" {
		errs = append(errs, errors.New("domain is empty"))
	}
	if !d.ExpectedState.Valid() {
		errs = append(errs, fmt.Errorf("expected state %q is not a registration state (a removal names the state it read)", string(d.ExpectedState)))
	}
	if bad := d.Guard &^ GuardableColumns; bad != 0 {
		errs = append(errs, fmt.Errorf("guard on %s: not a guardable column", bad))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/registration: invalid delete of %s: %w", d.EntityID, err)
	}
	return nil
}

// normalize gives the JSON columns the values a database returns for them:
// an empty object rather than nothing.
func (p *Projection) normalize() {
	if len(p.Capabilities) == 0 {
		p.Capabilities = json.RawMessage("{}")
	}
	if p.Endpoints == nil {
		p.Endpoints = map[string]string{}
	}
}

// ApplyUpsert returns the row that results from u applied to cur (nil: no
// row), with the guard semantics every store implements. If u.ExpectedState
// is [StateNone] (the decision saw no row), no row inserts the whole
// projection and an existing row is a conflict. Otherwise (the decision saw
// a row in that state), an existing row in the expected state gets the
// columns u.Columns (all if zero); an existing row in another state is a
// conflict, and so is no row ("no projection for <id>", as an update's
// missing row): another writer removed the row the decision read, and the
// upsert must not bring it back. A conflict writes nothing. The result
// shares no memory with u; it may share the JSON columns (capabilities,
// endpoints) with cur, so stores treat stored projections as immutable and
// hand out clones.
func ApplyUpsert(cur *Projection, u *UpsertRegistration) (*Projection, intent.Result, error) {
	if err := u.Validate(); err != nil {
		return cur, intent.Result{}, intent.Permanent(err)
	}
	if cur == nil {
		if u.ExpectedState != StateNone {
			return nil, intent.Result{Status: intent.Conflict, Reason: "no projection for " + u.Projection.EntityID.String()}, nil
		}
		next := u.Projection.Clone()
		next.normalize()
		return next, intent.Result{}, nil
	}
	if cur.State != u.ExpectedState {
		return cur, intent.Result{Status: intent.Conflict, Reason: conflictReason(cur.State, u.ExpectedState)}, nil
	}
	cols := u.Columns
	if cols == 0 {
		cols = AllColumns
	}
	next := *cur
	next.set(cols, u.Projection.Clone())
	next.normalize()
	return &next, intent.Result{}, nil
}

// ApplyUpdate returns the row that results from u applied to cur (nil: no
// row), with the guard semantics every store implements: the result of
// [UpdateRegistration.Check]; if it is Applied, the columns u.Set are
// written, otherwise the row stays as it is. The result shares no memory
// with u; it may share the JSON columns with cur (see ApplyUpsert).
func ApplyUpdate(cur *Projection, u *UpdateRegistration) (*Projection, intent.Result, error) {
	if err := u.Validate(); err != nil {
		return cur, intent.Result{}, intent.Permanent(err)
	}
	if r := u.Check(cur); r.Status != intent.Applied {
		return cur, r, nil
	}
	next := *cur
	next.set(u.Set&^(ColCapabilities|ColEndpoints), &u.Values)
	if u.Set.Has(ColCapabilities) {
		next.Capabilities = bytes.Clone(u.Values.Capabilities)
	}
	if u.Set.Has(ColEndpoints) {
		next.Endpoints = maps.Clone(u.Values.Endpoints)
	}
	next.normalize()
	return &next, intent.Result{}, nil
}

// ApplyDelete returns the row that results from d applied to cur (nil: no
// row), with the guard semantics every store implements: the result of
// [DeleteRegistration.Check]; if it is Applied, the row is gone (nil),
// otherwise it stays as it is.
func ApplyDelete(cur *Projection, d *DeleteRegistration) (*Projection, intent.Result, error) {
	if err := d.Validate(); err != nil {
		return cur, intent.Result{}, intent.Permanent(err)
	}
	if r := d.Check(cur); r.Status != intent.Applied {
		return cur, r, nil
	}
	return nil, intent.Result{}, nil
}

func conflictReason(got, want State) string {
	if want == StateNone {
		return "projection exists in state " + got.String() + "; the decision saw none"
	}
	return "projection is in state " + got.String() + ", not " + want.String()
}
