package nvdev

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The names pre-start matches by hand (no regexp compiled at every start)
// are those the patterns ^(card[0-9]+|renderD[0-9]+)$ and
// ^[0-9]+:[0-9]+:[0-9]+$ matched: a connector or a control node is no
// GPU's DRM node, and a GPU index or a MIG UUID is no <gpu>:<gi>:<ci>.
func TestNamesMatchedByHand(t *testing.T) {
	for name, want := range map[string]bool{
		"card0": true, "card12": true, "renderD128": true,
		"card": false, "renderD": false, "card0-DP-1": false, "controlD64": false,
		"card1 ": false, "xcard1": false, "render128": false, "cardⅠ": false,
	} {
		if got := isDRMName(name); got != want {
			t.Errorf("isDRMName(%q) = %v, want %v", name, got, want)
		}
	}
}

// oldMIG splits what its pattern, ^MIG-(GPU-[0-9a-fA-F-]+)/([0-9]+)/([0-9]+)$,
// matched, the same way.
func TestOldMIGAsThePattern(t *testing.T) {
	re := regexp.MustCompile(`^MIG-(GPU-[0-9a-fA-F-]+)/([0-9]+)/([0-9]+)$`)
	sels := []string{"MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/1/0", "MIG-GPU-/1/0", "MIG-GPU-x/1/0", "MIG-GPU-a/1", "MIG-GPU-a/1/0/2", "MIG-4b7c"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aF09-/xG"
	for range 20000 {
		b := []byte("MIG-GPU-")
		for range r.IntN(10) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		sels = append(sels, string(b))
	}
	for _, s := range sels {
		m := re.FindStringSubmatch(s)
		parent, gi, ci, ok := oldMIG(s)
		if ok != (m != nil) || ok && (parent != m[1] || gi != m[2] || ci != m[3]) {
			t.Errorf("oldMIG(%q) = %q %q %q %v; the pattern gave %q", s, parent, gi, ci, ok, m)
		}
	}
}
