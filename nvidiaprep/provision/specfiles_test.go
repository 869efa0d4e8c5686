package provision

import (
	"os"
	"path/filepath"
	"testing"

	"nvidiaprep/nvidiaprep/cdispec"
)

// TestSpecFilesOfADriverWith32BitLibraries: a driver whose .run carries
// 32-bit libraries (every x86_64 .run NVIDIA ships) still gets a CDI spec,
// mounting its 64-bit files at absolute paths.
func TestSpecFilesOfADriverWith32BitLibraries(t *testing.T) {
	tree := t.TempDir()
	files := map[string]string{".manifest": testManifest, "libnvidia-ml.so.580.159.04": "ml", "libcuda.so.580.159.04": "cuda!",
		"32/libcuda.so.580.159.04": "x", "libGL.so.1.7.0": "gl", "nvidia-smi": "smi", "firmware/gsp_ga10x.bin": "fw",
		"libGLX_nvidia.so.580.159.04": "glx", "32/libGLX_nvidia.so.580.159.04": "glx32", "10_nvidia.json": "{}", "nvidia_icd.json": "{ }", "nvidia-installer": "inst"}
	for n, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, n)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := manifestEntries(tree, "/usr/lib/x86_64-linux-gnu")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range nativeFiles(entries) {
		got = append(got, e.dest)
	}
	want := map[string]bool{"/usr/lib/x86_64-linux-gnu/libcuda.so.1": false, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": false, "/usr/bin/nvidia-smi": false}
	for _, f := range got {
		if !filepath.IsAbs(f) {
			t.Errorf("spec file %q is not an absolute path", f)
		}
		if _, ok := want[f]; ok {
			want[f] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("spec files %q lack %s", got, f)
		}
	}
	in := cdispec.Input{Key: "k", GPUs: []cdispec.GPU{{UUID: "GPU-1", PCIBusID: "0000:01:00.0", Node: "/dev/nvidia0"}}, Nodes: []string{"/dev/nvidiactl"}, Files: got}
	if _, err := cdispec.Render(in); err != nil {
		t.Errorf("the spec of these files: %v", err)
	}
}
