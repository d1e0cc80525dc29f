package loadtest

import (
	"strings"
	"testing"
)

// TestReplaceReadmeBlock: the block between the markers is replaced, the
// rest of the file kept byte for byte; a missing, doubled or reversed
// marker is an error naming the markers, and nothing is written.
func TestReplaceReadmeBlock(t *testing.T) {
	doc := "# T\n\nbefore\n" + ReadmeBegin + "\nold numbers\n" + ReadmeEnd + "\nafter\n"
	got, err := ReplaceReadmeBlock([]byte(doc), "new numbers")
	if err != nil {
		t.Fatal(err)
	}
	want := "# T\n\nbefore\n" + ReadmeBegin + "\nnew numbers\n" + ReadmeEnd + "\nafter\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	again, _ := ReplaceReadmeBlock(got, "new numbers\n")
	if string(again) != want {
		t.Fatalf("not idempotent:\n%s", again)
	}
	for _, bad := range []string{
		"no markers\n",
		ReadmeBegin + "\n",
		ReadmeEnd + "\n" + ReadmeBegin + "\n",
		ReadmeBegin + "\n" + ReadmeEnd + "\n" + ReadmeBegin + "\n" + ReadmeEnd + "\n",
	} {
		if out, err := ReplaceReadmeBlock([]byte(bad), "x"); err == nil || out != nil {
			t.Errorf("%q: accepted (%q)", bad, out)
		} else if !strings.Contains(err.Error(), "load test block") {
			t.Errorf("%q: error %v does not say what is wrong", bad, err)
		}
	}
}
