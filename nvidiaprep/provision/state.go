package provision

import "nvidiaprep/nvidiaprep/installstate"

// The worker's lock and record settling are installstate's, which post-start
// (without cgo) shares.
var (
	lockPath     = installstate.LockPath
	settleLocked = installstate.SettleLocked
	orNone       = installstate.VersionText
)
