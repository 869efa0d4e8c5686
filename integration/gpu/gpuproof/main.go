// Command gpuproof is the helper of integration/gpu/run.sh, the proof of
// nvidiaprep on a machine with a real NVIDIA GPU and driver. It is built on
// the development machine (CGO, for NVML) and carried to that machine, which
// has no Go. Subcommands:
//
//	discover                 what the real driver shows: NVML, /proc, /sys, /dev
//	buildrun -version V -out FILE [-lib FILE]... [-bin FILE]...
//	                         a stand-in NVIDIA .run (integration/standin) that
//	                         ships the given real libraries and binaries
//	standin-host -root DIR -version V
//	                         a stand-in driver tree (procfs, sysfs, /dev) with
//	                         one GPU, for rehearsing run.sh without a GPU
//	bench -n N [-max D] -name NAME -- CMD [ARG]...
//	                         run CMD N times (or until D has passed), print
//	                         min, median, p95 and max wall times
//	wait-record -state DIR -vmid N [-timeout D]
//	                         wait for the provisioning worker's host record of
//	                         CT N to show a finished run, print it
//	idmap-mount -src DIR -dst DIR [-shift N] [-range N]
//	                         an idmapped bind mount, the bed's substitute for
//	                         an unprivileged container's shifted owners
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/record"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: gpuproof discover
       gpuproof buildrun -version V -out FILE [-lib FILE]... [-bin FILE]...
       gpuproof standin-host -root DIR -version V
       gpuproof bench -n N [-max DURATION] -name NAME -- CMD [ARG]...
       gpuproof wait-record -state DIR -vmid N [-timeout DURATION]
       gpuproof idmap-mount -src DIR -dst DIR [-shift N] [-range N]
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "discover":
		err = discover(stdout)
	case "buildrun":
		err = buildRun(args[1:], stdout)
	case "standin-host":
		err = standinHost(args[1:], stdout)
	case "bench":
		err = bench(args[1:], stdout)
	case "wait-record":
		err = waitRecord(args[1:], stdout)
	case "idmap-mount":
		err = idmapMount(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gpuproof: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "gpuproof %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func buildRun(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("buildrun", flag.ContinueOnError)
	version := fs.String("version", "", "driver version, e.g. 580.159.04")
	out := fs.String("out", "", "the .run to write")
	var libs, bins multi
	fs.Var(&libs, "lib", "a real library to ship (name ending in .so.<version>); repeatable")
	fs.Var(&bins, "bin", "a real binary to ship (e.g. nvidia-smi); repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *out == "" {
		return errors.New("-version and -out are required")
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	if err := standin.BuildRun(*out, standin.RunOptions{Version: *version, Libraries: libs, Binaries: bins}); err != nil {
		return err
	}
	took := time.Since(t0)
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes in %v (libraries: %s; binaries: %s; the installer is the stand-in's)\n",
		*out, st.Size(), took.Round(time.Millisecond), names(libs), names(bins))
	fmt.Fprintf(stdout, "runbuild_ms=%d\nrun_bytes=%d\n", took.Milliseconds(), st.Size())
	return nil
}

func names(paths []string) string {
	if len(paths) == 0 {
		return "none given, stand-ins generated"
	}
	n := make([]string, len(paths))
	for i, p := range paths {
		n[i] = filepath.Base(p)
	}
	return strings.Join(n, " ")
}

func standinHost(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("standin-host", flag.ContinueOnError)
	root := fs.String("root", "", "directory of the stand-in host tree")
	version := fs.String("version", "", "driver version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *version == "" {
		return errors.New("-root and -version are required")
	}
	h, err := standin.NewHost(*root)
	if err != nil {
		return err
	}
	uvm, err := standin.FreeMajor("/proc/devices")
	if err != nil {
		return err
	}
	d := standin.Driver{Version: *version, UVMMajor: uvm, GPUs: []standin.GPU{
		{PCIBusID: "0000:01:00.0", UUID: "GPU-00000000-0000-4000-8000-000000009601", Minor: 0},
	}}
	if err := h.LoadDriver(d); err != nil {
		return err
	}
	if err := h.MakeNodes(d); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dev=%s\nproc=%s\nsys=%s\n", h.Dev, h.Proc, h.Sys)
	return nil
}

// bench runs a command repeatedly and reports its wall times. A failing run
// stops the bench with the run's output.
func bench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	n := fs.Int("n", 50, "runs")
	max := fs.Duration("max", 2*time.Minute, "stop after this long even if fewer runs were made")
	name := fs.String("name", "cmd", "name of the figure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 || *n < 1 {
		return errors.New("want -n >= 1 and a command after --")
	}
	var d []time.Duration
	start := time.Now()
	for i := 0; i < *n && (i == 0 || time.Since(start) < *max); i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: run %d: %w\n%s", *name, i+1, err, out)
		}
		d = append(d, took)
	}
	first := d[0]
	slices.Sort(d)
	ms := func(x time.Duration) string { return fmt.Sprintf("%.1f", float64(x.Microseconds())/1000) }
	fmt.Fprintf(stdout, "%s: runs=%d first_ms=%s min_ms=%s median_ms=%s p95_ms=%s max_ms=%s\n",
		*name, len(d), ms(first), ms(d[0]), ms(percentile(d, 50)), ms(percentile(d, 95)), ms(d[len(d)-1]))
	return nil
}

// percentile returns the nearest-rank percentile p of sorted d.
func percentile(d []time.Duration, p int) time.Duration {
	rank := (p*len(d) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return d[rank-1]
}

func waitRecord(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wait-record", flag.ContinueOnError)
	state := fs.String("state", "", "nvidiaprep's state directory ([paths] state)")
	vmid := fs.Int("vmid", 0, "container")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		p, ok, err := record.Load(*state, *vmid)
		if err != nil {
			return err
		}
		if ok && p.Outcome != record.Running {
			b, _ := json.MarshalIndent(p, "", "  ")
			fmt.Fprintf(stdout, "%s\nprovision_ms=%d\n", b, p.Duration.Milliseconds())
			if p.Outcome != record.Installed {
				return fmt.Errorf("CT %d: provisioning %s: %s", *vmid, p.Outcome, p.Error)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CT %d: no finished provisioning record in %s after %v (record present: %v, %+v)", *vmid, record.Path(*state, *vmid), *timeout, ok, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// discover prints what nvidiaprep's own code and NVML read on this host.
func discover(w io.Writer) error {
	v, err := nvdev.LoadedVersion("/sys", "/proc")
	fmt.Fprintf(w, "nvdev.LoadedVersion (/sys/module/nvidia/version, else /proc/driver/nvidia/version): %q err=%v\n", v, err)
	if err == nil {
		fmt.Fprintf(w, "driver_version=%s\n", v)
	}

	nvmlGPUs, nvmlErr := nvmlReport(w)

	proc, perr := nvdev.ProcGPUs{Proc: "/proc"}.GPUs()
	fmt.Fprintf(w, "\nnvdev.ProcGPUs (/proc/driver/nvidia/gpus/*/information, the fallback): err=%v\n", perr)
	for _, g := range proc {
		fmt.Fprintf(w, "  index=%d uuid=%s minor=%d pci=%s\n", g.Index, g.UUID, g.Minor, g.PCIBusID)
	}
	if nvmlErr == nil && perr == nil {
		same := len(proc) == len(nvmlGPUs)
		for i := 0; same && i < len(proc); i++ {
			same = proc[i] == nvmlGPUs[i]
		}
		fmt.Fprintf(w, "NVML and procfs agree on index, UUID, minor and PCI bus id: %v\n", same)
	}

	f, err := os.Open("/proc/devices")
	if err != nil {
		return err
	}
	majors, err := nvdev.ParseDevices(f)
	f.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nnvdev.ParseDevices(/proc/devices), NVIDIA entries:\n")
	var keys []string
	for k := range majors {
		if strings.Contains(k, "nvidia") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-26s major %d\n", k, majors[k])
	}

	fmt.Fprintf(w, "\nnodes in /dev (stat), and whether their major is the live one:\n")
	want := map[string]string{"nvidiactl": "nvidiactl", "nvidia-uvm": "nvidia-uvm", "nvidia-uvm-tools": "nvidia-uvm", "nvidia-modeset": "nvidiactl"}
	for _, g := range proc {
		want[fmt.Sprintf("nvidia%d", g.Minor)] = "nvidia"
	}
	caps, _ := filepath.Glob("/dev/nvidia-caps/*")
	for _, c := range caps {
		want[strings.TrimPrefix(c, "/dev/")] = "nvidia-caps"
	}
	var nodes []string
	for k := range want {
		nodes = append(nodes, k)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		st, err := os.Stat("/dev/" + n)
		if err != nil {
			fmt.Fprintf(w, "  /dev/%-28s absent (%v)\n", n, errors.Unwrap(err))
			continue
		}
		maj, min := devNumbers(st)
		live := majors[want[n]]
		fmt.Fprintf(w, "  /dev/%-28s %d:%d %v live major of %s: %d match=%v\n", n, maj, min, st.Mode(), want[n], live, maj == live)
	}

	fmt.Fprintf(w, "\nMIG capabilities (/proc/driver/nvidia/capabilities):\n")
	access, _ := filepath.Glob("/proc/driver/nvidia/capabilities/*/*")
	more, _ := filepath.Glob("/proc/driver/nvidia/capabilities/gpu*/mig/*")
	access = append(access, more...)
	for _, a := range access {
		st, err := os.Stat(a)
		if err != nil || st.IsDir() {
			continue
		}
		f, err := os.Open(a)
		if err != nil {
			fmt.Fprintf(w, "  %s: %v\n", a, err)
			continue
		}
		minor, mode, err := nvdev.ParseCapAccess(f)
		f.Close()
		fmt.Fprintf(w, "  %s: DeviceFileMinor %d mode %#o err=%v\n", a, minor, mode, err)
	}
	return nil
}
