package nvdev

import "testing"

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
	for sel, want := range map[string]bool{
		"0:1:0": true, "12:3:45": true, "MIG-4b7c-00": true, "MIG-GPU-abc/1/0": true,
		"0": false, "0:1": false, "0:1:0:0": false, "0::0": false, ":1:0": false, "a:1:0": false, "GPU-0:1:0": false,
	} {
		if got := IsMIGSelector(sel); got != want {
			t.Errorf("IsMIGSelector(%q) = %v, want %v", sel, got, want)
		}
	}
}
