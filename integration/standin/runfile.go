package standin

// This file builds a stand-in for NVIDIA's driver package,
// NVIDIA-Linux-x86_64-<version>.run, for machines and CI runners where the
// real one cannot be had. It is not NVIDIA software and contains none of it.
//
// # What it imitates
//
// The file is a self-extracting shell archive laid out like the ones NVIDIA's
// own fork of makeself (1.6.0-nv*) writes:
//
//   - "#! /bin/sh", then the variable lines CRCsum=, MD5=, skip=,
//     skip_decompress=, size_decompress=, label="NVIDIA Accelerated Graphics
//     Driver for Linux-x86_64 <ver>", version_string=<ver>, pkg_version=1,
//     script=./nvidia-installer, targetdir=NVIDIA-Linux-x86_64-<ver>,
//     scriptargs="", keep=n, add_this_kernel=n, apply_patch=n,
//     TMPROOT=${TMPDIR:=/tmp}, TARGET_OS="Linux", TARGET_ARCH="x86_64", in
//     that order; then POSIX sh code; then, from line $skip to the end of the
//     file, a compressed tar of the driver tree with members named "./...".
//   - CRCsum is the POSIX cksum CRC and MD5 the md5sum of `tail -n +4` of
//     the file (everything after the MD5= line). Before extracting, the stub
//     prints "Verifying archive integrity... ", compares the CRC (skipped
//     when SETUP_NOCHECK=1, as in NVIDIA's stub) and the MD5 (md5sum looked up
//     in /usr/local/ssl/bin /usr/local/bin /usr/bin /bin or $GUESS_MD5_PATH);
//     a mismatch prints "Error in check sums ..." or "Error in md5 sums ..."
//     and exits 2. Like the real stub it checks only after it has created the
//     target directory, so a failed check leaves that (empty) directory behind.
//   - Options honoured only as the first argument (each exits 0): -h/--help,
//     -A/--advanced-options, --info, --list, --check, --lsm, --pkg-history,
//     --label, --version-string, --pkg-version, --target-os, --target-arch,
//     --target-directory, --script; --extract-decompress exits 1 ("No
//     decompressor embedded in this archive", as the real stub says when it
//     carries no decompressor).
//   - Options honoured anywhere: -x/--extract-only (extract into
//     ./<targetdir> or the --target directory and do not run the installer),
//     --keep (extract into ./<targetdir>, run, keep it), --target DIR (extract
//     into DIR, keep it; the installer still runs unless -x is given),
//     --tmpdir DIR (extract under DIR instead of $TMPDIR or /tmp; also passed
//     on to the installer). Without --keep/--target/-x the tree goes to
//     $TMPROOT/selfgz<pid>/<targetdir> and is removed after the installer
//     exits. An existing target directory is an error: "The directory '<dir>'
//     already exists. ..." and exit 1. Before extracting, the stub checks that
//     $TMPROOT allows execution (a noexec /tmp fails with exit 1 and a hint to
//     use --tmpdir) and, unless -x, that `uname`/`uname -m` are Linux/x86_64.
//   - Every other argument is appended to scriptargs and handed to
//     ./nvidia-installer, which runs with the extracted directory as its
//     working directory; the stub exits with the installer's status. As in
//     the real stub the arguments are joined with spaces and re-split, so an
//     argument containing whitespace does not survive. makeself 2.x options
//     (--noexec, --quiet, --accept, --nox11, ...) are not stub options: they
//     reach the installer, which rejects them (exit 1).
//
// # How it differs from NVIDIA's .run
//
//   - The payload is gzip (NVIDIA's older drivers used gzip; current ones use
//     zstd with an embedded decompressor, which a minbase container lacks),
//     and no decompressor is embedded (size_decompress=0). The stub needs only
//     sh (dash is fine), coreutils, gzip and tar.
//   - --apply-patch and --add-this-kernel are not supported (the first exits 1
//     with an error, the second is handed to the installer, which rejects it).
//   - The help texts are short and written for this stand-in.
//   - The tree is small: nvidia-installer (a POSIX sh script, see
//     installer.sh), .manifest in NVIDIA's format, the libraries, libglvnd's
//     (plain files), nvidia-smi (an sh script), firmware/ (two plain files),
//     LICENSE, and kernel/ and kernel-open/ each with a dummy
//     module source (Makefile, dkms.conf, nvidia/nv.c). RunOptions.PayloadBytes
//     pads kernel/nvidia/nv-kernel.o_binary (the name of the real package's
//     largest kernel blob) with incompressible bytes so that the file and its
//     extraction cost about what a real one does.
//   - Generated libraries (libnvidia-ml, libcuda, libnvidia-ptxjitcompiler,
//     libnvidia-encode, libnvcuvid) are tiny ELF shared objects compiled with
//     the host's gcc, with the real SONAMEs (lib*.so.1), so ldconfig inside a
//     container accepts them. They answer like real ones do without a kernel
//     driver: nvmlInit*/cuInit fail (NVML_ERROR_DRIVER_NOT_LOADED, 9, and
//     CUDA_ERROR_NO_DEVICE, 100, when /dev/nvidiactl cannot be opened;
//     NVML_ERROR_LIB_RM_VERSION_MISMATCH, 18, and
//     CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, 803, when /proc/driver/nvidia/version
//     names another version). Each exports nvidiaprep_standin_version. Without
//     gcc they are plain text files (ldconfig then ignores them).
//   - nvidia-smi is an sh script: see smiScript.
//
// The installer inside is described in installer.sh; in short it imitates
// nvidia-installer's command line, exit statuses, messages, install record
// (/var/lib/nvidia/log in backup.c's format), upgrade (runs the installed
// nvidia-uninstall first) and uninstall, for user-space installs
// (--no-kernel-module), and the behaviours README.md lists with the source
// functions they were read from (utilities it refuses to run without,
// libglvnd conflicts, partial installs that exit 0, options by branch,
// module unloading on uninstall, ...). It writes nothing into its own
// directory, so it runs from a read-only tree. Environment variables only
// the stand-in reads:
//
//   - NVIDIAPREP_STANDIN_FAIL_FILE=<name>: the install of that package file
//     fails as an I/O error would; the install goes on and exits 0.
//
//   - NVIDIAPREP_STANDIN_INSTALL_DELAY=<seconds>: during an install, sleep
//     this long after the previous driver has been uninstalled and the new
//     /var/lib/nvidia/log started (header only) and before any file is
//     copied, so that a test can kill the installer in that window.
//   - NVIDIAPREP_STANDIN_FAIL_INSTALL=1: at that same point, fail the
//     install (exit 1), as a real install that breaks half way.
//   - NVIDIAPREP_STANDIN_FILE_DELAY=<seconds>: during an install, sleep
//     this long before each file and symlink, so that a test can stop the
//     install between two files.
//
// All may instead be set in the file /etc/nvidiaprep-standin of the system
// being installed into, as NAME=VALUE lines (the environment wins): the
// provisioning worker runs the installer through attach with a clean
// environment, so a test of a container writes that file inside it
// (StandinControls names it).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RunOptions describes a stand-in driver .run.
type RunOptions struct {
	Version      string   // "580.159.04" or "580.142"
	PayloadBytes int64    // pad the payload with incompressible data up to about this size (a real one is ~300 MB); 0 = small
	Libraries    []string // optional: real files to ship instead of generated stand-in libraries (e.g. a real machine's libnvidia-ml.so.<ver>); names must end in .so.<Version>
	Binaries     []string // optional: real binaries (e.g. a real nvidia-smi) to ship instead of the generated stand-in
	RealSized    bool     // for benchmarks: install every library of a real 580 driver at its real size (RealLibraries580), incompressible
	// SupportedGPUs are the rows of the tree's supported-gpus.json
	// (runfile_gpus.go); nil ships StandinSupportedGPUs(Version).
	SupportedGPUs []SupportedGPU
}

// StandinControls is the file, inside the system being installed into, from
// which the stand-in installer also reads NVIDIAPREP_STANDIN_INSTALL_DELAY,
// NVIDIAPREP_STANDIN_FAIL_INSTALL, NVIDIAPREP_STANDIN_FILE_DELAY and NVIDIAPREP_STANDIN_FAIL_FILE
// (NAME=VALUE lines).
const StandinControls = "/etc/nvidiaprep-standin"

// RunDescription is the package description NVIDIA puts on line 1 of
// .manifest and the installer copies to line 2 of /var/lib/nvidia/log.
const RunDescription = "NVIDIA Accelerated Graphics Driver for Linux-x86_64"

// RunLabel returns the .run's label= value for a version.
func RunLabel(version string) string { return RunDescription + " " + version }

// RunTargetDir returns the .run's targetdir= value for a version.
func RunTargetDir(version string) string { return "NVIDIA-Linux-x86_64-" + version }

// RunFileName returns NVIDIA's file name for a version's .run.
func RunFileName(version string) string { return RunTargetDir(version) + ".run" }

// StandinLibraries are the libraries a stand-in .run generates, by base name.
var StandinLibraries = []string{"libnvidia-ml", "libcuda", "libnvidia-ptxjitcompiler", "libnvidia-encode", "libnvcuvid"}

// glvndLibraries are the libglvnd libraries a stand-in .run ships, with
// their SONAME links.
var glvndLibraries = []struct{ file, soname string }{
	{"libGLdispatch.so.0", "libGLdispatch.so.0"},
	{"libGLX.so.0", "libGLX.so.0"},
	{"libGL.so.1.7.0", "libGL.so.1"},
	{"libEGL.so.1.1.0", "libEGL.so.1"},
	{"libGLESv2.so.2.1.0", "libGLESv2.so.2"},
	{"libOpenGL.so.0", "libOpenGL.so.0"},
}

// StandinFirmware are the firmware files a stand-in .run ships (in
// firmware/, installed to /lib/firmware/nvidia/<version>/).
var StandinFirmware = []string{"gsp_ga10x.bin", "gsp_tu10x.bin"}

//go:embed installer.sh
var installerTemplate string

var runVersionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)

// runEntry is one member of the payload tar.
type runEntry struct {
	name string // relative, without "./"
	mode int64
	dir  bool
	data []byte                  // content, or
	path string                  // a file to copy, or
	gen  func(w io.Writer) error // a generator of size bytes
	size int64                   // for path and gen
}

// libKind says how NVIDIA's .manifest types a library.
func libKind(base string) (typ, symtyp, module string, hasPath, devLink bool) {
	switch base {
	case "libnvidia-ml":
		return "UTILITY_LIB", "UTILITY_LIB_SYMLINK", "nvml", false, false
	case "libcuda":
		return "CUDA_LIB", "CUDA_SYMLINK", "gpgpu", true, true
	case "libnvidia-ptxjitcompiler", "libnvidia-nvvm":
		return "CUDA_LIB", "CUDA_SYMLINK", "gpgpu", true, false
	case "libnvidia-encode":
		return "ENCODEAPI_LIB", "ENCODEAPI_LIB_SYMLINK", "encode", false, false
	case "libnvcuvid":
		return "NVCUVID_LIB", "NVCUVID_LIB_SYMLINK", "nvcuvid", false, false
	}
	return "UTILITY_LIB", "UTILITY_LIB_SYMLINK", "standin", false, false
}

// BuildRun writes a stand-in NVIDIA-Linux-x86_64-<ver>.run at path, mode
// 0755 (see the comment at the top of this file for what it imitates).
func BuildRun(path string, o RunOptions) error {
	if !runVersionRE.MatchString(o.Version) {
		return fmt.Errorf("stand-in .run: version %q is not of the form 580.142 or 580.159.04", o.Version)
	}
	ver := o.Version
	work, err := os.MkdirTemp("", "nvidiaprep-standin-run-")
	if err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	defer os.RemoveAll(work)

	entries, err := runTree(work, o)
	if err != nil {
		return err
	}

	// du -Lks --apparent-size of the tree, as makeself's --info reports it.
	var usize int64 = 4096
	for _, e := range entries {
		if e.dir {
			usize += 4096
		} else {
			usize += entrySize(e)
		}
	}
	body := stubBody(ver, (usize+1023)/1024, time.Now())

	dir := filepath.Dir(path)
	payload, err := os.CreateTemp(dir, ".standin-payload-*")
	if err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	defer os.Remove(payload.Name())
	defer payload.Close()

	md := md5.New()
	ck := &posixCRC{}
	md.Write([]byte(body))
	ck.Write([]byte(body))
	if err := writePayload(io.MultiWriter(payload, md, ck), entries); err != nil {
		return fmt.Errorf("stand-in .run: payload: %w", err)
	}
	if _, err := payload.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}

	out, err := os.CreateTemp(dir, ".standin-run-*")
	if err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	head := fmt.Sprintf("#! /bin/sh\nCRCsum=%d\nMD5=%s\n", ck.Sum32(), hex.EncodeToString(md.Sum(nil)))
	if _, err := io.WriteString(out, head+body); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	if _, err := io.Copy(out, payload); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	if err := out.Chmod(0o755); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	if err := os.Rename(out.Name(), path); err != nil {
		return fmt.Errorf("stand-in .run: %w", err)
	}
	return nil
}

func entrySize(e runEntry) int64 {
	if e.data != nil {
		return int64(len(e.data))
	}
	return e.size
}

// OpenGLLib is one of the stand-in's OpenGL vendor libraries.
type OpenGLLib struct {
	Base, Type      string // "libGLX_nvidia", its .manifest type
	Symlink, SONAME string // its symlink's type and name ("" for none)
	Compat32        bool   // also a 32-bit copy (32/)
}

// StandinOpenGL are the OpenGL, GLX and EGL vendor libraries the stand-in
// ships, as NVIDIA's package types them.
var StandinOpenGL = []OpenGLLib{
	{"libGLX_nvidia", "GLX_CLIENT_LIB", "GLX_CLIENT_SYMLINK", "libGLX_nvidia.so.0", true},
	{"libEGL_nvidia", "EGL_CLIENT_LIB", "EGL_CLIENT_SYMLINK", "libEGL_nvidia.so.0", false},
	{"libnvidia-glcore", "OPENGL_LIB", "", "", true},
}

// runTree lists the payload's members and writes .manifest.
func runTree(work string, o RunOptions) ([]runEntry, error) {
	ver := o.Version
	var entries []runEntry
	add := func(e runEntry) { entries = append(entries, e) }

	// Libraries: given ones by base name, generated ones for the rest.
	given := map[string]string{}
	var order []string
	for _, p := range o.Libraries {
		b := filepath.Base(p)
		suffix := ".so." + ver
		if !strings.HasSuffix(b, suffix) || len(b) == len(suffix) {
			return nil, fmt.Errorf("stand-in .run: library %s: the name must end in %s", p, suffix)
		}
		base := strings.TrimSuffix(b, suffix)
		if _, dup := given[base]; dup {
			return nil, fmt.Errorf("stand-in .run: library %s given twice", base)
		}
		given[base] = p
		order = append(order, base)
	}
	have := map[string]bool{}
	for _, base := range StandinLibraries {
		if _, ok := given[base]; !ok {
			order = append(order, base)
		}
		have[base] = true
	}
	for base := range given {
		have[base] = true
	}
	order = append(order, realSizedBases(o, have)...)
	var libLines []string
	for _, base := range order {
		file := base + ".so." + ver
		e := runEntry{name: file, mode: 0o755}
		soname := ""
		if p, ok := given[base]; ok {
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("stand-in .run: %w", err)
			}
			e.path, e.size = p, st.Size()
			soname = elfSONAME(p)
		} else {
			p, err := buildStandinLib(work, base, ver)
			if err != nil {
				return nil, err
			}
			if err := padToRealSize(o, p, base); err != nil {
				return nil, err
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("stand-in .run: %w", err)
			}
			e.path, e.size = p, st.Size()
			soname = elfSONAME(p)
		}
		if soname == "" || soname == file {
			soname = base + ".so.1"
		}
		typ, symtyp, module, hasPath, devLink := libKind(base)
		path := ""
		if hasPath {
			path = " /"
		}
		libLines = append(libLines,
			fmt.Sprintf("%s 0755 %s NATIVE%s MODULE:%s", file, typ, path, module),
			fmt.Sprintf("%s 0000 %s NATIVE%s %s MODULE:%s", soname, symtyp, path, file, module))
		if devLink {
			libLines = append(libLines, fmt.Sprintf("%s.so 0000 %s NATIVE%s %s MODULE:%s", base, symtyp, path, soname, module))
		}
		add(e)
	}

	// Binaries: a given nvidia-smi replaces the generated one.
	haveSMI := false
	var binLines []string
	for _, p := range o.Binaries {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("stand-in .run: %w", err)
		}
		b := filepath.Base(p)
		if b == "nvidia-installer" || b == "nvidia-uninstall" {
			return nil, fmt.Errorf("stand-in .run: binary %s: the stand-in ships its own installer", p)
		}
		haveSMI = haveSMI || b == "nvidia-smi"
		add(runEntry{name: b, mode: 0o755, path: p, size: st.Size()})
		binLines = append(binLines, fmt.Sprintf("%s 0755 UTILITY_BINARY MODULE:utils", b))
	}
	if !haveSMI {
		add(runEntry{name: "nvidia-smi", mode: 0o755, data: []byte(smiScript(ver))})
		binLines = append([]string{"nvidia-smi 0755 UTILITY_BINARY MODULE:utils"}, binLines...)
	}
	// libglvnd, as the real package ships it (installed only with
	// --install-libglvnd or on a system without libglvnd); plain files
	// here, not ELF objects.
	var glvndLines []string
	for _, g := range glvndLibraries {
		add(runEntry{name: g.file, mode: 0o644, data: []byte("stand-in libglvnd library " + g.file + " (nvidiaprep; not an ELF object)\n")})
		glvndLines = append(glvndLines, fmt.Sprintf("%s 0644 GLVND_LIB NATIVE MODULE:opengl", g.file))
		if g.soname != g.file {
			glvndLines = append(glvndLines, fmt.Sprintf("%s 0000 GLVND_SYMLINK NATIVE %s MODULE:opengl", g.soname, g.file))
		}
	}
	// The OpenGL vendor libraries (native, and 32-bit under 32/), the EGL
	// and Vulkan ICD files: installed unless --no-opengl-files, whatever
	// --[no-]install-libglvnd says (manifest.c; plain files here).
	var glLines []string
	add(runEntry{name: "32", mode: 0o755, dir: true})
	for _, g := range StandinOpenGL {
		file := g.Base + ".so." + ver
		data := []byte("stand-in OpenGL library " + file + " (nvidiaprep; not an ELF object)\n")
		add(runEntry{name: file, mode: 0o755, data: data})
		glLines = append(glLines, fmt.Sprintf("%s 0755 %s NATIVE MODULE:opengl", file, g.Type))
		if g.Symlink != "" {
			glLines = append(glLines, fmt.Sprintf("%s 0000 %s NATIVE %s MODULE:opengl", g.SONAME, g.Symlink, file))
		}
		if g.Compat32 {
			add(runEntry{name: "32/" + file, mode: 0o755, data: append([]byte("32-bit "), data...)})
			glLines = append(glLines, fmt.Sprintf("32/%s 0755 %s COMPAT32 MODULE:opengl", file, g.Type))
			if g.Symlink != "" {
				glLines = append(glLines, fmt.Sprintf("32/%s 0000 %s COMPAT32 %s MODULE:opengl", g.SONAME, g.Symlink, file))
			}
		}
	}
	add(runEntry{name: "10_nvidia.json", mode: 0o644, data: []byte(`{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}` + "\n")})
	glLines = append(glLines, "10_nvidia.json 0644 GLVND_EGL_ICD_JSON MODULE:opengl")
	add(runEntry{name: "nvidia_icd.json", mode: 0o644, data: []byte(`{"file_format_version":"1.0.1","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.4"}}` + "\n")})
	glLines = append(glLines, "nvidia_icd.json 0644 VULKAN_ICD_JSON icd.d MODULE:vulkan")

	// GSP firmware, installed to /lib/firmware/nvidia/<version>/ even with
	// --no-kernel-module.
	add(runEntry{name: "firmware", mode: 0o755, dir: true})
	var fwLines []string
	for _, f := range StandinFirmware {
		add(runEntry{name: "firmware/" + f, mode: 0o644, data: []byte("stand-in GSP firmware " + f + " " + ver + "\n")})
		fwLines = append(fwLines, fmt.Sprintf("firmware/%s 0644 FIRMWARE INHERIT_PATH_DEPTH:1 MODULE:resman", f))
	}
	add(runEntry{name: "nvidia-installer", mode: 0o755, data: []byte(strings.ReplaceAll(installerTemplate, "@VERSION@", ver))})
	add(runEntry{name: "LICENSE", mode: 0o644, data: []byte(licenseText)})

	// Kernel module sources (dummy), and the padding blob.
	pad := int64(4096)
	if o.PayloadBytes > 0 {
		var used int64
		for _, e := range entries {
			used += entrySize(e)
		}
		if o.PayloadBytes-used-64<<10 > pad {
			pad = o.PayloadBytes - used - 64<<10
		}
	}
	var kernLines []string
	for _, kdir := range []string{"kernel", "kernel-open"} {
		add(runEntry{name: kdir, mode: 0o755, dir: true})
		add(runEntry{name: kdir + "/nvidia", mode: 0o755, dir: true})
		src := map[string]string{
			kdir + "/Makefile":    kernelMakefile,
			kdir + "/dkms.conf":   strings.ReplaceAll(dkmsConf, "@VERSION@", ver),
			kdir + "/nvidia/nv.c": strings.ReplaceAll(kernelSource, "@VERSION@", ver),
		}
		names := make([]string, 0, len(src))
		for n := range src {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			mode := int64(0o644)
			add(runEntry{name: n, mode: mode, data: []byte(src[n])})
			typ := "KERNEL_MODULE_SRC"
			if strings.HasSuffix(n, "/dkms.conf") {
				typ = "DKMS_CONF"
			}
			kernLines = append(kernLines, fmt.Sprintf("%s %04o %s INHERIT_PATH_DEPTH:1 MODULE:resman", n, mode, typ))
		}
		if kdir == "kernel" {
			n := kdir + "/nvidia/nv-kernel.o_binary"
			seed := sha256.Sum256([]byte("nvidiaprep stand-in " + ver))
			size := pad
			add(runEntry{name: n, mode: 0o644, size: size, gen: func(w io.Writer) error {
				return writeNoise(w, size, seed)
			}})
			kernLines = append(kernLines, fmt.Sprintf("%s 0644 KERNEL_MODULE_SRC INHERIT_PATH_DEPTH:1 MODULE:resman", n))
		}
	}

	// .manifest: 8 header lines (description, version, then lines the real
	// installer ignores or reads the kernel module list from), then entries.
	var m strings.Builder
	fmt.Fprintf(&m, "%s\n%s\n", RunDescription, ver)
	m.WriteString("kernel\n")
	m.WriteString("nvidia nvidia-modeset nvidia-drm nvidia-uvm nvidia-peermem\n")
	m.WriteString("nvidia-frontend\n")
	m.WriteString("nvidia.ko nvidia-modeset.ko nvidia-drm.ko nvidia-uvm.ko nvidia-peermem.ko\n")
	m.WriteString("kernel\n")
	m.WriteString("precompiled\n")
	for _, l := range libLines {
		m.WriteString(l + "\n")
	}
	for _, l := range glvndLines {
		m.WriteString(l + "\n")
	}
	for _, l := range glLines {
		m.WriteString(l + "\n")
	}
	for _, l := range binLines {
		m.WriteString(l + "\n")
	}
	for _, l := range fwLines {
		m.WriteString(l + "\n")
	}
	m.WriteString("nvidia-installer 0755 INSTALLER_BINARY MODULE:installer\n")
	m.WriteString("nvidia-uninstall 0000 UTILITY_BIN_SYMLINK nvidia-installer MODULE:installer\n")
	for _, l := range kernLines {
		m.WriteString(l + "\n")
	}
	gpus, err := supportedGPUsJSON(o)
	if err != nil {
		return nil, err
	}
	entries = append(entries, runEntry{name: "supported-gpus", mode: 0o755, dir: true},
		runEntry{name: "supported-gpus/supported-gpus.json", mode: 0o644, data: gpus})
	entries = append([]runEntry{{name: ".manifest", mode: 0o644, data: []byte(m.String())}}, entries...)
	return entries, nil
}

// writePayload writes the gzip-compressed tar of the entries.
func writePayload(w io.Writer, entries []runEntry) error {
	// HuffmanOnly: the padding is incompressible anyway, and this keeps a
	// 300 MB build fast; gzip -d reads it like any other gzip stream.
	zw, err := gzip.NewWriterLevel(w, gzip.HuffmanOnly)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	now := time.Now().Truncate(time.Second)
	for _, e := range entries {
		h := &tar.Header{Name: "./" + e.name, Mode: e.mode, ModTime: now, Uname: "root", Gname: "root", Format: tar.FormatGNU}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Size = tar.TypeReg, entrySize(e)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		switch {
		case e.data != nil:
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		case e.gen != nil:
			if err := e.gen(tw); err != nil {
				return err
			}
		default:
			f, err := os.Open(e.path)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != e.size {
				return fmt.Errorf("%s changed size while being packed", e.path)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// writeNoise writes n pseudo-random (incompressible, reproducible) bytes.
func writeNoise(w io.Writer, n int64, seed [32]byte) error {
	r := rand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf
		if int64(len(b)) > n {
			b = b[:n]
		}
		r.Read(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

// elfSONAME returns the DT_SONAME of an ELF shared object, or "".
func elfSONAME(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s, err := f.DynString(elf.DT_SONAME)
	if err != nil || len(s) == 0 {
		return ""
	}
	return s[0]
}

// buildStandinLib compiles a tiny shared object with the library's real
// SONAME; without a C compiler it writes a plain file instead.
func buildStandinLib(work, base, ver string) (string, error) {
	out := filepath.Join(work, base+".so."+ver)
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if cc, err = exec.LookPath("cc"); err != nil {
			return out, os.WriteFile(out, []byte("stand-in "+base+" "+ver+" (no C compiler was available to build an ELF object)\n"), 0o755)
		}
	}
	src := filepath.Join(work, base+".c")
	if err := os.WriteFile(src, []byte(libSource(base, ver)), 0o644); err != nil {
		return "", fmt.Errorf("stand-in .run: %w", err)
	}
	cmd := exec.Command(cc, "-shared", "-fPIC", "-O2", "-Wl,-soname,"+base+".so.1", "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("stand-in .run: building %s: %v\n%s", base, err, b)
	}
	return out, nil
}

// cudaVersion is the CUDA version a driver branch reports (nvidia-smi's
// "CUDA Version", cuDriverGetVersion).
func cudaVersion(ver string) (string, int) {
	major, _ := strconv.Atoi(strings.SplitN(ver, ".", 2)[0])
	table := []struct {
		min  int
		cuda string
	}{{580, "13.0"}, {575, "12.9"}, {570, "12.8"}, {565, "12.7"}, {560, "12.6"}, {555, "12.5"}, {550, "12.4"}, {545, "12.3"}, {535, "12.2"}, {530, "12.1"}, {525, "12.0"}}
	c := "11.8"
	for _, t := range table {
		if major >= t.min {
			c = t.cuda
			break
		}
	}
	p := strings.SplitN(c, ".", 2)
	a, _ := strconv.Atoi(p[0])
	b, _ := strconv.Atoi(p[1])
	return c, a*1000 + b*10
}

// posixCRC is the CRC of POSIX cksum(1) (what makeself stores in CRCsum=).
type posixCRC struct {
	crc uint32
	n   uint64
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return
}()

func (c *posixCRC) Write(p []byte) (int, error) {
	s := c.crc
	for _, b := range p {
		s = s<<8 ^ crcTable[byte(s>>24)^b]
	}
	c.crc, c.n = s, c.n+uint64(len(p))
	return len(p), nil
}

func (c *posixCRC) Sum32() uint32 {
	s := c.crc
	for n := c.n; n > 0; n >>= 8 {
		s = s<<8 ^ crcTable[byte(s>>24)^byte(n)]
	}
	return ^s
}

// NvidiaCRC is the checksum nvidia-installer records for an installed file
// in /var/lib/nvidia/log (crc.c's compute_crc: CRC-32 with polynomial
// 0x04C11DB7, not reflected, initial value 0xFFFFFFFF, no final XOR, and 0
// for an empty file).
func NvidiaCRC(data []byte) uint32 {
	if len(data) == 0 {
		return 0
	}
	s := ^uint32(0)
	for _, b := range data {
		s = s<<8 ^ crcTable[byte(s>>24)^b]
	}
	return s
}

var _ hash.Hash32 = (*posixCRCHash)(nil)

// posixCRCHash adapts posixCRC to hash.Hash32 (for tests and callers that
// want to check a .run's CRCsum= themselves).
type posixCRCHash struct{ posixCRC }

func (h *posixCRCHash) Sum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, h.Sum32())
}
func (h *posixCRCHash) Reset()         { h.posixCRC = posixCRC{} }
func (h *posixCRCHash) Size() int      { return 4 }
func (h *posixCRCHash) BlockSize() int { return 1 }

// NewCksum returns a hash computing POSIX cksum(1)'s CRC.
func NewCksum() hash.Hash32 { return &posixCRCHash{} }

// RunHeader is the parsed variable block at the top of a .run.
type RunHeader struct {
	CRCsum         uint32
	MD5            string
	Skip           int
	SkipDecompress int
	SizeDecompress int
	Label          string
	VersionString  string
	TargetDir      string
	Script         string
}

// ReadRunHeader parses the variable lines of a .run (real or stand-in).
func ReadRunHeader(path string) (RunHeader, error) {
	var h RunHeader
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	buf := make([]byte, 8192)
	n, _ := io.ReadFull(f, buf)
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "CRCsum":
			c, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return h, fmt.Errorf("%s: CRCsum=%q", path, v)
			}
			h.CRCsum = uint32(c)
		case "MD5":
			h.MD5 = v
		case "skip":
			h.Skip, _ = strconv.Atoi(v)
		case "skip_decompress":
			h.SkipDecompress, _ = strconv.Atoi(v)
		case "size_decompress":
			h.SizeDecompress, _ = strconv.Atoi(v)
		case "label":
			h.Label = v
		case "version_string":
			h.VersionString = v
		case "targetdir":
			h.TargetDir = v
		case "script":
			h.Script = v
		}
	}
	if h.Skip == 0 || h.VersionString == "" {
		return h, errors.New(path + ": not a makeself .run (no skip= or version_string=)")
	}
	return h, nil
}

// runPayloadOffset returns the byte offset of line skip (tail -n +skip).
func runPayloadOffset(data []byte, skip int) int {
	off := 0
	for line := 1; line < skip; line++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	return off
}
