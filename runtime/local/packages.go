package local

import (
	"os"
	"path/filepath"
	"strings"
)

// Packages: the image's system Python is the protected environment (Debian
// marks it externally managed, PEP 668), and so is R's system library. The
// instance's user installs into their own home, which persists like the
// rest of the disk:
//   - `pip install PKG` outside a virtual environment installs into the
//     user's site (~/.local), which the system python3 and Jupyter's
//     default kernel see; inside a virtual environment pip installs into it
//     as usual. Root's pip (sudo) stays refused by PEP 668.
//   - `install.packages()` in R installs into R_LIBS_USER, made at R's start
//     when it is missing.
//   - kernels registered with `python -m ipykernel install --user` live in
//     ~/.local/share/jupyter/kernels.

// HostLoopbackName names HostLoopbackAddress in every instance's /etc/hosts.
const HostLoopbackName = "host.chub.internal"

// userPipConfig lets azureuser's pip install outside a virtual environment:
// pip then falls back to the user's site, since the system's is not
// writable for them. Inside a virtual environment the setting changes
// nothing.
const userPipConfig = `# Written by ComputeHub when the instance was created.
# The system Python (/usr) is protected: root's pip refuses to touch it.
# As you, "pip install PKG" outside a virtual environment installs into
# your user site (~/.local), which python3 and Jupyter's default kernel see.
# Remove this file to get Debian's behaviour back (virtual environments only).
# 10.0.2.2 (host.chub.internal) is the server host's loopback, trusted over
# plain HTTP the way localhost is.
[global]
break-system-packages = true
trusted-host = ` + HostLoopbackAddress + " " + HostLoopbackName + "\n"

// writeUserPipConfig writes ~/.config/pip/pip.conf into a new home.
func writeUserPipConfig(home string) error {
	dir := home
	for _, d := range []string{".config", "pip"} {
		dir = filepath.Join(dir, d)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Lchown(dir, azureUserID, azureUserID); err != nil {
			return err
		}
	}
	p := filepath.Join(dir, "pip.conf")
	if _, err := os.Lstat(p); err == nil {
		return nil // the image's skeleton brought one
	}
	if err := os.WriteFile(p, []byte(userPipConfig), 0o644); err != nil {
		return err
	}
	return os.Lchown(p, azureUserID, azureUserID)
}

// rProfileSite makes the user library of a non-root user at R's start, so
// that install.packages() installs there without asking.
const rProfileSite = `
## Added by ComputeHub: a user's own library (R_LIBS_USER) exists and comes
## first, so install.packages() installs there without asking. The system
## library stays root's.
local({
  lib <- Sys.getenv("R_LIBS_USER")
  if (nzchar(lib) && Sys.info()[["effective_user"]] != "root") {
    lib <- path.expand(strsplit(lib, .Platform$path.sep)[[1]][1])
    if (!dir.exists(lib)) dir.create(lib, recursive = TRUE, showWarnings = FALSE)
    if (dir.exists(lib)) .libPaths(c(lib, .libPaths()))
  }
})
`

// curateR appends rProfileSite to the image's R site profile, when it has R.
func curateR(etc string) error {
	p := filepath.Join(etc, "R", "Rprofile.site")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if strings.Contains(string(b), "Added by ComputeHub") {
		return nil
	}
	// A fresh file: the copy may share nothing with the host's.
	os.Remove(p)
	return os.WriteFile(p, append(b, rProfileSite...), 0o644)
}
