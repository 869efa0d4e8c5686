//go:build integration && dkms

package integration_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
)

// The kernel guard with NVIDIA's real kernel module source: Debian's
// non-free nvidia-kernel-dkms (its nvidia-current sources, registered as
// nvidia/<version> in the form NVIDIA's installer gives a .run's). Its
// build takes minutes on two cores: `make dkms-tier` runs it
// (docs/kernel-updates.md).
func TestKernelUpdateRealNVIDIASource(t *testing.T) {
	kernelUpdate(t, debianNVIDIASource, kernelOptions{})
}

func debianNVIDIASource(t *testing.T, bed *lxctest.Bed) moduleSource {
	debs, err := aptrepo.FetchFrom(bed.Cache, filepath.Join(bed.Cache, "rootfs-bookworm"),
		aptrepo.Source{Suite: "bookworm", Components: []string{"main", "contrib", "non-free", "non-free-firmware"}}, "nvidia-kernel-dkms")
	if err != nil {
		t.Fatal(err)
	}
	deb := ""
	for _, d := range debs {
		if strings.HasPrefix(filepath.Base(d), "nvidia-kernel-dkms_") {
			deb = d
		}
	}
	if deb == "" {
		t.Fatalf("no nvidia-kernel-dkms in %v", debs)
	}
	x := t.TempDir()
	if out, code := runbin.Exit(t, "dpkg-deb", nil, "-x", deb, x); code != 0 {
		t.Fatalf("dpkg-deb -x %s: exit %d\n%s", deb, code, out)
	}
	srcs, _ := filepath.Glob(filepath.Join(x, "usr/src/nvidia-current-*"))
	if len(srcs) != 1 {
		t.Fatalf("sources: %v", srcs)
	}
	v := strings.TrimPrefix(filepath.Base(srcs[0]), "nvidia-current-")
	dir := filepath.Join(t.TempDir(), "nvidia-"+v)
	if err := os.Rename(srcs[0], dir); err != nil {
		t.Fatal(err)
	}
	// Debian's dkms.conf builds the same modules under its own names;
	// NVIDIA's installer names them nvidia, nvidia-modeset, ... Keep
	// Debian's MAKE line, which is NVIDIA's.
	conf, err := os.ReadFile(filepath.Join(dir, "dkms.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)MAKE\[0\]="(.*?)"\n`).FindSubmatch(conf)
	if m == nil {
		t.Fatalf("no MAKE in dkms.conf:\n%s", conf)
	}
	make := strings.Join(strings.Fields(strings.ReplaceAll(string(m[1]), "\\\n", " ")), " ")
	if err := os.WriteFile(filepath.Join(dir, "dkms.conf"),
		[]byte(nvidiaDKMSConf(v, make, "nvidia", "nvidia-modeset", "nvidia-drm", "nvidia-uvm", "nvidia-peermem")), 0o644); err != nil {
		t.Fatal(err)
	}
	return moduleSource{version: v, dir: dir, broken: "nvidia/nv.c"}
}
