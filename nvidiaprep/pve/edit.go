package pve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/fsutil"
)

// ConfigLockTimeout is how long EditCT waits for Proxmox's config lock:
// pct waits 10 seconds for it (PVE::Tools::lock_file_full's default).
const ConfigLockTimeout = 10 * time.Second

// ConfigLock is Proxmox's lock on container vmid's config below root ("/"
// on a node): PVE::LXC::Config's config_file_lock, which pct, the API and
// vzdump take with flock(2) around every change of the config.
func ConfigLock(root string, vmid int) string {
	return filepath.Join(root, "run/lock/lxc", "pve-config-"+strconv.Itoa(vmid)+".lock")
}

// errChanged means a container's config changed between the moment its
// lines were chosen and the edit: nothing was written.
var errChanged = errors.New("the config changed meanwhile")

// RemoveLines removes lines (1-based numbers, of the config's text as
// read before) from container vmid's config below dir, under Proxmox's
// config lock below root, waiting for it until ctx ends (give it a
// deadline: ConfigLockTimeout is pct's). Every
// other line stays byte for byte; the file is replaced atomically. Proxmox
// itself has no command for raw lxc.* lines (pct set cannot remove them),
// which is why this package writes below /etc/pve here, as pct does, under
// the same lock. before is the text the line numbers refer to: a config
// that no longer holds exactly that text is left alone (errChanged).
func RemoveLines(ctx context.Context, dir, root string, vmid int, before []byte, lines []int) error {
	lock, err := filelock.Wait(ctx, ConfigLock(root, vmid))
	if err != nil {
		return fmt.Errorf("taking Proxmox's config lock (is a pct command or a backup running on it?): %w", err)
	}
	defer lock.Unlock()
	path := CTPath(dir, vmid)
	text, err := fsutil.ReadRegular(path, maxConfig)
	if err != nil {
		return err
	}
	if !bytes.Equal(text, before) {
		return fmt.Errorf("%s: %w; run the command again", path, errChanged)
	}
	if err := fsutil.WriteFileAtomic(path, withoutLines(text, lines), 0o640); err != nil {
		return err
	}
	return nil
}

// withoutLines returns text without the lines numbered in lines (1-based);
// every other byte stays, line endings included.
func withoutLines(text []byte, lines []int) []byte {
	drop := map[int]bool{}
	for _, n := range lines {
		drop[n] = true
	}
	var out bytes.Buffer
	out.Grow(len(text))
	for n := 1; len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line = text[:i+1]
		}
		text = text[len(line):]
		if !drop[n] {
			out.Write(line)
		}
	}
	return out.Bytes()
}
