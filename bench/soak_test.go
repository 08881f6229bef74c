package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func samplesOf(heapMiB []float64) []soakSample {
	var out []soakSample
	for i, h := range heapMiB {
		out = append(out, soakSample{At: time.Duration(i+1) * time.Minute, Heap: uint64(h * (1 << 20)),
			Goroutines: 40, OpenFiles: 30, P99: 5 * time.Millisecond})
	}
	return out
}

func TestJudgeGrowth(t *testing.T) {
	for _, tc := range []struct {
		name string
		heap []float64
		grew bool
	}{
		{"steady", []float64{10, 11, 10, 12, 11, 10, 11, 12, 10}, false},
		{"settles after filling", []float64{6, 9, 12, 13, 13, 14, 13, 14, 13}, false},
		{"grows all the while", []float64{10, 15, 20, 25, 30, 35, 40, 45, 50}, true},
		{"noise under the floor", []float64{1, 1, 1, 1, 1, 1, 4, 4, 4}, false},
		{"just over the limit", []float64{10, 10, 10, 10, 10, 10, 19.1, 19.1, 19.1}, true},
	} {
		var heap growthCheck
		for _, g := range judgeGrowth(samplesOf(tc.heap)) {
			if g.Name == "heap" {
				heap = g
			} else if g.Grew {
				t.Errorf("%s: %s grew though it is constant", tc.name, g.Name)
			}
		}
		if !heap.Judged || heap.Grew != tc.grew {
			t.Errorf("%s: heap %+v, want grew=%v", tc.name, heap, tc.grew)
		}
	}
	for _, g := range judgeGrowth(samplesOf([]float64{1, 100})) {
		if g.Judged || g.Grew {
			t.Errorf("two samples: %+v, want not judged", g)
		}
	}
}

func TestSoakSection(t *testing.T) {
	section := []byte(soakBegin + "\n\n## Soak\n\nfigures\n\n" + soakEnd + "\n")
	doc := []byte("# Benchmarks\n\n## Results\n\ntable\n")
	added := withSoakSection(doc, section)
	if !strings.HasSuffix(string(added), "table\n\n"+string(section)) {
		t.Fatalf("added:\n%s", added)
	}
	if got := soakSection(added); string(got) != string(section) {
		t.Errorf("soakSection = %q, want %q", got, section)
	}
	newer := []byte(strings.Replace(string(section), "figures", "new figures", 1))
	replaced := withSoakSection(added, newer)
	if strings.Count(string(replaced), soakBegin) != 1 || !strings.Contains(string(replaced), "new figures") || strings.Contains(string(replaced), "\nfigures") {
		t.Errorf("replaced:\n%s", replaced)
	}
	if soakSection(doc) != nil {
		t.Error("a document without the markers has a soak section")
	}
}

func TestParseAuditEnds(t *testing.T) {
	out := `{"time":"2026-01-01T00:00:00Z","event":"session_ended","user":"soak-user-1","session":"a","reason":"logout"}
{"time":"2026-01-01T00:00:01Z","event":"session_ended","user":"soak-user-2","session":"b","reason":"idle"}
{"time":"2026-01-01T00:00:02Z","event":"session_ended","user":"soak-user-2","session":"b","reason":"idle"}
`
	ends, err := parseAuditEnds([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ends["a"], []string{"logout"}) || !slices.Equal(ends["b"], []string{"idle", "idle"}) {
		t.Errorf("ends = %v", ends)
	}
	if _, err := parseAuditEnds([]byte("not json\n")); err == nil {
		t.Error("no error for a line that is not JSON")
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics([]byte(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
sessionguard_sessions_ended_total{reason="idle"} 7
sessionguard_sessions_ended_total{reason="logout"} 5
process_open_fds 17
`))
	if m["go_goroutines"] != 42 || m["sessionguard_sessions_ended_total"] != 12 || m["process_open_fds"] != 17 {
		t.Errorf("parsed %v", m)
	}
}

func TestSoakFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"-soak"}, defaultSoak},
		{[]string{"-soak", "2m"}, 2 * time.Minute},
		{[]string{"-soak=90s"}, 90 * time.Second},
		{[]string{"-soak", "-soak-users", "3"}, defaultSoak},
	} {
		cfg, err := parseFlags(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if cfg.soak != tc.want {
			t.Errorf("%q: soak %v, want %v", tc.args, cfg.soak, tc.want)
		}
	}
	for _, args := range [][]string{{"-soak", "10s"}, {"-soak=soon"}, {"-soak", "-soak-think", "10s"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if d := soakInterval(10 * time.Minute); d != time.Minute {
		t.Errorf("soakInterval(10m) = %v, want 1m", d)
	}
	if d := soakInterval(2 * time.Minute); d != 12*time.Second {
		t.Errorf("soakInterval(2m) = %v, want 12s", d)
	}
	for d, want := range map[time.Duration]string{10 * time.Minute: "10m", 150 * time.Second: "2m30s", time.Hour: "1h", 45 * time.Second: "45s"} {
		if got := fmtFlagDuration(d); got != want {
			t.Errorf("fmtFlagDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestHeldDeadline: the bounds of a session's idle deadline that the
// answers imply, and what counts as lost.
func TestHeldDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	p := soakPolicy{idle: 20 * time.Second, touch: time.Second}
	h := &held{soakSession: &soakSession{ID: "s"}}
	h.active(answer{sent: t0, received: t0.Add(10 * time.Millisecond)}, p)
	if want := t0.Add(19 * time.Second); !h.earliest.Equal(want) {
		t.Errorf("earliest %v, want %v", h.earliest, want)
	}
	if want := t0.Add(20*time.Second + 10*time.Millisecond); !h.latest.Equal(want) {
		t.Errorf("latest %v, want %v", h.latest, want)
	}
	// A poll 5 s later says 14.5 s are left: the deadline is t0+19.5s at
	// the earliest.
	h.polled(answer{sent: t0.Add(5 * time.Second), received: t0.Add(5*time.Second + 2*time.Millisecond)}, 14500*time.Millisecond)
	if want := t0.Add(19500 * time.Millisecond); !h.earliest.Equal(want) {
		t.Errorf("earliest after the poll %v, want %v", h.earliest, want)
	}
	s := &soakServer{sessions: map[string]*soakSession{}}
	refusal := answer{status: 401, sent: t0.Add(10 * time.Second), received: t0.Add(10 * time.Second)}
	if !s.lostIf(h, refusal, "GET /") || len(s.problems) != 1 || !strings.Contains(s.problems[0], "lost session") || h.Ended != "lost" {
		t.Errorf("a refusal 9.5 s early: problems %q, ended %q", s.problems, h.Ended)
	}
	if s.lostIf(h, answer{status: 200}, "GET /") {
		t.Error("a 200 counts as a refusal")
	}
	for _, a := range []answer{{status: 401}, {status: 303, location: "/auth/login?reason=idle"}} {
		if !a.refused() {
			t.Errorf("%+v is not a refusal", a)
		}
	}
	if (answer{status: 303, location: "/?done=note"}).refused() {
		t.Error("a redirect elsewhere is a refusal")
	}
}

func TestSoakDocs(t *testing.T) {
	r := &soakResult{Started: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), Duration: 2 * time.Minute, Users: 3,
		Idle: 20 * time.Second, Think: time.Second, Interval: 12 * time.Second, Machine: machine{CPUs: 2, CPUModel: "test"}}
	r.Finished = r.Started.Add(2 * time.Minute)
	for _, store := range []string{"memory", "sqlite"} {
		st := soakStore{Store: store, Samples: samplesOf([]float64{5, 6, 6, 6, 6, 6, 6, 6, 6, 6}), Sessions: 10, Ended: 10, EndedMetric: 10}
		st.Growth = judgeGrowth(st.Samples)
		r.Stores = append(r.Stores, st)
	}
	r.Stores[1].Problems = []string{"lost session x | y"}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte("# Benchmarks\n\n## Results\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSoakDocs(dir, r); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Results", "## Soak", "go run . -soak 2m -write-docs ../docs", "| memory | 10 |", "**failed** (1 problems)",
		"lost session x \\| y", soakChartFile, "| 2:00 |"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the document lacks %q:\n%s", want, doc)
		}
	}
	if failed := r.failures(); len(failed) != 1 {
		t.Errorf("failures %q, want the one problem", failed)
	}
	if fi, err := os.Stat(filepath.Join(dir, soakChartFile)); err != nil || fi.Size() == 0 {
		t.Errorf("the chart: %v", err)
	}
	// The benchmark's own document keeps the soak's section.
	res := measured(map[string]float64{"bare": 1000, "sg-memory": 900})
	if err := writeDocs(dir, res); err != nil {
		t.Fatal(err)
	}
	doc, _ = os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if !strings.Contains(string(doc), "## Soak") || !strings.Contains(string(doc), "## Targets") {
		t.Error("the benchmark's document lost the soak section")
	}
}

func TestHeapAlloc(t *testing.T) {
	profile := []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 2097152\n# TotalAlloc = 9\n# HeapAlloc = 1572864\n# Sys = 10\n")
	if n, err := heapAlloc(profile); err != nil || n != 1572864 {
		t.Errorf("heapAlloc = %d, %v", n, err)
	}
	if _, err := heapAlloc([]byte("nothing")); err == nil {
		t.Error("no error without HeapAlloc")
	}
}
