package runtime

import (
	"fmt"
	"unicode/utf8"
)

// MaxIDLength bounds the ids claimsmith accepts (users, clients, groups,
// roles…): real ones are well under it (Auth0's "auth0|<24 hex>", uuids,
// Hydra client ids), and an id is copied into every profile, log line and
// index that names it.
const MaxIDLength = 1024

// CheckID refuses an id that is not valid UTF-8 or longer than
// MaxIDLength, wrapping ErrInvalid; what names the id's kind ("user_id").
// Invalid UTF-8 must be refused where an id enters, not repaired: the
// JSON and YAML encoders rewrite it to U+FFFD on persistence, so the id
// stored would differ from the one granted or looked up.
func CheckID(what, id string) error {
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: %s is %d bytes long, at most %d allowed", ErrInvalid, what, len(id), MaxIDLength)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}
