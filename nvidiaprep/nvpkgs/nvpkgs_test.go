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
