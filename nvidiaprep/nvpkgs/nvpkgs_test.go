package nvpkgs

import (
	"strings"
	"testing"
)

func TestDriverPackages(t *testing.T) {
	q := `ii  bash
ii  nvidia-driver
ii  libnvidia-compute-550:amd64
rc  nvidia-utils-550
ii  libcuda1:amd64
ii  nvidia-container-toolkit
ii  libnvidia-container1:amd64
un  nvidia-smi
ii  firmware-nvidia-gsp
ii  nvidiaprep
ii  nvidia-cuda-toolkit
iU  xserver-xorg-video-nvidia
ii  glx-alternative-nvidia
ii  glx-diversions
ii  glx-alternative-mesa
ii  update-glx
` + "ii  nvidia-x\x1b[2J\nii  nvidia-\u202ekcatta\nii  nvidia-y;reboot\n" // not package names
	got := strings.Join(DriverPackages(q), " ")
	want := "nvidia-driver libnvidia-compute-550:amd64 nvidia-utils-550 libcuda1:amd64 firmware-nvidia-gsp xserver-xorg-video-nvidia glx-alternative-nvidia glx-diversions"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// The CUDA toolkit's packages stay across a driver install: purging
// nvidia-profiler, nvidia-opencl-dev or libnvidia-ml-dev would make apt
// remove nvidia-cuda-toolkit.
func TestToolkitPackagesStay(t *testing.T) {
	q := "ii  nvidia-cuda-toolkit\nii  nvidia-cuda-dev:amd64\nii  nvidia-profiler\nii  nvidia-opencl-dev:amd64\nii  libnvidia-ml-dev:amd64\nii  nvidia-cuda-gdb\nii  nvidia-visual-profiler\nii  nvidia-cuda-toolkit-doc\nii  libnvidia-ml1:amd64\nii  nvidia-cuda-mps\n"
	if got := strings.Join(DriverPackages(q), " "); got != "libnvidia-ml1:amd64 nvidia-cuda-mps" {
		t.Errorf("purged: %s; want only the driver's libnvidia-ml1 and nvidia-cuda-mps", got)
	}
	if got := strings.Join(DriverNames([]string{"libcuda1", "libnvidia-ml-dev", "nvidia-driver", "bash", "nvidia-smi", "libnvcuvid1", "nvidia-profiler", "Bad Name"}), " "); got != "libcuda1 nvidia-driver nvidia-smi libnvcuvid1" {
		t.Errorf("DriverNames: %s", got)
	}
}
