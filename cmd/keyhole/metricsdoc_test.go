package main

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/keyhole-dev/keyhole/metrics"
)

// metricsDoc is what docs/metrics.md says.
type metricsDoc struct {
	blocks map[string][]string // fenced blocks by language
	// metrics: name → type and label names, from the metric table.
	metrics map[string]docMetric
	// values: "label metric" → the documented values.
	values map[string][]string
}

type docMetric struct {
	typ    string
	labels []string
}

func readMetricsDoc(t *testing.T, path string) *metricsDoc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &metricsDoc{blocks: map[string][]string{}, metrics: map[string]docMetric{}, values: map[string][]string{}}
	var fence string
	var block strings.Builder
	table := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case fence != "" && strings.HasPrefix(line, "```"):
			d.blocks[fence] = append(d.blocks[fence], block.String())
			fence = ""
		case fence != "":
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "```"):
			fence = cmpOr(strings.TrimPrefix(line, "```"), "text")
			block.Reset()
		case strings.HasPrefix(line, "| metric |"):
			table = "metric"
		case strings.HasPrefix(line, "| label |"):
			table = "label"
		case table != "" && strings.HasPrefix(line, "|---"):
		case table != "" && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			ticks := ticked
			if table == "metric" {
				d.metrics[ticks(cells[0])[0]] = docMetric{typ: strings.TrimSpace(cells[1]), labels: ticks(cells[2])}
			} else {
				for _, m := range ticks(cells[1]) {
					d.values[ticks(cells[0])[0]+" "+m] = ticks(cells[2])
				}
			}
		default:
			table = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// registered returns keyhole's metrics as the registry has them, each
// made to appear by one event.
func registered(t *testing.T) map[string]docMetric {
	t.Helper()
	m := metrics.New()
	m.SessionOpened()
	m.SessionEnded("script", 0)
	m.SessionRefused("no policy loaded")
	m.AuthRefused("unknown CA")
	m.Decision("read", true)
	m.ScriptRan(time.Millisecond)
	m.LimitHit("steps")
	m.WorkerStarted(true)
	m.IdleWorkers(1)
	m.PolicyReloaded("v", errors.New("refused"))
	m.AuditWritable(true)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]docMetric{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "keyhole_") {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		out[f.GetName()] = docMetric{typ: strings.ToLower(f.GetType().String()), labels: labels}
	}
	return out
}

// TestMetricsDoc checks docs/metrics.md against the code: every metric
// with its type and labels, the label values its alert rules use, the
// rules and the scrape config as YAML, and its config example; and the
// README's config block.
func TestMetricsDoc(t *testing.T) {
	t.Parallel()
	doc := readMetricsDoc(t, filepath.Join("..", "..", "docs", "metrics.md"))
	reg := registered(t)
	for name, want := range reg {
		got, ok := doc.metrics[name]
		if !ok {
			t.Errorf("docs/metrics.md does not list %s", name)
			continue
		}
		if got.typ != want.typ || !slices.Equal(slices.Sorted(slices.Values(got.labels)), want.labels) {
			t.Errorf("docs/metrics.md: %s is a %s with labels %v; the registry has a %s with %v", name, got.typ, got.labels, want.typ, want.labels)
		}
		for _, l := range want.labels {
			if len(doc.values[l+" "+name]) == 0 {
				t.Errorf("docs/metrics.md lists no values of label %s of %s", l, name)
			}
		}
	}
	for name := range doc.metrics {
		if _, ok := reg[name]; !ok {
			t.Errorf("docs/metrics.md lists %s, which the registry does not have", name)
		}
	}

	yamls := doc.blocks["yaml"]
	if len(yamls) != 2 {
		t.Fatalf("docs/metrics.md has %d yaml blocks, want 2 (scrape config, alert rules)", len(yamls))
	}
	var scrapeCfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(yamls[0]), &scrapeCfg); err != nil || len(scrapeCfg.ScrapeConfigs) == 0 ||
		len(scrapeCfg.ScrapeConfigs[0].StaticConfigs) == 0 {
		t.Fatalf("docs/metrics.md scrape config: %v", err)
	}
	for _, target := range scrapeCfg.ScrapeConfigs[0].StaticConfigs[0].Targets {
		if err := checkMetricsConfig(&config{MetricsListen: target}, "doc"); err != nil {
			t.Errorf("docs/metrics.md scrape target: %v", err)
		}
	}

	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(yamls[1]))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("docs/metrics.md alert rules: %v", err)
	}
	metricRe := regexp.MustCompile(`\bkeyhole_[a-z_]+`)
	selectorRe := regexp.MustCompile(`(keyhole_[a-z_]+)\{([^}]*)\}`)
	matcherRe := regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert rule %q: needs alert, expr and a summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			for _, name := range metricRe.FindAllString(r.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && reg[b].typ == "histogram" {
						base = b
					}
				}
				if _, ok := reg[base]; !ok {
					t.Errorf("alert rule %s: no metric %s", r.Alert, name)
				}
			}
			for _, sel := range selectorRe.FindAllStringSubmatch(r.Expr, -1) {
				name := sel[1]
				for _, m := range matcherRe.FindAllStringSubmatch(sel[2], -1) {
					label, op, val := m[1], m[2], m[3]
					if !slices.Contains(reg[name].labels, label) {
						t.Errorf("alert rule %s: %s has no label %s", r.Alert, name, label)
						continue
					}
					vals := []string{val}
					if op == "=~" || op == "!~" {
						vals = strings.Split(val, "|")
					}
					for _, v := range vals {
						if !slices.Contains(doc.values[label+" "+name], v) {
							t.Errorf("alert rule %s: %s{%s} is never %q", r.Alert, name, label, v)
						}
					}
				}
			}
		}
	}
	if n < 5 {
		t.Errorf("docs/metrics.md has %d alert rules, want at least 5", n)
	}

	// The config example, and the README's config block, name
	// metrics_listen with a value serve accepts.
	tomls := doc.blocks["toml"]
	if len(tomls) != 1 {
		t.Fatalf("docs/metrics.md has %d toml blocks, want 1", len(tomls))
	}
	for _, src := range []struct{ name, text string }{{"docs/metrics.md", tomls[0]}, {"README.md", readmeConfig(t)}} {
		var c config
		md, err := toml.Decode(src.text, &c)
		if err != nil {
			t.Errorf("%s config block: %v", src.name, err)
			continue
		}
		if und := md.Undecoded(); len(und) > 0 {
			t.Errorf("%s config block: unknown keys %v", src.name, und)
		}
		if c.MetricsListen == "" {
			t.Errorf("%s config block does not show metrics_listen", src.name)
		}
		if err := checkMetricsConfig(&c, src.name); err != nil {
			t.Errorf("%s config block: %v", src.name, err)
		}
	}
}

// ticked returns the backticked words of a table cell that are outside
// parentheses (those inside explain, they are not values).
func ticked(s string) []string {
	var out []string
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return out
			}
			if depth == 0 {
				out = append(out, s[i+1:i+1+j])
			}
			i += j + 1
		}
	}
	return out
}
