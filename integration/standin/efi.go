package standin

import (
	"encoding/binary"
	"os"
	"path/filepath"
)

// Stand-in EFI variables, as efivarfs shows them below
// <sys>/firmware/efi/efivars: a file per variable named <Name>-<GUID>,
// holding the variable's 4-byte attributes (little-endian) and its data.
// This project's machines boot without EFI, so tests of Secure Boot use
// these trees.
const (
	efiGlobal     = "8be4df61-93ca-11d2-aa0d-00e098032b8c" // EFI_GLOBAL_VARIABLE
	efiShim       = "605dab50-e046-4300-abb6-3dd810dd8b23" // shim's MOK variables
	attrBSRT      = 0x6                                    // boot service, runtime (MokListRT is a volatile mirror)
	eslHeaderSize = 28
)

// certX509GUID is EFI_CERT_X509_GUID (a5c059a1-94e4-4aa7-87b5-ab155c2bf072)
// as it lies in memory.
var certX509GUID = []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}

func (h *Host) efivar(name string, attrs uint32, data []byte) error {
	dir := filepath.Join(h.Sys, "firmware", "efi", "efivars")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b := binary.LittleEndian.AppendUint32(nil, attrs)
	return os.WriteFile(filepath.Join(dir, name), append(b, data...), 0o644)
}

// SetSecureBoot writes the firmware's SecureBoot variable (1 on, 0 off),
// which also makes the tree an EFI boot.
func (h *Host) SetSecureBoot(on bool) error {
	v := byte(0)
	if on {
		v = 1
	}
	return h.efivar("SecureBoot-"+efiGlobal, attrBSRT, []byte{v})
}

// EnrollMOK writes shim's MokListRT with the given DER certificates, each
// in an EFI_SIGNATURE_LIST of its own, as shim mirrors the MOK list for
// the running system after the MOK manager enrolled them.
func (h *Host) EnrollMOK(certs ...[]byte) error {
	var data []byte
	for _, c := range certs {
		sigSize := 16 + len(c) // the owner's GUID, then the certificate
		data = append(data, certX509GUID...)
		data = binary.LittleEndian.AppendUint32(data, uint32(eslHeaderSize+sigSize))
		data = binary.LittleEndian.AppendUint32(data, 0)
		data = binary.LittleEndian.AppendUint32(data, uint32(sigSize))
		data = append(data, make([]byte, 16)...) // SignatureOwner
		data = append(data, c...)
	}
	return h.efivar("MokListRT-"+efiShim, attrBSRT, data)
}
