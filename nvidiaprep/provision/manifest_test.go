package provision

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/nvflags"
)

// A manifest in NVIDIA's format: 8 header lines, then entries (name, mode,
// type, arch, [path], [target], module).
const testManifest = `NVIDIA Accelerated Graphics Driver for Linux-x86_64
580.159.04
kernel
nvidia nvidia-modeset nvidia-drm nvidia-uvm nvidia-peermem
nvidia-frontend
nvidia.ko nvidia-modeset.ko nvidia-drm.ko nvidia-uvm.ko nvidia-peermem.ko
kernel
precompiled
libnvidia-ml.so.580.159.04 0755 UTILITY_LIB NATIVE MODULE:nvml
libnvidia-ml.so.1 0000 UTILITY_LIB_SYMLINK NATIVE libnvidia-ml.so.580.159.04 MODULE:nvml
libcuda.so.580.159.04 0755 CUDA_LIB NATIVE / MODULE:gpgpu
libcuda.so.1 0000 CUDA_SYMLINK NATIVE / libcuda.so.580.159.04 MODULE:gpgpu
32/libcuda.so.580.159.04 0755 CUDA_LIB COMPAT32 / MODULE:gpgpu
libGL.so.1.7.0 0644 GLVND_LIB NATIVE MODULE:opengl
nvidia-smi 0755 UTILITY_BINARY MODULE:utils
libGLX_nvidia.so.580.159.04 0755 GLX_CLIENT_LIB NATIVE MODULE:opengl
libGLX_nvidia.so.0 0000 GLX_CLIENT_SYMLINK NATIVE libGLX_nvidia.so.580.159.04 MODULE:opengl
32/libGLX_nvidia.so.580.159.04 0755 GLX_CLIENT_LIB COMPAT32 MODULE:opengl
32/libGLX_nvidia.so.0 0000 GLX_CLIENT_SYMLINK COMPAT32 libGLX_nvidia.so.580.159.04 MODULE:opengl
10_nvidia.json 0644 GLVND_EGL_ICD_JSON MODULE:opengl
nvidia_icd.json 0644 VULKAN_ICD_JSON icd.d MODULE:vulkan
nvidia-installer 0755 INSTALLER_BINARY MODULE:installer
nvidia-uninstall 0000 UTILITY_BIN_SYMLINK nvidia-installer MODULE:installer
firmware/gsp_ga10x.bin 0644 FIRMWARE INHERIT_PATH_DEPTH:1 MODULE:resman
kernel/nvidia/nv.c 0644 KERNEL_MODULE_SRC INHERIT_PATH_DEPTH:1 MODULE:resman
odd name 0644 UTILITY_BINARY MODULE:utils
`

func TestManifestEntries(t *testing.T) {
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
	lib := "/usr/lib/x86_64-linux-gnu"
	got, err := manifestEntries(tree, lib)
	if err != nil {
		t.Fatal(err)
	}
	want := []wantEntry{
		{dest: lib + "/libnvidia-ml.so.580.159.04", size: 2},
		{dest: lib + "/libnvidia-ml.so.1", target: "libnvidia-ml.so.580.159.04"},
		{dest: lib + "/libcuda.so.580.159.04", size: 5},
		{dest: lib + "/libcuda.so.1", target: "libcuda.so.580.159.04"},
		{dest: "libcuda.so.580.159.04", size: 1, compat32: true},
		{dest: "/usr/bin/nvidia-smi", size: 3},
		{dest: lib + "/libGLX_nvidia.so.580.159.04", size: 3},
		{dest: lib + "/libGLX_nvidia.so.0", target: "libGLX_nvidia.so.580.159.04"},
		{dest: "libGLX_nvidia.so.580.159.04", size: 5, compat32: true},
		{dest: "libGLX_nvidia.so.0", target: "libGLX_nvidia.so.580.159.04", compat32: true},
		{dest: "/usr/share/glvnd/egl_vendor.d/10_nvidia.json", size: 2},
		{dest: "/etc/vulkan/icd.d/nvidia_icd.json", size: 3},
		{dest: "/usr/bin/nvidia-installer", size: 4},
		{dest: "/usr/bin/nvidia-uninstall", target: "nvidia-installer"},
		{dest: "/lib/firmware/nvidia/580.159.04/gsp_ga10x.bin", size: 2, firmware: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries:\n%+v\nwant\n%+v", got, want)
	}
	in := checkInput(want)
	if !strings.Contains(in, "f /usr/bin/nvidia-smi 3\n") || !strings.Contains(in, "l "+lib+"/libcuda.so.1 libcuda.so.580.159.04\n") {
		t.Errorf("check input:\n%s", in)
	}
	// Only paths nvidiaprep asked about count; firmware apart.
	missing, fw := missingOf(want, "/usr/bin/nvidia-smi\n/etc/shadow\n\x1b[31mred\n/lib/firmware/nvidia/580.159.04/gsp_ga10x.bin\n/usr/bin/nvidia-smi\n")
	if !reflect.DeepEqual(missing, []string{"/usr/bin/nvidia-smi"}) || len(fw) != 1 {
		t.Errorf("missing %q, firmware %q", missing, fw)
	}
	if _, err := manifestEntries(t.TempDir(), lib); err == nil {
		t.Error("a tree without .manifest was accepted")
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"460.91.03": false, "465.19.01": true, "535.216.01": true, "580.159.04": true} {
		err := checkVersion(v)
		if (err == nil) != ok {
			t.Errorf("CheckVersion(%s): %v", v, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--no-systemd") {
			t.Errorf("CheckVersion(%s): %v", v, err)
		}
	}
}

// Every flag the worker passes is known to every branch it accepts.
func TestInstallerFlagsKnownFromTheMinimum(t *testing.T) {
	for _, f := range installerFlags {
		if !nvflags.Knows(nvflags.MinContainerVersion, f) {
			t.Errorf("%s is unknown to %s's installer", f, nvflags.MinContainerVersion)
		}
	}
}

// A 32-bit entry is found in whichever 32-bit directory the installer
// picked; missing there, it is reported.
func TestCheckScriptCompat32(t *testing.T) {
	d := t.TempDir()
	dirs := []string{filepath.Join(d, "i386"), filepath.Join(d, "lib32"), filepath.Join(d, "lib")}
	for _, x := range dirs {
		os.MkdirAll(x, 0o755)
	}
	os.WriteFile(filepath.Join(dirs[2], "libGLX_nvidia.so.1.2"), []byte("glx32"), 0o644)
	os.Symlink("libGLX_nvidia.so.1.2", filepath.Join(dirs[2], "libGLX_nvidia.so.0"))
	want := []wantEntry{{dest: "libGLX_nvidia.so.1.2", size: 5, compat32: true}, {dest: "libGLX_nvidia.so.0", target: "libGLX_nvidia.so.1.2", compat32: true},
		{dest: "libnvidia-glcore.so.1.2", size: 3, compat32: true}}
	cmd := localCommand(checkScript, map[string]string{"COMPAT32_DIRS": strings.Join(dirs, " ")})
	cmd.Stdin = strings.NewReader(checkInput(want))
	out, err := cmd.Output()
	if err != nil || string(out) != "libnvidia-glcore.so.1.2\n" {
		t.Errorf("%v: %q", err, out)
	}
	if files, _ := missingOf(want, string(out)); len(files) != 1 || files[0] != "libnvidia-glcore.so.1.2" {
		t.Errorf("missing %v", files)
	}
}

// The libraries whose names conflict, and what conflictScript finds.
func TestConflicts(t *testing.T) {
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, ".manifest"), []byte(testManifest), 0o644)
	names, err := conflictNames(tree)
	if err != nil || strings.Join(names, " ") != "libnvidia-ml.so libcuda.so libGLX_nvidia.so" {
		t.Fatalf("%v %v", names, err)
	}
	d := t.TempDir()
	lib := filepath.Join(d, "lib", "x86_64-linux-gnu")
	os.MkdirAll(lib, 0o755)
	os.MkdirAll(filepath.Join(d, "lib", "build"), 0o755)
	for _, f := range []string{"libcuda.so.535.216.01", "libnvidia-cfg.so.1", "../build/libcuda.so.1"} {
		os.WriteFile(filepath.Join(lib, f), []byte("x"), 0o644)
	}
	os.Symlink("libcuda.so.535.216.01", filepath.Join(lib, "libcuda.so.1"))
	out, err := localCommand(conflictScript, map[string]string{"CONFLICT_DIRS": filepath.Join(d, "lib")}, names...).Output()
	if err != nil || string(out) != lib+"/libcuda.so.1\t-\t"+lib+"/libcuda.so.535.216.01\n"+lib+"/libcuda.so.535.216.01\t-\t\n" {
		t.Errorf("%v: %q", err, out)
	}
}

// The unversioned links of the same driver (libcuda.so -> libcuda.so.1 ->
// libcuda.so.<version>, as the installer makes them, or a machine image
// ships them: the H100 run's container root had nine) are no conflict;
// the same chain to another version is; so is a dangling link no package
// owns. Before, only a link straight to the versioned file passed, and the
// install was refused.
func TestALinkChainToTheSameDriverIsNoConflict(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "lib")
	os.MkdirAll(lib, 0o755)
	for _, v := range []string{"580.142", "535.216.01"} {
		name := map[string]string{"580.142": "libcuda.so", "535.216.01": "libGLX_nvidia.so"}[v]
		os.WriteFile(filepath.Join(lib, name+"."+v), []byte("x"), 0o644)
		os.Symlink(name+"."+v, filepath.Join(lib, name+".1"))
		os.Symlink(name+".1", filepath.Join(lib, name))
	}
	// a link no package owns that ends nowhere: deleting it loses nothing
	os.Symlink("/nonexistent/libnvcuvid.so.1", filepath.Join(lib, "libnvcuvid.so"))
	out, err := localCommand(conflictScript, map[string]string{"CONFLICT_DIRS": lib}, "libcuda.so", "libGLX_nvidia.so", "libnvcuvid.so").Output()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := conflicting(string(out), "580.142")
	want := []string{lib + "/libGLX_nvidia.so", lib + "/libGLX_nvidia.so.1", lib + "/libGLX_nvidia.so.535.216.01"}
	if !slices.Equal(files, want) {
		t.Errorf("conflicting = %q, want %q (listing %q)", files, want, out)
	}
}

// What an interrupted install of the same version left (a library and a
// link to it, no package's) is no conflict; another version's copy is.
func TestSameDriverIsNoConflict(t *testing.T) {
	for _, c := range []struct {
		file, target string
		same         bool
	}{
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.580.142", "", true},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "libcuda.so.580.142", true},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.535.216.01", "", false},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "libcuda.so.535.216.01", false},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.580.142.1", "", false},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so", "", false},
	} {
		if got := sameDriver(c.file, c.target, "580.142"); got != c.same {
			t.Errorf("sameDriver(%q, %q) = %v", c.file, c.target, got)
		}
	}
}

// The CDI spec and the registration get absolute paths only: with a
// 32-bit library in the manifest, the spec was refused ("not an absolute
// path") after every install.
func TestNativeFilesAreAbsolute(t *testing.T) {
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, ".manifest"), []byte(testManifest), 0o644)
	entries, err := manifestEntries(tree, "/usr/lib/x86_64-linux-gnu")
	if err != nil {
		t.Fatal(err)
	}
	compat := 0
	for _, e := range entries {
		if e.compat32 {
			compat++
		}
	}
	files := nativeFiles(entries)
	if compat == 0 || len(files) == 0 {
		t.Fatalf("the test manifest has %d 32-bit and %d native entries", compat, len(files))
	}
	for _, e := range files {
		if !path.IsAbs(e.dest) || e.compat32 || e.firmware {
			t.Errorf("%+v", e)
		}
	}
}
