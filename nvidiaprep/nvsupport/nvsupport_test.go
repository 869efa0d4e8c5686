package nvsupport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/driverrun"
)

// tree extracts a stand-in .run of version (its supported-gpus.json in
// NVIDIA's form) and returns the tree.
func tree(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	run := filepath.Join(dir, "runs", driverrun.RunFileName(version))
	if err := os.MkdirAll(filepath.Dir(run), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := standin.BuildRun(run, standin.RunOptions{Version: version}); err != nil {
		t.Fatal(err)
	}
	c := driverrun.Cache{Dir: dir}
	tr, err := c.Extract(t.Context(), version, "")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func gpus(t *testing.T, ids ...string) []PCIGPU {
	t.Helper()
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		d, err := parseID(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddPCIGPU("0000:0"+string(rune('1'+i))+":00.0", d); err != nil {
			t.Fatal(err)
		}
	}
	g, err := PCIGPUs(h.Sys)
	if err != nil || len(g) != len(ids) {
		t.Fatalf("PCIGPUs: %v %v", g, err)
	}
	return g
}

func TestCheck(t *testing.T) {
	t580, t590 := tree(t, "580.105.08"), tree(t, "590.44.01")
	l580, err := ReadList(t580)
	if err != nil {
		t.Fatal(err)
	}
	l590, _ := ReadList(t590)
	cases := []struct {
		name, version, kind string
		list                List
		gpus                []string
		wantType            string
		ask                 bool
		problems            []string
	}{
		{"Pascal on 590 names the 580 branch", "590.44.01", "auto", l590, []string{standin.DevGTX1080},
			"proprietary", false, []string{"GPU 0000:01:00.0 (10de:1b80) (NVIDIA GeForce GTX 1080) is not supported by driver 590.44.01", "580.xx legacy branch", "set [driver] version to a 580 release"}},
		{"Pascal on 580 with open is refused, naming the GPU", "580.105.08", "open", l580, []string{standin.DevGTX1080},
			"open", false, []string{"kernel_module = \"open\", but GPU 0000:01:00.0 (10de:1b80) NVIDIA GeForce GTX 1080 is older than Turing"}},
		{"Blackwell with proprietary is refused", "580.105.08", "proprietary", l580, []string{standin.DevRTX5090},
			"proprietary", false, []string{"GPU 0000:01:00.0 (10de:2b85) NVIDIA GeForce RTX 5090 needs the open kernel module"}},
		{"Kepler names 470", "580.105.08", "auto", l580, []string{standin.DevTeslaK80},
			"proprietary", false, []string{"470.xx legacy branch"}},
		{"unknown card", "580.105.08", "auto", l580, []string{"0x9999"},
			"open", false, []string{"is not in driver 580.105.08's list of supported GPUs"}},
		{"auto asks the installer from 570.86", "580.105.08", "auto", l580, []string{standin.DevH100}, "open", true, nil},
		{"auto from 515 to 559 is proprietary", "550.163.01", "auto", l580, []string{standin.DevH100}, "proprietary", false, nil},
		{"Pascal with proprietary on 580 is fine", "580.105.08", "proprietary", l580, []string{standin.DevGTX1080}, "proprietary", false, nil},
		{"no open module before 515", "470.256.02", "open", l580, []string{standin.DevH100},
			"open", false, []string{"driver 470.256.02 has no open kernel module (the first is 515.43.04)"}},
		{"mixed: one needs open, one cannot", "580.105.08", "auto", l580, []string{standin.DevRTX5090, standin.DevGTX1080},
			"open", false, []string{"mixes GPUs that need the open kernel module with GPUs it does not drive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Check(c.version, c.list, nil, gpus(t, c.gpus...), c.kind)
			if v.ModuleType != c.wantType || v.AskInstaller != c.ask {
				t.Errorf("type %q ask %v, want %q %v", v.ModuleType, v.AskInstaller, c.wantType, c.ask)
			}
			all := strings.Join(v.Problems, "\n")
			if len(c.problems) == 0 && all != "" {
				t.Errorf("problems:\n%s", all)
			}
			for _, w := range c.problems {
				if !strings.Contains(all, w) {
					t.Errorf("problems lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestNoListIsANoteNotARefusal(t *testing.T) {
	_, err := ReadList(t.TempDir())
	v := Check("580.105.08", List{}, err, gpus(t, standin.DevH100), "open")
	if len(v.Problems) != 0 || len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "not checked") {
		t.Errorf("%+v", v)
	}
}

func TestKernelMinimums(t *testing.T) {
	for release, want := range map[string]string{
		"6.17.2-1-pve":   "kernel 6.17.2-1-pve needs NVIDIA driver 580.105.08 or later",
		"7.0.0-3-pve":    "kernel 7.0.0-3-pve needs NVIDIA driver 580.105.08 or later",
		"6.8.12-4-pve":   "",
		"6.1.0-57-amd64": "",
		"garbage":        "",
	} {
		got := CheckKernel("550.163.01", release)
		if want == "" && got != "" || want != "" && (!strings.Contains(got, want) || !strings.Contains(got, "ProxMenux")) {
			t.Errorf("%s: %q, want %q", release, got, want)
		}
		if got := CheckKernel("580.105.08", release); got != "" {
			t.Errorf("580.105.08 on %s: %q", release, got)
		}
	}
}
