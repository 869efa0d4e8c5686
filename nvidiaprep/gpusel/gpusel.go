// Package gpusel owns GPU selection: the one type, Selection, that carries
// a container's gpus from the configuration file (config), enable's --gpus
// (nodeconf) and the reports through pre-start to device discovery
// (nvdev.Select, nvdev.SelectMIGs), and the selectors' syntax. It knows no
// GPU: matching selectors against the node's GPUs is nvdev's.
package gpusel

import (
	"fmt"
	"strconv"
	"strings"
)

// Selection is the set of GPUs a container gets. The zero value is no GPU.
type Selection struct {
	// All is true when the container gets every GPU of the node (gpus
	// absent, or gpus = ["all"]). Selectors is then nil.
	All bool
	// Selectors, when All is false, are the GPUs as written: each a GPU
	// index ("0"), a UUID ("GPU-…", "MIG-…"), a PCI bus id ("0000:01:00.0")
	// or a MIG device ("<gpu>:<gi>:<ci>"). Empty for none.
	Selectors []string
}

// Every is the selection of every GPU of the node.
func Every() Selection { return Selection{All: true} }

// Of is the selection of the GPUs selectors name; Of() is none.
func Of(selectors ...string) Selection {
	return Selection{Selectors: append([]string{}, selectors...)}
}

// None reports whether the selection has no GPU at all.
func (s Selection) None() bool { return !s.All && len(s.Selectors) == 0 }

// HasMIG reports whether the selection names a MIG device.
func (s Selection) HasMIG() bool {
	for _, sel := range s.Selectors {
		if IsMIG(sel) {
			return true
		}
	}
	return false
}

// String writes the selection for people: "all", "none" or the selectors
// joined by commas (as enable's --gpus takes them).
func (s Selection) String() string {
	switch {
	case s.All:
		return "all"
	case len(s.Selectors) == 0:
		return "none"
	}
	return strings.Join(s.Selectors, ",")
}

// List is the selection as the gpus array holds it: ["all"], [] or the
// selectors.
func (s Selection) List() []string {
	if s.All {
		return []string{"all"}
	}
	return append([]string{}, s.Selectors...)
}

// Parse checks a gpus array: "all" alone, or valid selectors.
func Parse(values []string) (Selection, error) {
	sel := Of()
	for _, v := range values {
		if v == "all" {
			if len(values) != 1 {
				return Selection{}, fmt.Errorf(`"all" must be the only selector: use ["all"] or a list of GPUs`)
			}
			return Every(), nil
		}
		if !Valid(v) {
			return Selection{}, fmt.Errorf(`invalid GPU selector %q: want a GPU index ("0"), a UUID ("GPU-…" or "MIG-…"), `+
				`a PCI bus id ("0000:01:00.0" or "01:00.0"), a MIG device as <gpu>:<gi>:<ci> ("0:1:0") or "all"`, v)
		}
		sel.Selectors = append(sel.Selectors, v)
	}
	return sel, nil
}

// ParseFlag reads enable's --gpus value: comma-separated selectors, "all",
// or "none" (or "") for no GPU. The selectors are checked where the edited
// file is loaded (Parse).
func ParseFlag(s string) Selection {
	switch strings.TrimSpace(s) {
	case "all":
		return Every()
	case "", "none":
		return Of()
	}
	sel := Of()
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			sel.Selectors = append(sel.Selectors, p)
		}
	}
	return sel
}

// migTriple tells the "<gpu>:<gi>:<ci>" selector (three runs of digits),
// matched by hand: the hook links no regexp, whose package initialisation
// every start would pay.
func migTriple(s string) bool {
	f := strings.Split(s, ":")
	return len(f) == 3 && digits(f[0]) && digits(f[1]) && digits(f[2])
}

// digits tells a non-empty run of ASCII digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// IsMIG tells a MIG device's selector ("MIG-<uuid>", "<gpu>:<gi>:<ci>",
// the old "MIG-GPU-<uuid>/<gi>/<ci>") from a whole GPU's.
func IsMIG(s string) bool {
	return strings.HasPrefix(s, "MIG-") || migTriple(s)
}

// Valid reports whether s is a GPU index, a GPU or MIG UUID (either MIG
// form), a PCI bus id or a MIG device as <gpu>:<gi>:<ci>.
func Valid(s string) bool {
	switch {
	case strings.HasPrefix(s, "GPU-"):
		return isUUID(s[len("GPU-"):])
	case strings.HasPrefix(s, "MIG-GPU-"):
		// The old MIG form: MIG-GPU-<uuid>/<gpu instance>/<compute instance>.
		parts := strings.Split(s[len("MIG-GPU-"):], "/")
		return len(parts) == 3 && isUUID(parts[0]) && isDecimal(parts[1]) && isDecimal(parts[2])
	case strings.HasPrefix(s, "MIG-"):
		return isUUID(s[len("MIG-"):])
	case strings.Count(s, ":") == 2 && !strings.Contains(s, "."):
		// A MIG device as <gpu>:<gi>:<ci>.
		parts := strings.Split(s, ":")
		return isDecimal(parts[0]) && isDecimal(parts[1]) && isDecimal(parts[2])
	case strings.Contains(s, ":"):
		return isPCIBusID(s)
	}
	return isDecimal(s)
}

// isDecimal reports whether s is a non-negative decimal integer without
// leading zeros.
func isDecimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil && s[0] != '+' && s[0] != '-'
}

// isUUID reports whether s has the form 8-4-4-4-12 hexadecimal digits.
func isUUID(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if len(parts[i]) != n || !isHex(parts[i]) {
			return false
		}
	}
	return true
}

// isPCIBusID reports whether s is [[dddd]dddd:]bb:dd.f in hexadecimal.
func isPCIBusID(s string) bool {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 3 && (len(parts[0]) == 4 || len(parts[0]) == 8) && isHex(parts[0]):
		parts = parts[1:]
	case len(parts) != 2:
		return false
	}
	dev, fn, ok := strings.Cut(parts[1], ".")
	if !ok || len(parts[0]) != 2 || !isHex(parts[0]) || len(dev) != 2 || !isHex(dev) || len(fn) != 1 {
		return false
	}
	d, _ := strconv.ParseUint(dev, 16, 8)
	return d <= 0x1f && fn[0] >= '0' && fn[0] <= '7'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}
