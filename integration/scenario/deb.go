package scenario

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildDeb builds a small binary package with dpkg-deb: name, version and
// files (path inside the package → content). It stands for the
// distribution's NVIDIA packages in tests: named like Debian's and Ubuntu's,
// with the files that fight a .run install.
func BuildDeb(dir, name, version string, files map[string]string) (string, error) {
	root := filepath.Join(dir, name+"-pkg")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		return "", err
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: nvidiaprep tests <tests@invalid>\nDescription: stand-in for the distribution's %s\n", name, version, name)
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(control), 0o644); err != nil {
		return "", err
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, name+".deb")
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb %s: %w\n%s", name, err, b)
	}
	return out, nil
}
