package installstate

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"testing"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/record"
)

// See, post-start's one read, answers what Current, a read of the
// toolkit's config, Registered and ReadSpecState answer one by one, whatever the container
// has: nothing, a current install with the toolkit and nvidiaprep's spec,
// an older install with a user's spec, a half-done install, a spec and a
// record that are directories, the pin.
func TestSeeAnswersAsEachQuestion(t *testing.T) {
	const v = "580.159.04"
	write := func(root, p, text string) {
		os.MkdirAll(filepath.Join(root, path.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		plant func(root string)
	}{
		{"nothing", func(string) {}},
		{"current, toolkit, our spec", func(root string) {
			write(root, record.NVIDIALog, "1.0-1 ("+v+")\n")
			write(root, ToolkitConfig, "[nvidia-container-cli]\n")
			write(root, SpecPath, specHeaderPrefix+"abc\ncdiVersion: 0.6.0\n")
		}},
		{"older, user's spec", func(root string) {
			write(root, record.NVIDIALog, "1.0-1 (570.1)\n")
			write(root, SpecPath, "cdiVersion: 0.6.0\n")
		}},
		{"half done, pin", func(root string) {
			write(root, record.NVIDIALog, "1.0-1 ("+v+")\n")
			write(root, Marker, "")
			write(root, aptreg.PinPath, "Package: x\n")
		}},
		{"directories", func(root string) {
			os.MkdirAll(filepath.Join(root, record.NVIDIALog), 0o755)
			os.MkdirAll(filepath.Join(root, SpecPath), 0o755)
			os.MkdirAll(filepath.Join(root, aptreg.PinPath), 0o755)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, pid := chrooted(t)
			c.plant(root)
			r := openRoot(t, pid)
			var want Seen
			want.Current, want.Why, _ = Current(r, v)
			_, err := r.ReadFile(ToolkitConfig, 1)
			want.Toolkit = err == nil
			want.Spec, want.SpecErr = ReadSpecState(r)
			if got := See(r, v, true); !reflect.DeepEqual(got, want) {
				t.Errorf("installs: See = %+v, want %+v", got, want)
			}
			want = Seen{}
			if reg, err := Registered(r); err == nil {
				want.Registered = reg
			}
			want.Spec, want.SpecErr = ReadSpecState(r)
			if got := See(r, v, false); !reflect.DeepEqual(got, want) {
				t.Errorf("without installs: See = %+v, want %+v", got, want)
			}
		})
	}
}
