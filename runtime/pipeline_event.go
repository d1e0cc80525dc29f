package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxEventBytes bounds an encoded login event. Real events are a few KiB;
// the bound keeps a hostile body from costing memory.
const MaxEventBytes = 1 << 20

// EventRequest is the native event format as callers send it: the event,
// plus "mint" (ask for minted tokens with the answer), which is a request
// option and never part of what rules see.
type EventRequest struct {
	Event
	Mint bool `json:"mint,omitempty"`
}

// DecodeEventRequest is the one decoder of the native event format; the
// HTTP triggers and `claimsmith test` (through DecodeEvent) both use it, so
// the dry run accepts exactly what the server accepts.
//
// Keys claimsmith does not model are ignored (an Auth0 Action forwards its
// whole event, and IdPs add fields over time); numbers keep their exact
// text (json.Number), so metadata round-trips byte for byte. route is the
// trigger of the endpoint the body arrived at ("" for none): the body's
// trigger must then be empty or the same. Without a route an empty trigger
// means post-login. client.client_id is required; user.user_id too, except
// that a credentials exchange's subject defaults to its client. Every
// refusal matches ErrInvalid and names the field, or ErrTooLarge past
// MaxEventBytes.
//
// "secrets" and "authorization" are dropped: they are the server's (the
// operator's configured secrets, the authorization rule's answer), and a
// caller who could send them would hand rules forged roles or secrets —
// e.g. roles that satisfy required_roles when the authorization rule is
// skipped on error. An Auth0 Action forwarding its whole event sends both;
// ignoring them keeps that working.
func DecodeEventRequest(data []byte, route Trigger) (*EventRequest, error) {
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event is %d bytes, the limit is %d", ErrTooLarge, len(data), MaxEventBytes)
	}
	req := new(EventRequest)
	if !decodeEventFast(data, req) {
		// Anything the fast path does not take (every refusal among it)
		// is decoded, or refused, by encoding/json.
		*req = EventRequest{}
		if err := DecodeJSON("event", data, req); err != nil {
			return nil, err
		}
	}
	req.Secrets, req.Authorization = nil, nil
	if err := req.Event.validate(route); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeEvent decodes one native login event without an endpoint's
// trigger (what `claimsmith test` reads): DecodeEventRequest(data, "").
func DecodeEvent(data []byte) (*Event, error) {
	req, err := DecodeEventRequest(data, "")
	if err != nil {
		return nil, err
	}
	return &req.Event, nil
}

func (ev *Event) validate(route Trigger) error {
	switch {
	case route != "" && (ev.Trigger == "" || ev.Trigger == route):
		ev.Trigger = route
	case route != "":
		return &ValidationError{Entity: "event", Field: "trigger",
			Reason: fmt.Sprintf("%q does not match the endpoint's trigger %s", ev.Trigger, route)}
	case ev.Trigger == "":
		ev.Trigger = TriggerPostLogin
	case ev.Trigger != TriggerPostLogin && ev.Trigger != TriggerCredentialsExchange:
		return &ValidationError{Entity: "event", Field: "trigger",
			Reason: fmt.Sprintf("%q is not one of %s, %s", ev.Trigger, TriggerPostLogin, TriggerCredentialsExchange)}
	}
	if ev.Client.ClientID == "" {
		return &ValidationError{Entity: "event", Field: "client.client_id", Reason: "required"}
	}
	if ev.User.UserID == "" {
		if ev.Trigger != TriggerCredentialsExchange {
			return &ValidationError{Entity: "event", Field: "user.user_id", Reason: "required"}
		}
		// A machine logs in as itself.
		ev.User.UserID = ev.Client.ClientID
	}
	return nil
}

// DecodeJSON decodes one JSON value of outside input (a request body) into
// dst: numbers as json.Number, unknown keys ignored, nothing but white
// space after the value. A refusal is a *ValidationError of entity naming
// the field and the expected type, or the byte offset of a syntax error.
func DecodeJSON(entity string, data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonDecodeError(entity, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ValidationError{Entity: entity, Reason: "unexpected data after the JSON value"}
	}
	return nil
}

func jsonDecodeError(entity string, err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return &ValidationError{Entity: entity, Reason: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &ValidationError{Entity: entity, Field: field, Reason: fmt.Sprintf("expected %s, got %s", typeName(te.Type), te.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &ValidationError{Entity: entity, Reason: "empty or truncated JSON"}
	default:
		var ve *ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return &ValidationError{Entity: entity, Reason: oneLine(err.Error())}
	}
}
