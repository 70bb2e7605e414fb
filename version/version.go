// Package version reports what build of dpiawatch is running, from the
// module and VCS information the Go toolchain embeds.
package version

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set at link time for releases (-ldflags "-X .../version.Version=v1.2.3").
var Version = "dev"

// Info describes the running build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

// Get returns the running build's Info.
func Get() Info {
	i := Info{Version: Version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
		if i.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
	}
	return i
}

// String renders Info on one line.
func (i Info) String() string {
	s := "dpiawatch " + i.Version + " (revision " + i.Revision
	if i.Modified {
		s += ", modified"
	}
	return s + ", " + i.GoVersion + ")"
}

// Register adds dpiawatch_build_info to reg.
func Register(reg prometheus.Registerer) {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dpiawatch_build_info",
		Help:        "A metric with a constant '1' value labelled by the build's version, revision and Go version.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
