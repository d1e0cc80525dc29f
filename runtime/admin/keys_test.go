package admin

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes("write, read,export,read")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "read:authz write:authz export" {
		t.Fatalf("got %v", got)
	}
	if got, _ := ParseScopes("all"); len(got) != 4 {
		t.Fatalf("all: %v", got)
	}
	for _, bad := range []string{"", " , ", "admin", "read:groups"} {
		_, err := ParseScopes(bad)
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || ve.Field != "scopes" {
			t.Errorf("%q: want a scopes validation error, got %v", bad, err)
		}
	}
}
