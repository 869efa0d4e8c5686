// Package nvdev discovers the host's NVIDIA driver as it is now: the loaded
// driver version, the GPUs and their device minors, and the character device
// nodes (with their live major:minor numbers) that a container needs.
//
// Every lookup is joined onto injectable roots (dev, proc, sys), so the same
// code runs against the real host and against a test tree. Parsers take
// io.Readers. The GPU list comes through the narrow GPULister interface: NVML
// in production (package nvmlgpu), /proc/driver/nvidia/gpus as the fallback.
package nvdev
