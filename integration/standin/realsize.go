package standin

import (
	"crypto/sha256"
	"fmt"
	"os"
)

// RealLibrary is one user-space library of a real driver and its size.
type RealLibrary struct {
	Base string // e.g. "libcuda"
	Size int64  // bytes of lib<...>.so.<version>
}

// RealLibraries580 are the libraries 580.159.04 installs with
// --no-kernel-module and their sizes, as listed on an H200 node
// (docs/gpu/h200/02-discovery.txt, `ls -l /usr/local/nvidia/lib64`; 690
// MB in all). With RunOptions.RealSized a stand-in .run installs files of
// these names and sizes, so that benchmarks write what a real install
// writes; tests leave it off and stay fast.
var RealLibraries580 = []RealLibrary{
	{"libEGL_nvidia", 1296640},
	{"libGLESv1_CM_nvidia", 80336},
	{"libGLESv2_nvidia", 129496},
	{"libGLX_nvidia", 1211968},
	{"libcuda", 96284520},
	{"libcudadebugger", 10444456},
	{"libnvcuvid", 20749912},
	{"libnvidia-allocator", 169064},
	{"libnvidia-cfg", 395384},
	{"libnvidia-eglcore", 35076592},
	{"libnvidia-encode", 285464},
	{"libnvidia-fbc", 245728},
	{"libnvidia-glcore", 37062312},
	{"libnvidia-glsi", 603384},
	{"libnvidia-glvkspirv", 9553072},
	{"libnvidia-gpucomp", 72265336},
	{"libnvidia-ml", 2291896},
	{"libnvidia-nvvm", 78111720},
	{"libnvidia-opencl", 89862512},
	{"libnvidia-opticalflow", 71872},
	{"libnvidia-pkcs11-openssl3", 14336},
	{"libnvidia-ptxjitcompiler", 39422584},
	{"libnvidia-rtcore", 105526368},
	{"libnvidia-tls", 18632},
	{"libnvoptix", 105212368},
	{"libvdpau_nvidia", 683344},
}

// realSizedBases are the libraries a real-sized .run adds to the generated
// ones (StandinLibraries), in RealLibraries580's order.
func realSizedBases(o RunOptions, have map[string]bool) []string {
	if !o.RealSized {
		return nil
	}
	var out []string
	for _, l := range RealLibraries580 {
		if !have[l.Base] {
			out = append(out, l.Base)
		}
	}
	return out
}

// padToRealSize appends incompressible bytes to a generated library (an ELF
// object: the loader maps it by its program headers and never reads what
// follows) up to the real library's size, when RunOptions.RealSized asks.
func padToRealSize(o RunOptions, path, base string) error {
	if !o.RealSized {
		return nil
	}
	var size int64 = -1
	for _, l := range RealLibraries580 {
		if l.Base == base {
			size = l.Size
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	if size <= st.Size() {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	defer f.Close()
	if err := writeNoise(f, size-st.Size(), sha256.Sum256([]byte("nvidiaprep stand-in "+path))); err != nil {
		return fmt.Errorf("stand-in .run: padding %s: %w", path, err)
	}
	return f.Close()
}
