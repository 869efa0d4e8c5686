package nvpkgs

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// packageName accepts what the pattern it replaces accepted.
func TestPackageNameAsThePattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)
	names := []string{"nvidia-driver", "libcuda1:amd64", "libc++1", "a", "ab", "-x", "x:", ":amd64", "x:y:z", "Xorg", "nvidia-smi:i386", "g++-12"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "az09+.-:A _"
	for range 20000 {
		var b []byte
		for range r.IntN(8) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, string(b))
	}
	for _, s := range names {
		if got, want := packageName(s), re.MatchString(s); got != want {
			t.Errorf("packageName(%q) = %v, the pattern %v", s, got, want)
		}
	}
}
