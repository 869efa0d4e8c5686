package provision

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/untrusted"
)

// conflictTypes are the .manifest library types whose names make files
// conflicting: with --no-backup nvidia-installer deletes every
// lib<name>.so* of them under /usr/lib*, /usr/X11R6/lib*, whoever installed
// it (command-list.c find_conflicting_files, manifest.c is_conflicting).
var conflictTypes = map[string]bool{"UTILITY_LIB": true, "CUDA_LIB": true, "ENCODEAPI_LIB": true, "NVCUVID_LIB": true,
	"OPENGL_LIB": true, "GLX_CLIENT_LIB": true, "EGL_CLIENT_LIB": true, "OPENCL_LIB": true, "TLS_LIB": true,
	"VDPAU_LIB": true, "GBM_BACKEND_LIB": true}

// conflictNames lists the "lib<name>.so" prefixes of tree's conflicting
// libraries.
func conflictNames(tree string) ([]string, error) {
	f, err := os.Open(filepath.Join(tree, ".manifest"))
	if err != nil {
		return nil, fmt.Errorf("the driver tree's manifest: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fl := strings.Fields(sc.Text())
		if n <= 8 || len(fl) < 3 || !conflictTypes[fl[2]] || !plainName.MatchString(fl[0]) {
			continue
		}
		base, _, ok := strings.Cut(path.Base(fl[0]), ".so.")
		if name := base + ".so"; ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, sc.Err()
}

// conflictDirs are where nvidia-installer looks for conflicting libraries.
const conflictDirs = "/usr/X11R6/lib /usr/X11R6/lib32 /usr/X11R6/lib64 /usr/lib /usr/lib32 /usr/lib64"

// conflicting reads conflictScript's listing: the files the install of
// version would delete that are not the same driver's leftovers or links
// no package owns that end nowhere (what a removed bind mount of a
// machine's libraries leaves: deleting them loses nothing), and the
// packages they belong to, both escaped for the error that names them.
func conflicting(listing, version string) (files, pkgs []string) {
	for _, l := range strings.Split(listing, "\n") {
		fields := strings.Split(l, "\t")
		if len(fields) != 3 {
			continue
		}
		f, pkg, target := fields[0], fields[1], fields[2]
		if pkg == "-" && (target == "dangling" || sameDriver(f, target, version)) {
			continue
		}
		files = append(files, untrusted.Escape(f, 256))
		if pkg != "-" && !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, untrusted.Escape(pkg, 128))
		}
	}
	return files, pkgs
}

// sameDriver tells whether a file no package owns is a library of the very
// driver version being installed, or a link to one: what an earlier,
// interrupted install of it left (its record unwritten on a full disk), or
// a copy of the same files. linkTarget is the end of a link's chain, so
// that libcuda.so -> libcuda.so.1 -> libcuda.so.<version> is the same
// driver too. Deleting it loses nothing: the install puts the same library
// and links in place.
func sameDriver(file, linkTarget, version string) bool {
	suffix := ".so." + version
	if linkTarget != "" {
		return strings.HasSuffix(path.Base(linkTarget), suffix)
	}
	return strings.HasSuffix(path.Base(file), suffix)
}

// checkConflicts is run after clean, before the install: what the
// installer would still delete with --no-backup is neither nvidia-installer's
// (uninstalled) nor the distribution's NVIDIA driver packages' (purged),
// so it belongs to something else (a -dev or profiler package kept in the
// container, a copy bundled by hand): the install is refused, naming the
// files and their packages, and nothing more is changed. (--no-backup is
// kept: without it the installer moves such files into /var/lib/nvidia,
// which breaks their packages just the same until an uninstall restores
// them, and an upgrade's uninstall would bring them back in the way.)
// scripts/conflicts.sh lists the files.
func (s session) checkConflicts(ctx context.Context) error {
	names, err := conflictNames(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version))
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	r, err := s.ct.Run(ctx, conflictScript.argv(names...), nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("looking for files NVIDIA's installer would delete failed (exit %d): %s", r.Exit, r.Output().LastLines(3))
	}
	files, pkgs := conflicting(r.Stdout.Raw(), s.version)
	if len(files) == 0 {
		return nil
	}
	shown := files
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(files)-5))
	}
	fix := "remove them"
	if len(pkgs) > 0 {
		fix = fmt.Sprintf("they belong to %s: purge those (pct exec %d -- apt-get purge %s) or remove the files", strings.Join(pkgs, ", "), s.vmid(), strings.Join(pkgs, " "))
	}
	return fmt.Errorf("NVIDIA's installer would delete %s: it deletes every lib<name>.so* of the driver's libraries under /usr/lib*, whoever installed it; nothing more was changed: %s, or set install = false for the container, then restart it", strings.Join(shown, ", "), fix)
}
