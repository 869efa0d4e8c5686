package gpusel

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string // String() of the result, or the error's start
	}{
		{[]string{"all"}, "all"},
		{[]string{}, "none"},
		{[]string{"0", "12", "GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d", "01:00.0", "0000:41:00.0", "1:2:0",
			"MIG-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d", "MIG-GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d/1/0"},
			"0,12,GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d,01:00.0,0000:41:00.0,1:2:0,MIG-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d,MIG-GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d/1/0"},
		{[]string{"0", "all"}, `"all" must be the only selector`},
		{[]string{"01"}, `invalid GPU selector "01"`},
		{[]string{"GPU-nope"}, `invalid GPU selector "GPU-nope"`},
		{[]string{"0000:01:20.0"}, `invalid GPU selector`}, // device 0x20 > 0x1f
		{[]string{"-1"}, `invalid GPU selector`},
	} {
		sel, err := Parse(c.in)
		got := sel.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("Parse(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Every, none and a list, as enable's --gpus gives them and the gpus array
// holds them.
func TestFlagAndList(t *testing.T) {
	for _, c := range []struct {
		flag string
		list []string
		none bool
	}{
		{"all", []string{"all"}, false},
		{"none", []string{}, true},
		{"", []string{}, true},
		{" 1, GPU-x ,", []string{"1", "GPU-x"}, false},
	} {
		sel := ParseFlag(c.flag)
		if !slices.Equal(sel.List(), c.list) || sel.None() != c.none {
			t.Errorf("ParseFlag(%q) = %+v: list %q none %v, want %q %v", c.flag, sel, sel.List(), sel.None(), c.list, c.none)
		}
	}
	if (Selection{}).None() != true || Every().None() {
		t.Error("the zero Selection is no GPU; Every is every GPU")
	}
}

func TestHasMIG(t *testing.T) {
	for sel, want := range map[string]bool{"0,1": false, "0,1:2:0": true, "MIG-abc": true, "GPU-abc,0000:01:00.0": false, "all": false} {
		if got := ParseFlag(sel).HasMIG(); got != want {
			t.Errorf("HasMIG(%s) = %v", sel, got)
		}
	}
}
