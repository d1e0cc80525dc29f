package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// Regression (issue 14 item 9): ids that are not valid UTF-8 or absurdly
// long were accepted; the file store's JSON then rewrote bad bytes to
// U+FFFD, moving grants to another id.
func TestCheckIDRefusesBadIDs(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"", "empty"},
		{"\xff", "UTF-8"},
		{"auth0|\xc3\x28", "UTF-8"},
		{strings.Repeat("u", authz.MaxIDBytes+1), "bytes"},
	} {
		err := authz.CheckID("user", "user_id", c.id)
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), c.want) || ve.Field != "user_id" {
			t.Errorf("CheckID(%q…): %v, want a validation error of user_id mentioning %q", c.id[:min(len(c.id), 8)], err, c.want)
		}
	}
	for _, ok := range []string{"auth0|5f7c8ec7c33c6c004bbafe82", "samlp|corp|" + strings.Repeat("a", 1000), "ユーザー", "\uFFFD"} {
		if err := authz.CheckID("user", "user_id", ok); err != nil {
			t.Errorf("CheckID(%q): %v", ok[:min(len(ok), 20)], err)
		}
	}
}

func TestImportAndOpsRefuseBadIDs(t *testing.T) {
	long := strings.Repeat("x", authz.MaxIDBytes+1)
	for _, doc := range []string{
		"{\"groups\":[{\"_id\":\"g1\",\"name\":\"G\",\"members\":[\"\xff\"]}]}",
		"{\"groups\":[{\"_id\":\"\xff\",\"name\":\"G\"}]}",
		`{"groups":[{"_id":"g1","name":"G","members":["` + long + `"]}]}`,
		`{"roles":[{"_id":"r1","name":"R","applicationId":"a","users":["` + long + `"]}]}`,
		`{"groups":[{"_id":"` + long + `","name":"G"}]}`,
		`{"claimsmith":{"applications":[{"client_id":"` + long + `"}]}}`,
		`{"claimsmith":{"profiles":[{"user_id":"` + long + `"}]}}`,
	} {
		if _, err := authz.ParseDocument([]byte(doc)); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("ParseDocument(%.60q): %v, want a validation error", doc, err)
		}
	}
	ctx := context.Background()
	st := memory.New(memory.Options{})
	if _, err := st.Apply(ctx, 0, &authz.CreateGroup{ID: "g1", Name: "G"}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []authz.Op{
		&authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"\xff"}},
		&authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{long}},
		&authz.CreateGroup{ID: "\xfe", Name: "x"},
		&authz.CreateGroup{ID: "g2", Name: "bad \xff name"},
		&authz.RemoveUserFromGroups{UserID: "\xff"},
		&authz.PutApplication{Application: authz.Application{ClientID: long}},
	} {
		if _, err := st.Apply(ctx, 0, op); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%T: %v, want a validation error", op, err)
		}
	}
}
