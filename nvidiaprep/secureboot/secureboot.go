// Package secureboot knows what Secure Boot asks of the NVIDIA module: the
// firmware's Secure Boot state (its EFI variable), the one signing key for
// every path (DKMS's /var/lib/dkms/mok.key and mok.pub, which DKMS signs
// its builds with and nvidia-installer gets through --module-signing-*),
// the keys enrolled in shim's MOK list, the signer of a built module, and
// the kernel's refusal of a module for its signature.
//
// It reads the EFI variables below an injectable sysfs ([paths] sys), so
// tests use stand-in variable trees (this project's machines have no EFI).
package secureboot

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
)

// The signing key, where DKMS keeps it (dkms framework.conf's
// mok_signing_key and mok_certificate defaults): one key for DKMS's builds
// and for nvidia-installer's.
const (
	KeyPath  = "/var/lib/dkms/mok.key"
	CertPath = "/var/lib/dkms/mok.pub"
)

// EFI variables (UEFI spec: EFI_GLOBAL_VARIABLE; shim's GUID for its MOK
// variables). A file in efivarfs is the variable's 4-byte attributes, then
// its data.
const (
	globalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	shimGUID   = "605dab50-e046-4300-abb6-3dd810dd8b23"
	// secureBootVar and mokListRTVar are the variables' file names in
	// <sys>/firmware/efi/efivars.
	secureBootVar = "SecureBoot-" + globalGUID
	mokListRTVar  = "MokListRT-" + shimGUID
)

func efivars(sys string) string { return filepath.Join(sys, "firmware", "efi", "efivars") }

// Enabled tells whether the firmware enforces Secure Boot: its SecureBoot
// variable's data byte is 1. A node without EFI (no <sys>/firmware/efi)
// has none.
func Enabled(sys string) (bool, error) {
	if _, err := os.Stat(filepath.Join(sys, "firmware", "efi")); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	b, err := fsutil.ReadRegular(filepath.Join(efivars(sys), secureBootVar), 64)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the Secure Boot state: %w", err)
	}
	if len(b) != 5 {
		return false, fmt.Errorf("reading the Secure Boot state: %s holds %d bytes, not 5", secureBootVar, len(b))
	}
	return b[4] == 1, nil
}

// Key is the signing key pair on the node.
type Key struct {
	KeyPath, CertPath string // as the node sees them (KeyPath, CertPath)
	Cert              *x509.Certificate
}

// EnsureKey returns DKMS's signing key below root, making it when it is
// missing as DKMS does (an RSA key, a self-signed certificate in DER;
// dkms's own do_sign makes it with openssl on its first signed build),
// so that the installer and DKMS sign with the same key from the first
// build on. created tells whether it was made now.
func EnsureKey(root string) (k Key, created bool, err error) {
	k = Key{KeyPath: KeyPath, CertPath: CertPath}
	keyFile, certFile := filepath.Join(root, KeyPath), filepath.Join(root, CertPath)
	_, kerr := os.Stat(keyFile)
	der, cerr := fsutil.ReadRegular(certFile, 1<<20)
	switch {
	case kerr == nil && cerr == nil:
		k.Cert, err = x509.ParseCertificate(der)
		if err != nil {
			return k, false, fmt.Errorf("reading the module signing certificate %s: %w", CertPath, err)
		}
		return k, false, nil
	case kerr == nil || cerr == nil:
		return k, false, fmt.Errorf("the module signing key is half there (%s: %v, %s: %v): move the one left away (a new pair is then made, and must be enrolled again) or put its partner back", KeyPath, kerr, CertPath, cerr)
	case !errors.Is(kerr, os.ErrNotExist) || !errors.Is(cerr, os.ErrNotExist):
		return k, false, fmt.Errorf("checking the module signing key: %v; %v", kerr, cerr)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return k, false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return k, false, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "DKMS module signing key (nvidiaprep, " + host + ")"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(100, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return k, false, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o755); err != nil {
		return k, false, err
	}
	if err := fsutil.WriteFileDurable(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return k, false, fmt.Errorf("writing the module signing key: %w", err)
	}
	if err := fsutil.WriteFileDurable(certFile, der, 0o644); err != nil {
		return k, false, fmt.Errorf("writing the module signing certificate: %w", err)
	}
	k.Cert, err = x509.ParseCertificate(der)
	return k, true, err
}

// x509GUID is EFI_CERT_X509_GUID as it lies in memory (the first three
// fields little-endian).
var x509GUID = []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}

// Enrolled returns the X.509 certificates shim's MOK list holds
// (MokListRT: efivarfs, or the kernel's mok-variables copy of 5.18 and
// later); an empty list when the node has none.
func Enrolled(sys string) ([]*x509.Certificate, error) {
	b, err := fsutil.ReadRegular(filepath.Join(sys, "firmware", "efi", "mok-variables", "MokListRT"), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		b, err = fsutil.ReadRegular(filepath.Join(efivars(sys), mokListRTVar), 1<<20)
		if err == nil && len(b) >= 4 {
			b = b[4:] // the attributes
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the enrolled keys (MokListRT): %w", err)
	}
	return parseSignatureLists(b)
}

// parseSignatureLists reads EFI_SIGNATURE_LISTs (UEFI spec 32.4.1) and
// returns their X.509 certificates.
func parseSignatureLists(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(b) > 0 {
		if len(b) < 28 {
			return out, fmt.Errorf("MokListRT: a signature list cut short")
		}
		typ := b[:16]
		listSize := binary.LittleEndian.Uint32(b[16:])
		headerSize := binary.LittleEndian.Uint32(b[20:])
		sigSize := binary.LittleEndian.Uint32(b[24:])
		if listSize < 28+headerSize || int(listSize) > len(b) || sigSize < 16 {
			return out, fmt.Errorf("MokListRT: a signature list of %d bytes does not fit", listSize)
		}
		body := b[28+headerSize : listSize]
		if bytes.Equal(typ, x509GUID) {
			for len(body) >= int(sigSize) {
				c, err := x509.ParseCertificate(body[16:sigSize])
				if err == nil {
					out = append(out, c)
				}
				body = body[sigSize:]
			}
		}
		b = b[listSize:]
	}
	return out, nil
}

// IsEnrolled tells whether cert is one of the enrolled ones.
func IsEnrolled(cert *x509.Certificate, enrolled []*x509.Certificate) bool {
	for _, c := range enrolled {
		if c.Equal(cert) {
			return true
		}
	}
	return false
}

// SigKey writes a certificate's serial number as modinfo's sig_key does
// ("5A:0B:..."), to compare a module's signer with it.
func SigKey(c *x509.Certificate) string {
	h := fmt.Sprintf("%X", c.SerialNumber.Bytes())
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// ModuleSigKey asks modinfo for the serial number of the key a module file
// was signed with; "" for an unsigned module.
func ModuleSigKey(ctx context.Context, run hostcmd.Runner, module string) (string, error) {
	res, err := run.Run(ctx, hostcmd.Command{Name: "modinfo", Args: []string{"-F", "sig_key", module}})
	if err != nil {
		return "", err
	}
	return strings.ToUpper(strings.TrimSpace(res.Stdout)), nil
}

// ImportCommand is how an admin asks shim to enroll the key at the next
// boot (mokutil asks for a one-time password, which the MOK manager asks
// for again on the console at that boot: Enroll MOK, Continue, Yes).
const ImportCommand = "mokutil --import " + CertPath

// EnrollFix is the whole fix for a key that is not enrolled.
const EnrollFix = "`" + ImportCommand + "` (choose a one-time password), then reboot at the console: the MOK manager (blue screen) asks to Enroll MOK → Continue → Yes → the password → Reboot; `mokutil --test-key " + CertPath + "` then says it is enrolled"

// Refusal returns the kernel log's last line in which the kernel refused a
// module for its signature (kernel/module/signing.c: "Loading of unsigned
// module is rejected", "Loading of module with unavailable key is
// rejected"; with lockdown: "unsigned module loading is restricted"; and
// modprobe's own "Key was rejected by service", EKEYREJECTED), or "".
func Refusal(kernelLog string) string {
	last := ""
	for _, l := range strings.Split(kernelLog, "\n") {
		if strings.Contains(l, "Loading of ") && strings.Contains(l, " is rejected") ||
			strings.Contains(l, "module loading is restricted") || strings.Contains(l, "Key was rejected by service") {
			last = strings.TrimSpace(l)
		}
	}
	return last
}

// DKMSConf is nvidiaprep's DKMS configuration for Secure Boot: Debian's
// dkms 3.0 signs nothing unless sign_file is set (dkms prepare_signing),
// so with Secure Boot on nvidiaprep sets it, with DKMS's own key, and every
// module DKMS builds for a new kernel is signed with the key the
// installer's build used. $kernelver is DKMS's own variable (framework.conf).
const DKMSConf = "/etc/dkms/framework.conf.d/nvidiaprep-signing.conf"

const dkmsConfText = `# Written by nvidiaprep while Secure Boot is on: DKMS signs every module it
# builds with the key that nvidiaprep's NVIDIA installs are signed with
# (` + KeyPath + `, ` + CertPath + `). Enroll it once: ` + ImportCommand + `
sign_file="/lib/modules/${kernelver}/build/scripts/sign-file"
mok_signing_key="` + KeyPath + `"
mok_certificate="` + CertPath + `"
`

// EnsureDKMSSigning writes DKMSConf below root unless it is there as
// written; changed tells whether it wrote it.
func EnsureDKMSSigning(root string) (changed bool, err error) {
	path := filepath.Join(root, DKMSConf)
	if b, err := fsutil.ReadRegular(path, 1<<16); err == nil && string(b) == dkmsConfText {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("configuring DKMS's module signing: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(dkmsConfText), 0o644); err != nil {
		return false, fmt.Errorf("configuring DKMS's module signing: %w", err)
	}
	return true, nil
}

// ReadKey reads the signing key's certificate below root without making
// one; an error when there is none.
func ReadKey(root string) (Key, error) {
	k := Key{KeyPath: KeyPath, CertPath: CertPath}
	der, err := fsutil.ReadRegular(filepath.Join(root, CertPath), 1<<20)
	if err != nil {
		return k, fmt.Errorf("reading the module signing certificate: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, KeyPath)); err != nil {
		return k, fmt.Errorf("the module signing key: %w", err)
	}
	k.Cert, err = x509.ParseCertificate(der)
	if err != nil {
		return k, fmt.Errorf("reading the module signing certificate %s: %w", CertPath, err)
	}
	return k, nil
}
