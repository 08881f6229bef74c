package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// soakResult is everything one soak measured.
type soakResult struct {
	Started, Finished  time.Time
	Duration           time.Duration
	Users              int // virtual users per server
	Idle, Think        time.Duration
	Interval           time.Duration // between samples
	Machine            machine
	LoadStart, LoadEnd string
	Stores             []soakStore
	Skipped            []string // stores that could not run here, and why
}

// soakStore is one server's soak.
type soakStore struct {
	Store       string
	Samples     []soakSample
	Total       soakCounts
	Sessions    int // sessions the users held
	Ended       int // session_ended entries in the audit log
	EndedMetric int // sessionguard_sessions_ended_total
	EndedTwice  int
	NeverEnded  int
	Lost        int
	Growth      []growthCheck
	Problems    []string
}

// growthCheck judges whether one figure grew without bound during the
// soak: whether the median of the last third of the samples exceeds
// Ratio times the median of the first third plus Floor. The floor keeps a
// small figure's noise (a few goroutines, a millisecond of latency on a
// busy machine) from counting as growth; the ratio lets a figure settle
// after the first third, as a heap does while the store fills to its
// steady state.
type growthCheck struct {
	Name        string
	First, Last float64 // medians of the first and last thirds
	Limit       float64 // Ratio*First + Floor
	Grew        bool
	Judged      bool   // false when there were fewer than three samples
	Unit        string // how to show the values: "MiB", "ms" or ""
}

// growthRatio is the factor of the growth rule.
const growthRatio = 1.5

// growthFloors are the growth rule's floors, in each figure's unit.
var growthFloors = map[string]float64{
	"heap":       4,  // MiB
	"goroutines": 20, // goroutines
	"open files": 20, // descriptors
	"p99":        50, // ms
}

// judgeGrowth applies the growth rule to each figure of the samples.
func judgeGrowth(samples []soakSample) []growthCheck {
	figures := []struct {
		name, unit string
		value      func(soakSample) float64
	}{
		{"heap", "MiB", func(s soakSample) float64 { return float64(s.Heap) / (1 << 20) }},
		{"goroutines", "", func(s soakSample) float64 { return float64(s.Goroutines) }},
		{"open files", "", func(s soakSample) float64 { return float64(s.OpenFiles) }},
		{"p99", "ms", func(s soakSample) float64 { return float64(s.P99) / float64(time.Millisecond) }},
	}
	var out []growthCheck
	for _, f := range figures {
		g := growthCheck{Name: f.name, Unit: f.unit}
		third := len(samples) / 3
		if third > 0 {
			var first, last []float64
			for _, s := range samples[:third] {
				first = append(first, f.value(s))
			}
			for _, s := range samples[len(samples)-third:] {
				last = append(last, f.value(s))
			}
			g.First, g.Last = median(first), median(last)
			g.Limit = growthRatio*g.First + growthFloors[f.name]
			g.Grew, g.Judged = g.Last > g.Limit, true
		}
		out = append(out, g)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (g growthCheck) format(v float64) string {
	switch g.Unit {
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// failures lists why the soak failed: problems the users saw (lost
// sessions, sessions answered past their deadline, ended twice or never,
// errors) and figures that grew.
func (r *soakResult) failures() []string {
	var out []string
	for _, st := range r.Stores {
		for _, p := range st.Problems {
			out = append(out, st.Store+": "+p)
		}
		for _, g := range st.Growth {
			if g.Grew {
				out = append(out, fmt.Sprintf("%s: %s grew from %s to %s (limit %s)", st.Store, g.Name, g.format(g.First), g.format(g.Last), g.format(g.Limit)))
			}
		}
	}
	return out
}

// printSamples prints the latest sample of each server.
func printSamples(w io.Writer, servers []*soakServer) {
	for _, s := range servers {
		s.mu.Lock()
		sm := s.samples[len(s.samples)-1]
		problems := len(s.problems)
		s.mu.Unlock()
		fmt.Fprintf(w, "%6s %-8s heap %5.1f MiB  goroutines %4d  open files %4d  p99 %-8s sign-in p99 %-8s live %3d  requests %5d  sign-ins %3d  logouts %3d  expiries %3d  errors %d  problems %d\n",
			fmtMinSec(sm.At), s.store, float64(sm.Heap)/(1<<20), sm.Goroutines, sm.OpenFiles, fmtDur(sm.P99), fmtDur(sm.SignInP99),
			sm.Live, sm.Requests, sm.SignIns, sm.Logouts, sm.Expiries, sm.Errors, problems)
	}
}

func fmtMinSec(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// printSoak prints the soak's verdicts.
func printSoak(w io.Writer, r *soakResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tsessions\tlogouts\texpiries\tended (audit)\tended (metrics)\tended twice\tnever ended\tlost\trequests\terrors\t")
	for _, st := range r.Stores {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", st.Store, st.Sessions, st.Total.Logouts, st.Total.Expiries,
			st.Ended, st.EndedMetric, st.EndedTwice, st.NeverEnded, st.Lost, st.Total.Requests, st.Total.Errors)
	}
	tw.Flush()
	for _, st := range r.Stores {
		for _, g := range st.Growth {
			if !g.Judged {
				fmt.Fprintf(w, "%s %s: too few samples to judge\n", st.Store, g.Name)
				continue
			}
			fmt.Fprintf(w, "%s %s: first third %s, last third %s, limit %s: %s\n", st.Store, g.Name, g.format(g.First), g.format(g.Last), g.format(g.Limit), grewWord(g.Grew))
		}
	}
	if failed := r.failures(); len(failed) > 0 {
		fmt.Fprintf(w, "\n%d problems:\n", len(failed))
		for i, f := range failed {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(failed)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", f)
		}
	} else {
		fmt.Fprintln(w, "\nno session lost, none answered past its deadline, each ended exactly once, nothing grew")
	}
}

func grewWord(grew bool) string {
	if grew {
		return "GREW"
	}
	return "steady"
}

// The soak's part of benchmarks.md lies between these markers, so that
// the soak replaces it without the rest of the benchmark, and the
// benchmark keeps it.
const (
	soakBegin     = "<!-- soak: begin (written by `cd bench && go run . -soak 10m -write-docs ../docs`) -->"
	soakEnd       = "<!-- soak: end -->"
	soakChartFile = "soak.png"
)

// writeSoakDocs replaces the soak section of dir/benchmarks.md (adding it
// at the end the first time) and draws its chart.
func writeSoakDocs(dir string, r *soakResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := soakChart(filepath.Join(dir, soakChartFile), r); err != nil {
		return fmt.Errorf("soak chart: %w", err)
	}
	file := filepath.Join(dir, "benchmarks.md")
	doc, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(doc) == 0 {
		doc = []byte("# Benchmarks\n")
	}
	return os.WriteFile(file, withSoakSection(doc, soakMarkdown(r)), 0o644)
}

// withSoakSection returns doc with its soak section replaced by section,
// or with section added at the end when it has none.
func withSoakSection(doc, section []byte) []byte {
	begin := bytes.Index(doc, []byte(soakBegin))
	end := bytes.Index(doc, []byte(soakEnd))
	if begin < 0 || end < begin {
		out := bytes.TrimRight(doc, "\n")
		out = append(out, "\n\n"...)
		return append(out, section...)
	}
	out := append([]byte(nil), doc[:begin]...)
	out = append(out, section...)
	rest := doc[end+len(soakEnd):]
	return append(out, bytes.TrimLeft(rest, "\n")...)
}

// soakSection returns the soak section of doc (markers included, with the
// line break after it), or nil.
func soakSection(doc []byte) []byte {
	begin := bytes.Index(doc, []byte(soakBegin))
	end := bytes.Index(doc, []byte(soakEnd))
	if begin < 0 || end < begin {
		return nil
	}
	return append(bytes.Clone(doc[begin:end+len(soakEnd)]), '\n')
}

// soakMarkdown is the soak section of benchmarks.md.
func soakMarkdown(r *soakResult) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s\n\n## Soak\n\n", soakBegin)
	p("The `sessionguard` command built from this tree, run %s for %s (%s to %s, load average %s at the start and %s at the end, on the machine above: %d cores, %s), ",
		r.Started.Format("2006-01-02"), fmtMinutes(r.Duration), r.Started.Format("15:04"), r.Finished.Format("15:04 MST"), r.LoadStart, r.LoadEnd, r.Machine.CPUs, r.Machine.CPUModel)
	p("once with each session store, the servers side by side for the whole time, each with `-idle-timeout %s` so that sessions time out all the while. ", r.Idle)
	p("Regenerate this section and its chart alone (the rest of the page stays) with:\n\n")
	p("```sh\ncd bench && go run . -soak %s -write-docs ../docs\n```\n\n", fmtFlagDuration(r.Duration))
	p("Each server has %d virtual users, each with an account of its own, who do this over and over: sign in (`POST /auth/login`), ", r.Users)
	p("then for 5 to 40 seconds take a step every %s or so (half to one and a half times that): a page (`GET /account`, `GET /`), ", r.Think)
	p("their sessions as JSON (`GET /auth/sessions`), a note saved with the session (`POST /notes`), or a passive poll of `GET /auth/status` as the timeout script sends; ")
	p("then, by a coin toss, sign out (`POST /auth/logout`, after which the cookie must be refused with the reason `logout`) ")
	p("or stop and poll `/auth/status` every %s until the session times out (refused with the reason `idle`). ", max(time.Second, r.Idle/10))
	p("At the end the users still browsing sign out and those waiting for a timeout wait for it.\n\n")
	p("What fails the soak:\n\n")
	p("- **a lost session**: a request refused before the session's idle deadline. The users know a lower bound of each deadline: ")
	p("an active request sent at *t* leaves it at least *t* + idle timeout − touch interval (the server writes activity at most once a touch interval), ")
	p("and a poll sent at *t* that says *r* seconds are left puts it at *t* + *r* or later. A refusal more than %s before that bound is a lost session.\n", deadlineSlack)
	p("- **a session answered past its deadline**: a request sent more than %s after the upper bound (the answer's arrival plus the idle timeout, or plus the time a poll said was left) that is not refused.\n", deadlineSlack)
	p("- **a session that ended twice, or never, or not as its user saw it**: after the soak the server stops and `sessionguard audit -json -event session_ended` lists the ends; ")
	p("every session a user held must appear exactly once, with the reason its user saw (`logout` or `idle`), no other session may appear, ")
	p("and `sessionguard_sessions_ended_total` in `/metrics` must count as many.\n")
	p("- **any error**: a 5xx, a request that got no answer (10 s timeout) or a sign-in that failed.\n")
	p("- **a figure that grows without bound**: every %s the harness takes each server's live heap (`HeapAlloc` after a garbage collection, from `/debug/pprof/heap?gc=1&debug=1` on `-debug-addr`, ", r.Interval)
	p("the smallest of %d readings %s apart: one taken while a password is hashed holds the hash's 19 MiB for a moment), ", heapReadings, heapGap)
	p("its goroutines (`go_goroutines` in `/metrics`), its open files (`/proc/PID/fd`) and the p99 latency of the users' requests since the last sample (sign-ins apart: their cost is the password hash). ")
	p("A figure grows without bound when the median of the last third of its samples exceeds %.1f times the median of the first third plus a floor ", growthRatio)
	p("(%.0f MiB of heap, %.0f goroutines, %.0f open files, %.0f ms of p99): the floor keeps a small figure's noise from counting, the factor lets the figures settle while the stores fill to their steady state.\n\n",
		growthFloors["heap"], growthFloors["goroutines"], growthFloors["open files"], growthFloors["p99"])
	if len(r.Skipped) > 0 {
		p("Not run here: %s.\n\n", strings.Join(r.Skipped, "; "))
	}

	p("| store | sessions | signed out | timed out | ended in the audit log | ended in the metrics | ended twice | never ended | lost | requests | errors | verdict |\n")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, st := range r.Stores {
		verdict := "passed"
		if n := len(st.Problems) + countGrew(st.Growth); n > 0 {
			verdict = fmt.Sprintf("**failed** (%d problems)", n)
		}
		p("| %s | %s | %s | %s | %s | %s | %d | %d | %d | %s | %d | %s |\n", storeTitle(st.Store), fmtInt(float64(st.Sessions)), fmtInt(float64(st.Total.Logouts)),
			fmtInt(float64(st.Total.Expiries)), fmtInt(float64(st.Ended)), fmtInt(float64(st.EndedMetric)), st.EndedTwice, st.NeverEnded, st.Lost,
			fmtInt(float64(st.Total.Requests)), st.Total.Errors, verdict)
	}
	p("\nGrowth, as the medians of the first and the last third of the samples against the limit:\n\n")
	p("| store | heap | goroutines | open files | p99 |\n|---|---|---|---|---|\n")
	for _, st := range r.Stores {
		p("| %s |", storeTitle(st.Store))
		for _, g := range st.Growth {
			if !g.Judged {
				p(" too few samples |")
				continue
			}
			p(" %s → %s (limit %s)%s |", g.format(g.First), g.format(g.Last), g.format(g.Limit), map[bool]string{true: " **grew**"}[g.Grew])
		}
		p("\n")
	}
	p("\nEach sample: live heap / goroutines / open files / p99 of the requests since the last sample (sign-in p99 apart), and the sessions the server counted as active.\n\n")
	p("| time |")
	for _, st := range r.Stores {
		p(" %s |", storeTitle(st.Store))
	}
	p("\n|--:|")
	for range r.Stores {
		p("---|")
	}
	p("\n")
	for i := range maxSamples(r.Stores) {
		var at time.Duration
		for _, st := range r.Stores {
			if i < len(st.Samples) {
				at = st.Samples[i].At
			}
		}
		p("| %s |", fmtMinSec(at))
		for _, st := range r.Stores {
			if i >= len(st.Samples) {
				p(" |")
				continue
			}
			s := st.Samples[i]
			p(" %.1f MiB / %d / %d / %s (sign-in %s), %d active |", float64(s.Heap)/(1<<20), s.Goroutines, s.OpenFiles, fmtDur(s.P99), fmtDur(s.SignInP99), s.Live)
		}
		p("\n")
	}
	p("\n![The soak's heap, goroutines, open files and p99 over time, by store](%s)\n\n", soakChartFile)
	var problems []string
	for _, st := range r.Stores {
		for _, pr := range st.Problems {
			problems = append(problems, storeTitle(st.Store)+": "+pr)
		}
	}
	if len(problems) > 0 {
		p("Problems the soak found:\n\n")
		for i, pr := range problems {
			if i == 30 {
				p("- ... and %d more\n", len(problems)-30)
				break
			}
			p("- %s\n", strings.ReplaceAll(pr, "|", "\\|"))
		}
		p("\n")
	}
	p("%s\n", soakEnd)
	return b.Bytes()
}

func countGrew(gs []growthCheck) int {
	n := 0
	for _, g := range gs {
		if g.Grew {
			n++
		}
	}
	return n
}

func maxSamples(stores []soakStore) int {
	n := 0
	for _, st := range stores {
		n = max(n, len(st.Samples))
	}
	return n
}

// fmtFlagDuration writes d as a flag value: 10m, 2m30s, 1h.
func fmtFlagDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// soakColors tells the stores apart in the chart.
var soakColors = map[string]color.RGBA{
	"memory":   {R: 0x1f, G: 0x6f, B: 0xb4, A: 255},
	"sqlite":   {R: 0xd9, G: 0x5f, B: 0x02, A: 255},
	"redis":    {R: 0x1b, G: 0x9e, B: 0x77, A: 255},
	"postgres": {R: 0x75, G: 0x70, B: 0xb3, A: 255},
}

// soakChart draws each figure of the samples over time, one panel per
// figure and one line per store.
func soakChart(file string, r *soakResult) error {
	panels := []struct {
		title, unit string
		value       func(soakSample) float64
	}{
		{"live heap", "MiB", func(s soakSample) float64 { return float64(s.Heap) / (1 << 20) }},
		{"goroutines", "", func(s soakSample) float64 { return float64(s.Goroutines) }},
		{"open files", "", func(s soakSample) float64 { return float64(s.OpenFiles) }},
		{"p99 of the users' requests", "ms", func(s soakSample) float64 { return float64(s.P99) / float64(time.Millisecond) }},
	}
	plots := make([][]*plot.Plot, 2)
	for i, pn := range panels {
		pl := plot.New()
		pl.Title.Text = pn.title
		pl.X.Label.Text = "minutes into the soak"
		pl.Y.Label.Text = pn.unit
		pl.Y.Min = 0
		for _, st := range r.Stores {
			var pts plotter.XYs
			for _, s := range st.Samples {
				pts = append(pts, plotter.XY{X: s.At.Minutes(), Y: pn.value(s)})
			}
			if len(pts) == 0 {
				continue
			}
			line, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			line.Color = soakColors[st.Store]
			line.Width = vg.Points(1.5)
			pl.Add(line)
			pl.Legend.Add(storeTitle(st.Store), line)
		}
		pl.Legend.Top = true
		pl.Add(plotter.NewGrid())
		plots[i/2] = append(plots[i/2], pl)
	}
	img := vgimg.New(10*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
