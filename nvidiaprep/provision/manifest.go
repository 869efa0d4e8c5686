package provision

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// wantEntry is one file or symlink nvidia-installer must have installed.
type wantEntry struct {
	dest     string // absolute path inside the container; a 32-bit entry's base name
	size     int64  // a file's size (the tree's file)
	target   string // a symlink's target; "" for a file
	firmware bool
	// compat32: a 32-bit library (or its link) in whichever of
	// compat32List the installer picked (files.c compat_libdirs: the
	// first the ldconfig cache names, else the first that exists).
	compat32 bool
}

// libTypes are the .manifest types of native libraries installed into the
// library directory, with whether the entry carries a path below it
// (manifest.c: has_path); symTypes the same for their symlinks.
var (
	libTypes = map[string]bool{"UTILITY_LIB": false, "ENCODEAPI_LIB": false, "NVCUVID_LIB": false, "CUDA_LIB": true, "OPENCL_LIB": true,
		"OPENGL_LIB": false, "GLX_CLIENT_LIB": false, "EGL_CLIENT_LIB": false}
	symTypes = map[string]bool{"UTILITY_LIB_SYMLINK": false, "ENCODEAPI_LIB_SYMLINK": false, "NVCUVID_LIB_SYMLINK": false, "CUDA_SYMLINK": true, "OPENCL_LIB_SYMLINK": true,
		"OPENGL_SYMLINK": false, "GLX_CLIENT_SYMLINK": false, "EGL_CLIENT_SYMLINK": false}
)

// plainName is what a manifest name or target must look like to be
// checked (NVIDIA's names are; anything else is skipped, never passed on).
var plainName = regexp.MustCompile(`^[A-Za-z0-9._+/-]+$`)

// manifestEntries lists, from the extracted tree's .manifest (on the host,
// in the node's cache), what an install with installerFlags puts into the
// container with libDir as its library directory: the native libraries and
// their symlinks, the utilities (/usr/bin) and the firmware
// (/lib/firmware/nvidia/<version>/, files.c set_destinations). The
// installer exits 0 when it could not install some of them (command-list.c
// execute_command_list, misc.c continue_after_error), so this is what
// verification compares the disk with.
func manifestEntries(tree, libDir string) ([]wantEntry, error) {
	f, err := os.Open(filepath.Join(tree, ".manifest"))
	if err != nil {
		return nil, fmt.Errorf("the driver tree's manifest: %w", err)
	}
	defer f.Close()
	var version string
	var out []wantEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if n == 2 {
			version = strings.TrimSpace(sc.Text())
		}
		if n <= 8 {
			continue
		}
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || !plainName.MatchString(fl[0]) {
			continue
		}
		name, typ, rest := fl[0], fl[2], fl[3:]
		dir := libDir
		if hasPath, ok := libTypes[typ]; ok {
			if len(rest) > 0 && rest[0] == "COMPAT32" {
				rel := path.Base(name)
				if hasPath && len(rest) > 1 && !strings.HasPrefix(rest[1], "MODULE:") {
					rel = strings.TrimPrefix(path.Join(rest[1], rel), "/")
				}
				if e, ok := fileEntry(tree, name, rel); ok {
					e.compat32 = true
					out = append(out, e)
				}
				continue
			}
			if len(rest) == 0 || rest[0] != "NATIVE" {
				continue
			}
			if hasPath && len(rest) > 1 && !strings.HasPrefix(rest[1], "MODULE:") {
				dir = path.Join(libDir, rest[1])
			}
			if e, ok := fileEntry(tree, name, path.Join(dir, name)); ok {
				out = append(out, e)
			}
			continue
		}
		if hasPath, ok := symTypes[typ]; ok {
			if len(rest) > 1 && rest[0] == "COMPAT32" {
				rel, rest := path.Base(name), rest[1:]
				if hasPath && len(rest) > 1 {
					rel, rest = strings.TrimPrefix(path.Join(rest[0], rel), "/"), rest[1:]
				}
				if plainName.MatchString(rest[0]) && !strings.HasPrefix(rest[0], "MODULE:") && !strings.Contains(rel, "..") {
					out = append(out, wantEntry{dest: rel, target: rest[0], compat32: true})
				}
				continue
			}
			if len(rest) == 0 || rest[0] != "NATIVE" {
				continue
			}
			rest = rest[1:]
			if hasPath && len(rest) > 1 {
				dir = path.Join(libDir, rest[0])
				rest = rest[1:]
			}
			if len(rest) > 0 && plainName.MatchString(rest[0]) && !strings.HasPrefix(rest[0], "MODULE:") {
				out = append(out, wantEntry{dest: path.Join(dir, name), target: rest[0]})
			}
			continue
		}
		switch typ {
		case "UTILITY_BINARY", "INSTALLER_BINARY":
			if e, ok := fileEntry(tree, name, path.Join("/usr/bin", path.Base(name))); ok {
				out = append(out, e)
			}
		case "UTILITY_BIN_SYMLINK":
			if len(rest) > 0 && plainName.MatchString(rest[0]) && !strings.HasPrefix(rest[0], "MODULE:") {
				out = append(out, wantEntry{dest: path.Join("/usr/bin", path.Base(name)), target: rest[0]})
			}
		case "GLVND_EGL_ICD_JSON":
			// With --no-install-libglvnd: the system libglvnd's directory
			// (files.c check_libglvnd_files).
			if e, ok := fileEntry(tree, name, path.Join("/usr/share/glvnd/egl_vendor.d", path.Base(name))); ok {
				out = append(out, e)
			}
		case "VULKAN_ICD_JSON":
			// /etc/vulkan/<path>/ (files.c set_destinations).
			if len(rest) > 0 && plainName.MatchString(rest[0]) && !strings.HasPrefix(rest[0], "MODULE:") && !strings.Contains(rest[0], "..") {
				if e, ok := fileEntry(tree, name, path.Join("/etc/vulkan", rest[0], path.Base(name))); ok {
					out = append(out, e)
				}
			}
		case "FIRMWARE":
			_, sub, _ := strings.Cut(name, "/")
			if e, ok := fileEntry(tree, name, path.Join("/lib/firmware/nvidia", version, sub)); ok {
				e.firmware = true
				out = append(out, e)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("the driver tree's manifest: %w", err)
	}
	return out, nil
}

func fileEntry(tree, name, dest string) (wantEntry, bool) {
	st, err := os.Stat(filepath.Join(tree, filepath.FromSlash(name)))
	if err != nil || !st.Mode().IsRegular() {
		return wantEntry{}, false
	}
	return wantEntry{dest: dest, size: st.Size()}, true
}

// compat32List are the directories where 32-bit libraries may be installed.
const compat32List = "/usr/lib/i386-linux-gnu /usr/lib32 /usr/lib"

// checkInput renders the entries as checkScript's stdin
// (scripts/check-installed.sh).
func checkInput(want []wantEntry) string {
	var b strings.Builder
	for _, e := range want {
		switch {
		case e.compat32 && e.target != "":
			fmt.Fprintf(&b, "d %s %s\n", e.dest, e.target)
		case e.compat32:
			fmt.Fprintf(&b, "c %s %d\n", e.dest, e.size)
		case e.target != "":
			fmt.Fprintf(&b, "l %s %s\n", e.dest, e.target)
		default:
			fmt.Fprintf(&b, "f %s %d\n", e.dest, e.size)
		}
	}
	return b.String()
}

// missingOf sorts checkScript's output into missing libraries and
// utilities, and missing firmware; only paths nvidiaprep asked about count.
func missingOf(want []wantEntry, out string) (files, firmware []string) {
	asked := map[string]bool{}
	for _, e := range want {
		asked[e.dest] = e.firmware
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		fw, ok := asked[l]
		if !ok || seen[l] {
			continue
		}
		seen[l] = true
		if fw {
			firmware = append(firmware, l)
		} else {
			files = append(files, l)
		}
	}
	return files, firmware
}

// nativeFiles are the entries the CDI spec and the apt registration name:
// the 64-bit libraries, links and programs, at their absolute paths. Not
// firmware (the host's kernel loads it), nor 32-bit libraries, whose
// directory depends on the container (their dest is relative) and which a
// nested container's 64-bit programs do not load.
func nativeFiles(entries []wantEntry) []wantEntry {
	var out []wantEntry
	for _, e := range entries {
		if !e.firmware && !e.compat32 {
			out = append(out, e)
		}
	}
	return out
}
