package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctinit"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/installstate"
	"nvidiaprep/nvidiaprep/launch"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// postStart returns at once when the container's user-space libraries match
// the loaded driver and its CDI spec is what this start gave it (or, given
// no GPU, it has no spec of nvidiaprep's), and otherwise starts the
// provisioning worker detached: Proxmox waits for this phase, and so does
// every later guest at boot.
func postStart(cfg config.Config, vmid int, log zerolog.Logger) int {
	ct := cfg.Container(vmid)
	installs := ct.Install && !ct.GPUs.None()
	version, err := nvdev.LoadedVersion(cfg.Paths.Sys, cfg.Paths.Proc)
	if installs && err != nil {
		return 0 // pre-start has said what is missing
	}
	var st state
	done := make(chan state, 1)
	go func() { done <- look(cfg.Paths.LXCConfig(vmid), vmid, version, installs) }()
	select {
	case st = <-done:
	case <-time.After(lookTimeout):
		log.Error().Msg(ctmsg.Sprintf(vmid, "the container did not answer within %v (its file system hangs); nothing is provisioned now. Once it answers, run `nvidiaprep provision %d`, or restart it", lookTimeout, vmid))
		return 1
	}
	if st.err != nil && !installs {
		// Only a left-over spec was looked for: not worth a failed phase.
		log.Warn().Err(st.err).Msg(ctmsg.Text(vmid, st.err) + "; whether it has a CDI spec of nvidiaprep's to remove is checked at its next start")
		return 0
	}
	if st.err != nil {
		log.Error().Err(st.err).Msg(ctmsg.Text(vmid, st.err) + fmt.Sprintf("; nothing is provisioned now: once that is fixed, run `nvidiaprep provision %d`, or restart it", vmid))
		return 1
	}
	if !st.running {
		if installs {
			log.Warn().Msg(ctmsg.Name(vmid) + " is not running after its start; nothing to provision")
		}
		return 0
	}
	// The CDI spec the container should have: "" for none (a spec of
	// nvidiaprep's left from when it had a GPU is removed).
	wantSpec, _, specErr := installstate.SpecWantedIn(cfg, vmid, version, st.lxcConfig)
	if specErr != nil {
		log.Warn().Err(specErr).Msg(ctmsg.Text(vmid, specErr) + "; its CDI spec is checked at its next start")
	}
	// What cannot be told is not acted on.
	specOK := specErr != nil || st.specErr != nil || st.spec.UpToDate(wantSpec)
	if st.specErr != nil {
		log.Warn().Err(st.specErr).Msg(ctmsg.Text(vmid, st.specErr) + "; its CDI spec is checked at its next start")
	}
	if !installs && specOK && !st.registered {
		return 0
	}
	if st.current {
		if settled, err := installstate.SettleRecord(cfg.Paths.State, vmid, version); err != nil {
			log.Warn().Err(err).Msg(ctmsg.Text(vmid, err))
		} else if settled {
			log.Info().Msg(ctmsg.Sprintf(vmid, "its last provisioning worker stopped before recording its outcome; the libraries %s are complete, and the record now says so", version))
		}
		if specOK && !st.toolkit {
			log.Debug().Msg(ctmsg.Sprintf(vmid, "NVIDIA user-space libraries %s and its CDI spec are current", version))
			return 0
		}
		st.why = "its CDI spec (" + installstate.SpecPath + ") is missing or out of date"
		if specOK {
			st.why = "it has NVIDIA's container toolkit, whose runtime needs /dev/char links in the container's new /dev"
		}
	}
	if !installs {
		st.why = "it is given no GPU or no install, and has nvidiaprep's CDI spec or apt registration"
	}
	worker, err := workerPath()
	if err != nil {
		log.Error().Err(err).Msg(ctmsg.Text(vmid, err))
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	how, err := launch.Start(ctx, launch.Job{
		VMID:   vmid,
		Argv:   []string{worker, "provision", strconv.Itoa(vmid)},
		Env:    passEnv(),
		LogDir: filepath.Join(cfg.Paths.State, "log"),
	})
	if err != nil {
		log.Error().Err(err).Msg(ctmsg.Text(vmid, err))
		return 1
	}
	if st.current || !installs {
		log.Info().Msg(ctmsg.Sprintf(vmid, "%s; the worker updates it in the background (%s)", st.why, how))
		return 0
	}
	log.Info().Msg(ctmsg.Sprintf(vmid, "%s; installing NVIDIA user-space libraries %s in the background (%s)", st.why, version, how))
	return 0
}

// lookTimeout bounds post-start's look at the container: its init is found
// in its cgroup, and files are read from its root.
const lookTimeout = 20 * time.Second

// state is what post-start sees of a container.
type state struct {
	running    bool
	lxcConfig  []byte // its generated LXC config, when running
	current    bool
	why        string // why it is not current
	spec       installstate.SpecState
	specErr    error
	registered bool // nvidiaprep's apt pin is there (looked at only without install)
	toolkit    bool // NVIDIA's container toolkit is installed
	err        error
}

// look finds the container's init without liblxc (ctinit: its cgroup, named
// by its LXC config) and reads its install record (when it installs) and
// its CDI spec from its root, in one isolated child (installstate.See).
func look(lxcConfig string, vmid int, version string, installs bool) state {
	config, err := fsutil.ReadRegular(lxcConfig, lxcconf.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return state{running: false} // LXC has not started it: Proxmox writes this file first
	}
	if err != nil {
		return state{err: fmt.Errorf("reading its LXC config: %w", err)}
	}
	dir, err := ctinit.CgroupDir(config, vmid)
	if err != nil {
		return state{err: fmt.Errorf("its cgroup, from %s: %w", lxcConfig, err)}
	}
	host, err := ctinit.Real()
	if err != nil {
		return state{err: err}
	}
	root, err := host.Root(dir)
	if errors.Is(err, ctinit.ErrStopped) {
		return state{running: false}
	}
	if err != nil {
		return state{err: fmt.Errorf("opening its root: %w", err)}
	}
	defer root.Close()
	seen := installstate.See(root, version, installs)
	return state{running: true, lxcConfig: config, current: seen.Current, why: seen.Why,
		registered: seen.Registered, toolkit: seen.Toolkit, spec: seen.Spec, specErr: seen.SpecErr}
}

// workerPath finds the admin program, which runs the worker: beside this
// binary (the package installs both together), else on the usual paths.
func workerPath() (string, error) {
	candidates := []string{"/usr/bin/nvidiaprep", "/usr/sbin/nvidiaprep"}
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			candidates = append([]string{filepath.Join(filepath.Dir(real), "nvidiaprep")}, candidates...)
		}
	}
	for _, p := range candidates {
		if ok, _ := fsutil.IsExecutable(p); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("the nvidiaprep program, which runs the provisioning worker, is missing (looked for %v); reinstall the nvidiaprep package", candidates)
}

// passEnv hands the worker the configuration the hook was given.
func passEnv() []string {
	var env []string
	for _, k := range []string{config.EnvNode, config.EnvCluster, "NVIDIAPREP_DEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
