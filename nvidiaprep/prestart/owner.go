package prestart

import (
	"fmt"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// nodeOwner is the group and mode the container's copies of its nodes get:
// the configured group inside the container, as a host gid through the
// container's id map (lxc.idmap = g <inside> <host> <count>) when it has
// one; the configured mode. An unprivileged container's group that its map
// does not cover is an error: the node would belong to nobody inside.
func nodeOwner(req Request, entries []lxcconf.Entry) (nvdev.Owner, error) {
	o := nvdev.Owner{GID: -1, Mode: req.NodeMode}
	if req.NodeGID == nil {
		return o, nil
	}
	gid := int64(*req.NodeGID)
	mapped := false
	for _, e := range entries {
		if e.Key != "lxc.idmap" {
			continue
		}
		mapped = true
		f := strings.Fields(e.Value)
		if len(f) != 4 || f[0] != "g" {
			continue
		}
		inside, err1 := strconv.ParseInt(f[1], 10, 64)
		host, err2 := strconv.ParseInt(f[2], 10, 64)
		count, err3 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if gid >= inside && gid < inside+count {
			o.GID = int(host + gid - inside)
			return o, nil
		}
	}
	if mapped {
		return o, fmt.Errorf("gid %d in [containers.%d] is not mapped by the container's lxc.idmap lines: its nodes would belong to nobody inside", gid, req.VMID)
	}
	o.GID = int(gid)
	return o, nil
}

// drmOwner is what the copies of DRM nodes get: the configured group and
// mode, else mode 0666. The host's are root:render 0660, and no container
// has the host's render gid (an unprivileged one sees nobody:nogroup): as
// /dev/nvidia* are 0666, so are a container's copies of its GPU's DRM
// nodes by default.
func drmOwner(o nvdev.Owner) nvdev.Owner {
	if o.GID < 0 && o.Mode == 0 {
		o.Mode = 0o666
	}
	return o
}
