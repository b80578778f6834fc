package local

import (
	"runtime"

	"golang.org/x/sys/unix"

	chub "github.com/computehub/chub"
)

// CheckSize returns a VmSizeTooLargeForHost error when spec needs more
// memory than this host has, or more CPU than its cores times the
// CPU overcommit allows.
func (r *Runtime) CheckSize(spec chub.InstanceSpec) error {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		total := int64(si.Totalram) * int64(si.Unit)
		if spec.MemoryBytes > total {
			return chub.Invalid("VmSizeTooLargeForHost", "properties.properties.vmSize",
				"the VM size needs %.1f GiB of memory but this host has %.1f GiB; choose a smaller size",
				float64(spec.MemoryBytes)/(1<<30), float64(total)/(1<<30))
		}
	}
	cores := runtime.NumCPU()
	limit := float64(cores) * r.cfg.CPUOvercommit
	if float64(spec.CPUMillis)/1000 > limit {
		return chub.Invalid("VmSizeTooLargeForHost", "properties.properties.vmSize",
			"the VM size needs %g cores but this host offers at most %g (%d cores × overcommit %g); choose a smaller size",
			float64(spec.CPUMillis)/1000, limit, cores, r.cfg.CPUOvercommit)
	}
	return nil
}
