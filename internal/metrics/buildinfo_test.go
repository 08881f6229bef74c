package metrics

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterBuildInfo(reg, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "sessionguard_build_info" || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want sessionguard_build_info alone", families)
	}
	m := families[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if m.GetGauge().GetValue() != 1 || len(labels) != 2 || labels["version"] != "v1.2.3" || labels["goversion"] != runtime.Version() {
		t.Errorf("sessionguard_build_info = %v %v, want 1 with version v1.2.3 and goversion %s", labels, m.GetGauge().GetValue(), runtime.Version())
	}
	if err := RegisterBuildInfo(reg, "v1.2.3"); err == nil {
		t.Error("registering twice: no error")
	}
}
