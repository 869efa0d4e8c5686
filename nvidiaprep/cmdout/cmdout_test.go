package cmdout

import "testing"

func TestLastLines(t *testing.T) {
	if got := LastLines("a\n\n b \nc\nd\n\n", 2); got != "c | d" {
		t.Fatalf("got %q", got)
	}
	if got := LastLines("", 3); got != "" {
		t.Fatalf("got %q", got)
	}
}
