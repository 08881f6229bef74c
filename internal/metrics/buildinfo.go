package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterBuildInfo registers sessionguard_build_info with reg (nil:
// prometheus.DefaultRegisterer): a gauge that is always 1, whose labels say
// which build is running, version (the release, as "sessionguard version"
// prints it) and goversion (the Go release it was built with), so that a
// dashboard can tell which instances run what, and alert on a mix.
func RegisterBuildInfo(reg prometheus.Registerer, version string) error {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sessionguard_build_info",
		Help:        "Always 1; the labels tell the running build's version and Go release.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return reg.Register(g)
}
