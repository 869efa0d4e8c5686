package gpusel

import "testing"

// The "<gpu>:<gi>:<ci>" triple is matched by hand (the hook links no
// regexp): three non-empty runs of digits, as ^[0-9]+:[0-9]+:[0-9]+$.
func TestIsMIGByHand(t *testing.T) {
	for sel, want := range map[string]bool{
		"0:1:0": true, "12:3:45": true, "MIG-4b7c-00": true, "MIG-GPU-abc/1/0": true,
		"0": false, "0:1": false, "0:1:0:0": false, "0::0": false, ":1:0": false, "a:1:0": false, "GPU-0:1:0": false,
	} {
		if got := IsMIG(sel); got != want {
			t.Errorf("IsMIG(%q) = %v, want %v", sel, got, want)
		}
	}
}
