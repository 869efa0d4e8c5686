package pve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// Storage is one storage of storage.cfg.
type Storage struct {
	ID      string
	Type    string   // "dir", "nfs", "lvmthin", ...
	Path    string   // the directory of file-based storages, "" otherwise
	Content []string // "iso", "vztmpl", "snippets", ...
}

// fileTypes are the storage types that keep files in a directory and so can
// hold snippets (PVE::Storage's plugins with a path).
var fileTypes = []string{"dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"}

// defaultStorage is Proxmox's built-in configuration when storage.cfg does
// not exist.
func defaultStorage() []Storage {
	return []Storage{{ID: "local", Type: "dir", Path: "/var/lib/vz", Content: []string{"iso", "vztmpl", "backup"}}}
}

// parseStorage reads storage.cfg: "type: id" lines, each followed by
// indented "key value" lines.
func parseStorage(text []byte) []Storage {
	var out []Storage
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			typ, id, ok := strings.Cut(line, ":")
			if ok {
				out = append(out, Storage{ID: strings.TrimSpace(id), Type: strings.TrimSpace(typ)})
			}
			continue
		}
		if len(out) == 0 {
			continue
		}
		s := &out[len(out)-1]
		key, value, _ := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		switch key {
		case "path":
			s.Path = value
		case "content":
			for _, c := range strings.Split(value, ",") {
				if c = strings.TrimSpace(c); c != "" {
					s.Content = append(s.Content, c)
				}
			}
		}
	}
	// nfs, cifs and glusterfs mount at /mnt/pve/<id> unless path says otherwise.
	for i, s := range out {
		if s.Path == "" && slices.Contains([]string{"nfs", "cifs", "glusterfs", "cephfs"}, s.Type) {
			out[i].Path = "/mnt/pve/" + s.ID
		}
	}
	return out
}

// ReadStorage reads <dir>/storage.cfg; without it, Proxmox's default
// (local, a directory at /var/lib/vz).
func ReadStorage(dir string) ([]Storage, error) {
	text, err := fsutil.ReadRegular(filepath.Join(dir, "storage.cfg"), maxConfig)
	if errors.Is(err, os.ErrNotExist) {
		return defaultStorage(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the storage configuration: %w", err)
	}
	return parseStorage(text), nil
}

// hookscriptPath resolves a hookscript volume id ("local:snippets/name")
// the way Proxmox does before it runs one: a file in the snippets
// directory of a file-based storage. The error says what is wrong.
func hookscriptPath(volid string, storages []Storage) (string, error) {
	id, vol, ok := strings.Cut(volid, ":")
	if !ok || id == "" || vol == "" {
		return "", fmt.Errorf("%q is not a volume id (want <storage>:snippets/<file>)", volid)
	}
	dir, name := path.Split(vol)
	if dir != "snippets/" || name == "" {
		return "", fmt.Errorf("%q is not in a snippets directory (want %s:snippets/%s)", volid, id, path.Base(vol))
	}
	i := slices.IndexFunc(storages, func(s Storage) bool { return s.ID == id })
	if i < 0 {
		return "", fmt.Errorf("%q names storage %q, which storage.cfg does not define", volid, id)
	}
	s := storages[i]
	if !slices.Contains(fileTypes, s.Type) || s.Path == "" {
		return "", fmt.Errorf("%q is on storage %q of type %s, which keeps no files and so no snippets", volid, id, s.Type)
	}
	return filepath.Join(s.Path, "snippets", name), nil
}

// Why a hookscript volume cannot run, as Proxmox says it.
var (
	ErrNoScript      = errors.New("does not exist")
	ErrNotExecutable = errors.New("is not executable")
)

// CheckHookscript finds a hookscript volume's file as Proxmox does before it
// runs one (GuestHelpers::check_hookscript), with storage.cfg below pveDir.
func CheckHookscript(pveDir, volid string) (string, error) {
	storages, err := ReadStorage(pveDir)
	if err != nil {
		return "", err
	}
	return FindHookscript(storages, "", volid)
}

// FindHookscript resolves volid on storages and checks its file below root
// ("" for the host itself): in a snippets directory, a regular file (links
// followed, as Perl's -f does), executable. The error says what is wrong in
// Proxmox's words and matches ErrNoScript or ErrNotExecutable; path is
// returned whenever the volume resolved.
func FindHookscript(storages []Storage, root, volid string) (string, error) {
	p, err := hookscriptPath(volid, storages)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(filepath.Join(root, p))
	if err != nil || !st.Mode().IsRegular() {
		return p, fmt.Errorf("script '%s' %w (%s)", volid, ErrNoScript, p)
	}
	if ok, _ := fsutil.IsExecutable(filepath.Join(root, p)); !ok {
		return p, fmt.Errorf("script '%s' %w (%s)", volid, ErrNotExecutable, p)
	}
	return p, nil
}
