package runtime_test

import (
	"fmt"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// matrixRows is LoopBack's decision table, every row: the votes in order,
// the configuration, the outcome and which vote settled it (-1: default).
var matrixRows = []struct {
	votes           string // a=allow d=deny -=abstain
	precedence, def string
	want            runtime.Vote
	at              int
}{
	{"", "deny", "allow", runtime.Allow, -1},
	{"", "deny", "deny", runtime.Deny, -1},
	{"", "allow", "allow", runtime.Allow, -1},
	{"", "allow", "deny", runtime.Deny, -1},
	{"--", "deny", "allow", runtime.Allow, -1},
	{"--", "deny", "deny", runtime.Deny, -1},
	{"--", "allow", "allow", runtime.Allow, -1},
	{"--", "allow", "deny", runtime.Deny, -1},
	{"aa", "deny", "deny", runtime.Allow, 0},
	{"aa", "allow", "deny", runtime.Allow, 0},
	{"dd", "deny", "allow", runtime.Deny, 0},
	{"dd", "allow", "allow", runtime.Deny, 0},
	{"-a", "deny", "deny", runtime.Allow, 1},
	{"-a", "allow", "deny", runtime.Allow, 1},
	{"-d", "deny", "allow", runtime.Deny, 1},
	{"-d", "allow", "allow", runtime.Deny, 1},
	{"ad", "deny", "allow", runtime.Deny, 1},
	{"ad", "deny", "deny", runtime.Deny, 1},
	{"da", "deny", "allow", runtime.Deny, 0},
	{"da", "deny", "deny", runtime.Deny, 0},
	{"ad", "allow", "allow", runtime.Allow, 0},
	{"ad", "allow", "deny", runtime.Allow, 0},
	{"da", "allow", "allow", runtime.Allow, 1},
	{"da", "allow", "deny", runtime.Allow, 1},
	{"-ad", "deny", "allow", runtime.Deny, 2},
	{"-da", "allow", "deny", runtime.Allow, 2},
	{"a-d", "", "", runtime.Deny, 2},
	{"---", "", "", runtime.Allow, -1},
}

func tally(votes string) runtime.Tally {
	t := runtime.NewTally()
	for _, c := range votes {
		switch c {
		case 'a':
			t.Add(runtime.Allow)
		case 'd':
			t.Add(runtime.Deny)
		default:
			t.Add(runtime.Abstain)
		}
	}
	return t
}

func TestMatrixTable(t *testing.T) {
	for _, r := range matrixRows {
		t.Run(fmt.Sprintf("%s/%s/%s", r.votes, r.precedence, r.def), func(t *testing.T) {
			m, _, err := runtime.ParseMatrix(r.precedence, r.def)
			if err != nil {
				t.Fatal(err)
			}
			got, at := tally(r.votes).Decide(m)
			if got != r.want || at != r.at {
				t.Fatalf("got %v at %d, want %v at %d", got, at, r.want, r.at)
			}
		})
	}
}

// TestMatrixExhaustive checks every vote sequence up to length 4 against the
// rule in words: the precedence vote wins if cast, else the other vote if
// cast, else the default.
func TestMatrixExhaustive(t *testing.T) {
	var seqs []string
	var gen func(s string)
	gen = func(s string) {
		seqs = append(seqs, s)
		if len(s) < 4 {
			for _, c := range "ad-" {
				gen(s + string(c))
			}
		}
	}
	gen("")
	for _, prec := range []runtime.Vote{runtime.Deny, runtime.Allow} {
		for _, def := range []runtime.Vote{runtime.Allow, runtime.Deny} {
			m := runtime.Matrix{Precedence: prec, Default: def}
			for _, s := range seqs {
				want, wantAt := def, -1
				other := runtime.Allow
				if prec == runtime.Allow {
					other = runtime.Deny
				}
				for _, v := range []runtime.Vote{prec, other} {
					c := map[runtime.Vote]rune{runtime.Allow: 'a', runtime.Deny: 'd'}[v]
					if i := indexRune(s, c); i >= 0 {
						want, wantAt = v, i
						break
					}
				}
				if got, at := tally(s).Decide(m); got != want || at != wantAt {
					t.Errorf("%q prec=%v def=%v: got %v at %d, want %v at %d", s, prec, def, got, at, want, wantAt)
				}
			}
		}
	}
}

func indexRune(s string, c rune) int {
	for i, r := range s {
		if r == c {
			return i
		}
	}
	return -1
}

func TestMatrixFinalSettles(t *testing.T) {
	deny := runtime.Matrix{}
	allow := runtime.Matrix{Precedence: runtime.Allow}
	if !deny.Final(runtime.Deny) || deny.Final(runtime.Allow) || allow.Final(runtime.Deny) {
		t.Fatal("Final: only a deny under deny precedence stops the pipeline")
	}
	if !deny.Settles(runtime.Deny) || deny.Settles(runtime.Allow) || !allow.Settles(runtime.Allow) || allow.Settles(runtime.Deny) || deny.Settles(runtime.Abstain) {
		t.Fatal("Settles: a vote equal to the precedence")
	}
	if _, key, err := runtime.ParseMatrix("maybe", ""); err == nil || key != "precedence" {
		t.Fatalf("bad precedence: %q %v", key, err)
	}
	if _, key, err := runtime.ParseMatrix("", "perhaps"); err == nil || key != "default" {
		t.Fatalf("bad default: %q %v", key, err)
	}
}
