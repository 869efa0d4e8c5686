package nvflags

import "testing"

func TestKnows(t *testing.T) {
	for _, c := range []struct {
		v, opt string
		want   bool
	}{
		{"535.216.01", "--skip-module-load", false},
		{"550.40.07", "--skip-module-load", true},
		{"550.40", "--skip-module-load", false}, // 550.40 < 550.40.07
		{"550.54.14", "--skip-module-load", true},
		{"550.163.01", "--kernel-module-type=open", false},
		{"555.42.02", "--kernel-module-type=open", true},
		{"535.216.01", "--allow-installation-with-running-driver", false},
		{"545.23.06", "--allow-installation-with-running-driver", true},
		{"460.91.03", "--no-systemd", false},
		{"465.19.01", "--no-systemd", true},
		{"580.159.04", "--no-systemd", true},
		{"460.91.03", "--no-install-libglvnd", true},
		{"535.216.01", "--skip-module-unload", true},
	} {
		if got := Knows(c.v, c.opt); got != c.want {
			t.Errorf("Knows(%s, %s) = %v, want %v", c.v, c.opt, got, c.want)
		}
	}
}
