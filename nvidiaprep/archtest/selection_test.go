package archtest

import (
	"slices"
	"strings"
	"testing"
)

// The configuration knows the selectors' syntax (gpusel) and what a driver
// version looks like (nvversion), never device discovery: config imports
// neither nvdev nor nvmlgpu, and gpusel and nvversion import no package of
// the project, so that every layer can share them.
func TestConfigImportsNoDeviceDiscovery(t *testing.T) {
	pkgs := graph(t)
	const cfg = "nvidiaprep/nvidiaprep/config"
	p, ok := pkgs[cfg]
	if !ok {
		t.Fatalf("go list did not list %s", cfg)
	}
	for _, d := range []string{"nvidiaprep/nvidiaprep/nvdev", "nvidiaprep/nvidiaprep/nvmlgpu"} {
		if slices.Contains(p.Deps, d) {
			t.Errorf("config imports device discovery: %s; selectors are gpusel's, versions nvversion's", chain(pkgs, cfg, d))
		}
	}
	for _, leaf := range []string{"nvidiaprep/nvidiaprep/gpusel", "nvidiaprep/nvidiaprep/nvversion"} {
		for _, d := range pkgs[leaf].Deps {
			if strings.HasPrefix(d, "nvidiaprep/") {
				t.Errorf("%s imports %s: it is shared by every layer, so it imports none", leaf, chain(pkgs, leaf, d))
			}
		}
	}
}
