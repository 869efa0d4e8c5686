package ctmsg

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// An error that names its container already, under several layers of %w
// wrapping, is not named again at the boundary; one without gets the name.
func TestWrapNamesTheContainerOnce(t *testing.T) {
	bare := errors.New("nvidia-installer 580.105.08 failed (exit 1)")
	named := Errorf(101, "attach to run /bin/sh: %w", fs.ErrClosed)
	subject := required{101}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"no container context", bare, "CT 101: nvidia-installer 580.105.08 failed (exit 1)"},
		{"named", named, "CT 101: attach to run /bin/sh: file already closed"},
		{"named, three layers of %w down", fmt.Errorf("installing: %w", fmt.Errorf("step: %w", fmt.Errorf("run: %w", named))),
			"installing: step: run: CT 101: attach to run /bin/sh: file already closed"},
		{"a typed error naming it in its own sentence", subject, "CT 101 requires its GPU"},
		{"that one wrapped", fmt.Errorf("pre-start: %w", subject), "pre-start: CT 101 requires its GPU"},
		{"wrapped twice at two boundaries", Wrap(101, Wrap(101, bare)), "CT 101: nvidia-installer 580.105.08 failed (exit 1)"},
		{"joined", errors.Join(named, bare), "CT 101: attach to run /bin/sh: file already closed\nnvidia-installer 580.105.08 failed (exit 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Wrap(101, tc.err)
			if got.Error() != tc.want {
				t.Fatalf("Wrap: %q, want %q", got.Error(), tc.want)
			}
			if n := strings.Count(got.Error(), "CT 101"); n != 1 {
				t.Fatalf("%q names CT 101 %d times", got.Error(), n)
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("Wrap lost the error it wrapped (errors.Is)")
			}
			if Text(101, tc.err) != tc.want {
				t.Fatalf("Text: %q, want %q", Text(101, tc.err), tc.want)
			}
		})
	}
}

// Another container's name is not this one's: an error about CT 102 seen
// from CT 101's boundary still gets CT 101's name.
func TestWrapAnotherContainer(t *testing.T) {
	other := Errorf(102, "its lock is held")
	got := Wrap(101, other)
	if got.Error() != "CT 101: CT 102: its lock is held" {
		t.Fatalf("%q", got)
	}
	if !Names(got, 102) || !Names(got, 101) || Names(got, 103) {
		t.Fatalf("Names: wrong")
	}
}

func TestWrapNil(t *testing.T) {
	if Wrap(101, nil) != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
}

func TestSprintf(t *testing.T) {
	if got := Sprintf(101, "driver %s", "580.105.08"); got != "CT 101: driver 580.105.08" {
		t.Fatalf("%q", got)
	}
}

// required is a typed error of another package that names its container
// in its own sentence.
type required struct{ vmid int }

func (e required) Error() string  { return Name(e.vmid) + " requires its GPU" }
func (e required) NamedVMID() int { return e.vmid }

func TestWrapKnowsOtherNamedErrors(t *testing.T) {
	err := fmt.Errorf("pre-start: %w", required{101})
	if got := Wrap(101, err).Error(); got != "pre-start: CT 101 requires its GPU" {
		t.Fatalf("%q", got)
	}
	if got := Wrap(102, err).Error(); got != "CT 102: pre-start: CT 101 requires its GPU" {
		t.Fatalf("%q", got)
	}
}
