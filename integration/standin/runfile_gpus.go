package standin

import (
	"encoding/json"
	"strings"
)

// SupportedGPU is one row of a .run's supported-gpus/supported-gpus.json,
// in NVIDIA's form (a "chips" array of devid, name, features and, for a
// card the branch no longer supports, legacybranch "580.xx").
type SupportedGPU struct {
	DevID        string   `json:"devid"`
	SubVendorID  string   `json:"subvendorid,omitempty"`
	SubDevID     string   `json:"subdevid,omitempty"`
	Name         string   `json:"name"`
	Features     []string `json:"features"`
	LegacyBranch string   `json:"legacybranch,omitempty"`
}

// Stand-in GPUs' PCI device ids, as NVIDIA's list has them.
const (
	DevH100     = "0x2330" // Hopper: open or proprietary
	DevGTX1080  = "0x1B80" // Pascal: proprietary only; 590 and later moved it to the 580 legacy branch
	DevRTX5090  = "0x2B85" // Blackwell: open only
	DevTeslaK80 = "0x102D" // Kepler: the 470 legacy branch
)

// StandinSupportedGPUs is the list a stand-in .run of version ships: what
// NVIDIA's list says of these four cards in that branch (590 and later list
// Pascal as legacy 580.xx, NVIDIA's 590 release notes; Kepler has been
// 470.xx since 495).
func StandinSupportedGPUs(version string) []SupportedGPU {
	rows := []SupportedGPU{
		{DevID: DevH100, Name: "NVIDIA H100 80GB HBM3", Features: []string{"kernelopen", "gsp_proprietary_supported"}},
		{DevID: DevRTX5090, Name: "NVIDIA GeForce RTX 5090", Features: []string{"kernelopen"}},
		{DevID: DevTeslaK80, Name: "Tesla K80", Features: []string{}, LegacyBranch: "470.xx"},
	}
	pascal := SupportedGPU{DevID: DevGTX1080, Name: "NVIDIA GeForce GTX 1080", Features: []string{}}
	if major(version) >= 590 {
		pascal.LegacyBranch = "580.xx"
	}
	return append(rows, pascal)
}

func major(version string) int {
	n := 0
	for _, c := range strings.SplitN(version, ".", 2)[0] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func supportedGPUsJSON(o RunOptions) ([]byte, error) {
	rows := o.SupportedGPUs
	if rows == nil {
		rows = StandinSupportedGPUs(o.Version)
	}
	b, err := json.MarshalIndent(struct {
		Chips []SupportedGPU `json:"chips"`
	}{rows}, "", "  ")
	return append(b, '\n'), err
}
