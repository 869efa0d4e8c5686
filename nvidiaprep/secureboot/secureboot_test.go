package secureboot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/hostcmd"
)

// The stand-in EFI variable trees (this machine boots without EFI).
func TestEnabledFromTheEFIVariable(t *testing.T) {
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if on, err := Enabled(h.Sys); on || err != nil {
		t.Errorf("no EFI: %v %v", on, err)
	}
	for _, want := range []bool{true, false} {
		if err := h.SetSecureBoot(want); err != nil {
			t.Fatal(err)
		}
		if on, err := Enabled(h.Sys); on != want || err != nil {
			t.Errorf("SecureBoot=%v: %v %v", want, on, err)
		}
	}
	os.WriteFile(filepath.Join(h.Sys, "firmware/efi/efivars", secureBootVar), []byte{7, 0, 0}, 0o644)
	if _, err := Enabled(h.Sys); err == nil {
		t.Error("a cut variable is no error")
	}
}

func TestOneKeyMadeOnceAndEnrolled(t *testing.T) {
	root := t.TempDir()
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, created, err := EnsureKey(root)
	if err != nil || !created || k.Cert == nil {
		t.Fatalf("EnsureKey: %v %v", created, err)
	}
	st, err := os.Stat(filepath.Join(root, KeyPath))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st, err)
	}
	again, created, err := EnsureKey(root)
	if err != nil || created || !again.Cert.Equal(k.Cert) {
		t.Errorf("a second EnsureKey made another key: %v %v", created, err)
	}
	if _, err := ReadKey(root); err != nil {
		t.Error(err)
	}
	enrolled, err := Enrolled(h.Sys)
	if err != nil || len(enrolled) != 0 || IsEnrolled(k.Cert, enrolled) {
		t.Errorf("nothing enrolled: %v %v", enrolled, err)
	}
	other, _, err := EnsureKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.EnrollMOK(other.Cert.Raw, k.Cert.Raw); err != nil {
		t.Fatal(err)
	}
	enrolled, err = Enrolled(h.Sys)
	if err != nil || len(enrolled) != 2 || !IsEnrolled(k.Cert, enrolled) {
		t.Errorf("after enrolling: %d %v", len(enrolled), err)
	}
	// Half a key pair is named, not replaced.
	os.Remove(filepath.Join(root, CertPath))
	if _, _, err := EnsureKey(root); err == nil || !strings.Contains(err.Error(), "half there") {
		t.Errorf("half a pair: %v", err)
	}
}

type modinfo string

func (m modinfo) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	return hostcmd.Result{Stdout: string(m)}, nil
}

func TestModuleSignerAgainstTheKey(t *testing.T) {
	k, _, err := EnsureKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// modinfo prints sig_key as colon-separated upper-case hex.
	sig, err := ModuleSigKey(context.Background(), modinfo(strings.ToLower(SigKey(k.Cert))+"\n"), "/lib/modules/x/nvidia.ko")
	if err != nil || sig != SigKey(k.Cert) || !strings.Contains(sig, ":") {
		t.Errorf("%q %v, want %q", sig, err, SigKey(k.Cert))
	}
}

func TestRefusalInTheKernelLog(t *testing.T) {
	for log, want := range map[string]bool{
		"nvidia: loading out-of-tree module taints kernel.\nLoading of unsigned module is rejected\n":         true,
		"Loading of module with unavailable key is rejected":                                                  true,
		"Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7":                true,
		"nvidia: module verification failed: signature and/or required key missing - tainting kernel\nNVRM: ": false,
	} {
		if got := Refusal(log) != ""; got != want {
			t.Errorf("%q: %v, want %v", log, got, want)
		}
	}
}

func TestDKMSSigningConf(t *testing.T) {
	root := t.TempDir()
	for i, want := range []bool{true, false} {
		changed, err := EnsureDKMSSigning(root)
		if err != nil || changed != want {
			t.Errorf("run %d: %v %v", i, changed, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(root, DKMSConf))
	for _, w := range []string{`sign_file="/lib/modules/${kernelver}/build/scripts/sign-file"`, `mok_signing_key="/var/lib/dkms/mok.key"`, `mok_certificate="/var/lib/dkms/mok.pub"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("lacks %s:\n%s", w, b)
		}
	}
}
