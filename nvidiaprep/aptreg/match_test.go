package aptreg

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The hand-written matchers accept what the patterns they replace accepted,
// and split names the same way: real library names, and random names from
// the bytes that matter.
func TestLibraryNamesAsThePatterns(t *testing.T) {
	sonameRE := regexp.MustCompile(`^(lib[a-z0-9+.-]+?)\.so\.([0-9]+)$`)
	versionedRE := regexp.MustCompile(`^(lib[a-z0-9+.-]+?)\.so\.[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	names := []string{"libcuda.so.1", "libcuda.so.580.159.04", "libnvidia-ml.so.580.159.04", "libnvidia-nvvm.so.4",
		"libx.so.1.so.2", "libx.so.1.so.2.3", "lib.so.1", "libc++.so.6", "libGL.so.1", "libcuda.so", "libcuda.so.1.2.3.4", "nvidia-smi"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "lib.so0123-+aX"
	for range 20000 {
		b := []byte("lib")
		for range r.IntN(12) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, string(b))
	}
	for _, s := range names {
		m := sonameRE.FindStringSubmatch(s)
		name, n, ok := soname(s)
		if ok != (m != nil) || ok && (name != m[1] || n != m[2]) {
			t.Errorf("soname(%q) = %q, %q, %v; the pattern gave %q", s, name, n, ok, m)
		}
		m = versionedRE.FindStringSubmatch(s)
		name, ok = versioned(s)
		if ok != (m != nil) || ok && name != m[1] {
			t.Errorf("versioned(%q) = %q, %v; the pattern gave %q", s, name, ok, m)
		}
	}
}
