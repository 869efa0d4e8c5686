package standin

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// RealLibraries580 is what the H200 run listed, name for name and byte for
// byte: the real-sized benchmark writes what a real install writes.
func TestRealLibrariesAreTheH200Listing(t *testing.T) {
	b, err := os.ReadFile("../../docs/gpu/h200/02-discovery.txt")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^-rwxr-xr-x +\d+ root root +(\d+) .* (lib[^ ]+)\.so\.580\.159\.04$`)
	listed := map[string]int64{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		listed[m[2]] = n
	}
	if len(listed) != len(RealLibraries580) {
		t.Errorf("the listing has %d libraries, RealLibraries580 %d", len(listed), len(RealLibraries580))
	}
	for _, l := range RealLibraries580 {
		if listed[l.Base] != l.Size {
			t.Errorf("%s: %d bytes here, %d in the listing", l.Base, l.Size, listed[l.Base])
		}
	}
}
