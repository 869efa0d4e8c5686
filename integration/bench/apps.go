package main

import (
	"fmt"
	"strings"
	"time"

	"nvidiaprep/integration/scenario"
)

// apps measures what the CDI spec and the apt registration add: the
// provisioning worker run by hand (`nvidiaprep provision`) on a container
// whose libraries are current, with everything current (only the checks),
// after the spec was removed (the worker writes it), and after the
// registration was removed (the worker builds and installs it with dpkg);
// and post-start when only the spec is out of date (it starts the worker).
func (e env) apps(runs int) ([]row, error) {
	n, ct, done, err := e.provisioned("apps", 9903)
	if err != nil {
		return nil, err
	}
	defer done()
	worker := func(prep string) (time.Duration, error) {
		if prep != "" {
			if out, code, err := scenario.Sh(ct, prep); err != nil || code != 0 {
				return 0, fmt.Errorf("%s: exit %d %v: %s", prep, code, err, out)
			}
		}
		return timeCmd(n.Env(), strings.TrimSuffix(n.Hook, "-hook"), "provision", "9903")
	}
	var current, spec, reg []time.Duration
	rounds := max(runs/4, 5)
	for i := 0; i < rounds; i++ {
		d, err := worker("")
		if err != nil {
			return nil, err
		}
		current = append(current, d)
		if d, err = worker("rm /etc/cdi/nvidia.yaml"); err != nil {
			return nil, err
		}
		spec = append(spec, d)
		if d, err = worker("dpkg --purge nvidiaprep-nvidia-driver >/dev/null && rm /etc/apt/preferences.d/nvidiaprep"); err != nil {
			return nil, err
		}
		reg = append(reg, d)
	}
	// post-start when the spec alone is out of date: it starts the worker.
	var ps []time.Duration
	for i := 0; i < runs; i++ {
		if out, code, err := scenario.Sh(ct, "rm -f /etc/cdi/nvidia.yaml"); err != nil || code != 0 {
			return nil, fmt.Errorf("removing the spec: %v %s", err, out)
		}
		d, err := timeCmd(n.Env(), n.Hook, "9903", "post-start")
		if err != nil {
			return nil, err
		}
		ps = append(ps, d)
		time.Sleep(300 * time.Millisecond) // let its worker write the spec again
	}
	c, s, r := median(current), median(spec), median(reg)
	pm, pp := stats(ps)
	return []row{
		{fmt.Sprintf("CDI spec: the worker on a current container writes it (%d runs)", rounds), fmt.Sprintf("median %s, **%s added** (current: %s, checks only)", ms(s), ms(s-c), ms(c)), "`nvidia-ctk cdi generate` inside, by hand, after every driver change", "—"},
		{fmt.Sprintf("apt registration: the worker builds and installs it with dpkg (%d runs)", rounds), fmt.Sprintf("median %s, **%s added**", ms(r), ms(r-c)), "—", "—"},
		{fmt.Sprintf("post-start, libraries current, CDI spec out of date: returns after starting the worker (%d runs)", runs), fmt.Sprintf("median %s, p95 %s", ms(pm), ms(pp)), "—", "≤ 50 ms"},
	}, nil
}
