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

// DecodeEvent decodes one native login event (snake_case JSON, see Event).
// Keys claimsmith does not model are ignored, as IdPs add fields over time;
// a value of the wrong type, trailing data, a missing user.user_id or an
// unknown trigger is an error matching ErrInvalid that names the field. An
// empty trigger means post-login.
func DecodeEvent(data []byte) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event is %d bytes, the limit is %d", ErrTooLarge, len(data), MaxEventBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	ev := new(Event)
	if err := dec.Decode(ev); err != nil {
		return nil, eventDecodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{Entity: "event", Reason: "unexpected data after the JSON object"}
	}
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return ev, nil
}

func (ev *Event) validate() error {
	switch ev.Trigger {
	case "":
		ev.Trigger = TriggerPostLogin
	case TriggerPostLogin, TriggerCredentialsExchange:
	default:
		return &ValidationError{Entity: "event", Field: "trigger",
			Reason: fmt.Sprintf("%q is not one of %s, %s", ev.Trigger, TriggerPostLogin, TriggerCredentialsExchange)}
	}
	if ev.User.UserID == "" {
		return &ValidationError{Entity: "event", Field: "user.user_id", Reason: "required"}
	}
	return nil
}

func eventDecodeError(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return &ValidationError{Entity: "event", Reason: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &ValidationError{Entity: "event", Field: field, Reason: fmt.Sprintf("expected %s, got %s", typeName(te.Type), te.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &ValidationError{Entity: "event", Reason: "empty or truncated JSON"}
	default:
		var ve *ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return &ValidationError{Entity: "event", Reason: oneLine(err.Error())}
	}
}
