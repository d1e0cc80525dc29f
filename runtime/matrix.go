package runtime

import "fmt"

// Matrix is LoopBack's decision matrix: voters say allow, deny or abstain;
// Precedence settles a conflict between allow and deny; Default applies when
// every voter abstains. The login pipeline and the enforcement side
// (runtime/guard) both decide through it, so a configuration means the same
// in both places. The zero value is Auth0's behaviour: deny wins, all
// abstaining allows.
type Matrix struct {
	// Precedence is Deny (the zero value means Deny) or Allow.
	Precedence Vote
	// Default is Allow (the zero value means Allow) or Deny.
	Default Vote
}

// ParseMatrix reads the `precedence` (deny|allow, "" = deny) and `default`
// (allow|deny, "" = allow) configuration keys. The error names the key.
func ParseMatrix(precedence, def string) (m Matrix, key string, err error) {
	switch precedence {
	case "", "deny":
		m.Precedence = Deny
	case "allow":
		m.Precedence = Allow
	default:
		return m, "precedence", fmt.Errorf("%q is not one of deny, allow", precedence)
	}
	switch def {
	case "", "allow":
		m.Default = Allow
	case "deny":
		m.Default = Deny
	default:
		return m, "default", fmt.Errorf("%q is not one of allow, deny", def)
	}
	return m, "", nil
}

func (m Matrix) precedence() Vote {
	if m.Precedence == Allow {
		return Allow
	}
	return Deny
}

// Final reports whether a vote settles the decision at once, so later voters
// need not run: a deny under deny precedence. (An allow under allow
// precedence settles the decision too, but the pipeline still runs later
// rules for their claims; guards may stop there, see Settles.)
func (m Matrix) Final(v Vote) bool { return v == Deny && m.precedence() == Deny }

// Settles reports whether a vote decides the outcome whatever later voters
// say: a vote equal to the precedence.
func (m Matrix) Settles(v Vote) bool { return v != Abstain && v == m.precedence() }

// Decide settles the votes given as the index of the first deny and of the
// first allow (-1 when there was none). It returns Allow or Deny and the
// index of the vote that decided, or -1 when the default applied.
func (m Matrix) Decide(firstDeny, firstAllow int) (Vote, int) {
	switch {
	case m.precedence() == Deny && firstDeny >= 0:
		return Deny, firstDeny
	case firstAllow >= 0:
		return Allow, firstAllow
	case firstDeny >= 0:
		return Deny, firstDeny
	case m.Default == Deny:
		return Deny, -1
	default:
		return Allow, -1
	}
}

// Tally collects votes in order for Decide.
type Tally struct {
	FirstDeny, FirstAllow int
	n                     int
}

// NewTally returns an empty tally.
func NewTally() Tally { return Tally{FirstDeny: -1, FirstAllow: -1} }

// Add records the next voter's vote and returns its index.
func (t *Tally) Add(v Vote) int {
	i := t.n
	t.n++
	switch v {
	case Deny:
		if t.FirstDeny < 0 {
			t.FirstDeny = i
		}
	case Allow:
		if t.FirstAllow < 0 {
			t.FirstAllow = i
		}
	}
	return i
}

// Decide settles the tally with m.
func (t Tally) Decide(m Matrix) (Vote, int) { return m.Decide(t.FirstDeny, t.FirstAllow) }
