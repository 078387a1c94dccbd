package tests

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/regate/gateway/cmd/gateway/app"
)

// composeFile is the part of docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context string `yaml:"context"`
		Target  string `yaml:"target"`
	} `yaml:"build"`
	Command     []string                     `yaml:"command"`
	Ports       []string                     `yaml:"ports"`
	Expose      []string                     `yaml:"expose"`
	Environment map[string]string            `yaml:"environment"`
	Volumes     []string                     `yaml:"volumes"`
	DependsOn   map[string]map[string]string `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// interpolate expands ${VAR:-default} and ${VAR} as compose does, with an
// empty environment: the file must work without a .env.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::-([^}]*))?\}`).ReplaceAllString(s, "$2")
}

// stage is one stage of the Dockerfile.
type stage struct {
	name, from string
	env        map[string]string
	lines      []string // instruction lines, continuation lines joined
}

// instr returns the arguments of the stage's instructions named op.
func (s *stage) instr(op string) []string {
	var out []string
	for _, l := range s.lines {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], op) {
			out = append(out, strings.TrimSpace(l[len(f[0]):]))
		}
	}
	return out
}

// parseDockerfile splits the Dockerfile into stages and resolves ARG
// defaults in FROM lines.
func parseDockerfile(tb testing.TB, path string) (args map[string]string, stages []*stage) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	args = map[string]string{}
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				args[k] = v
			}
			continue
		case "FROM":
			from := regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(f[1], func(m string) string { return args[m[2:len(m)-1]] })
			st := &stage{from: from, env: map[string]string{}}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			tb.Fatalf("Dockerfile: %q before the first FROM", l)
		}
		st := stages[len(stages)-1]
		st.lines = append(st.lines, l)
		if strings.EqualFold(f[0], "ENV") {
			for _, kv := range f[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					st.env[k] = v
				}
			}
		}
	}
	return args, stages
}

func stageNamed(stages []*stage, name string) *stage {
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// jsonArgs parses an exec-form instruction argument: ["a", "b"].
func jsonArgs(tb testing.TB, s string) []string {
	tb.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil || len(out) == 0 {
		tb.Fatalf("Dockerfile: %q is not an exec-form list: %v", s, err)
	}
	return out
}

// otelEnv are the standard OpenTelemetry variables a service may set.
var otelEnv = []string{
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE",
}

// TestOpsComposeAndDockerfile checks that docker-compose.yml and the
// Dockerfile agree with the gateway's real flags, environment and
// defaults, and that the config the stack mounts passes `gateway check`.
// Docker cannot run here; the files are read, not started.
func TestOpsComposeAndDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(interpolate(string(raw))), &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	args, stages := parseDockerfile(t, "../Dockerfile")

	gwSvc, ok := cf.Services["gateway"]
	if !ok {
		t.Fatal("docker-compose.yml has no gateway service")
	}
	for _, name := range []string{"postgres", "mockupstream", "jaeger", "prometheus", "grafana"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
		}
	}
	pg, mock, jaeger := cf.Services["postgres"], cf.Services["mockupstream"], cf.Services["jaeger"]

	t.Run("dockerfile", func(t *testing.T) {
		gomod, err := os.ReadFile("../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
		build := stages[0]
		if !strings.HasPrefix(build.from, "golang:"+string(goVer[1])) {
			t.Errorf("build stage FROM %s, want golang:%s (go.mod; ARG GO_VERSION=%s)", build.from, goVer[1], args["GO_VERSION"])
		}
		if k, v, _ := strings.Cut(releaseEnv, "="); build.env[k] != v {
			t.Errorf("build stage does not set %s (releaseEnv): the binary would not be static, nor what the tests measure", releaseEnv)
		}
		builds := regexp.MustCompile(`go build ([^&]*)-o (\S+) (\./cmd/\S+)`).FindAllStringSubmatch(strings.Join(build.instr("RUN"), "\n"), -1)
		outputs := map[string]string{}
		for _, b := range builds {
			if _, err := os.Stat(filepath.Join("..", b[3])); err != nil {
				t.Errorf("Dockerfile builds %s: %v", b[3], err)
			}
			outputs[b[2]] = b[3]
			// The tests build and measure the release binary with the same
			// tags and flags (as go build gets them: without the shell's quotes).
			if b[3] == "./cmd/gateway" {
				args := " " + strings.ReplaceAll(b[1], `"`, "")
				for _, f := range append([]string{"-tags " + releaseTags}, releaseFlags...) {
					if !strings.Contains(args, " "+f+" ") {
						t.Errorf("Dockerfile builds the gateway with %q, want %s (releaseTags, releaseFlags)", b[1], f)
					}
				}
			}
		}
		for _, target := range []string{"gateway", "mockupstream"} {
			st := stageNamed(stages, target)
			if st == nil {
				t.Errorf("Dockerfile has no stage %q", target)
				continue
			}
			if users := st.instr("USER"); len(users) == 0 || slices.ContainsFunc(users, func(u string) bool {
				return u == "root" || u == "0" || strings.HasPrefix(u, "root:") || strings.HasPrefix(u, "0:")
			}) {
				t.Errorf("stage %s runs as %v, want a non-root USER", target, users)
			}
			var copied string
			for _, c := range st.instr("COPY") {
				if f := strings.Fields(c); len(f) == 3 && f[0] == "--from=build" && outputs[f[1]] == "./cmd/"+target {
					copied = f[2]
				}
			}
			ep := st.instr("ENTRYPOINT")
			if copied == "" || len(ep) != 1 || jsonArgs(t, ep[0])[0] != copied {
				t.Errorf("stage %s: ENTRYPOINT %v does not run the %s binary copied from the build (%q)", target, ep, target, copied)
			}
		}
		if gw := stageNamed(stages, "gateway"); gw != nil {
			if stages[len(stages)-1] != gw {
				t.Error("the gateway stage is not the last one, so `docker build .` would not build it")
			}
			hc := gw.instr("HEALTHCHECK")
			if len(hc) != 1 || !strings.Contains(hc[0], "CMD") {
				t.Fatalf("gateway stage HEALTHCHECK = %v, want one with CMD", hc)
			}
			cmd := jsonArgs(t, hc[0][strings.Index(hc[0], "CMD")+3:])
			// The health check must be a real command of the binary.
			var out, errOut bytes.Buffer
			if code := app.Main(t.Context(), append(cmd[1:], "--listen", freeAddr(t)), &out, &errOut, noEnv); code != 1 || !strings.Contains(errOut.String(), "refused") {
				t.Errorf("%v against a closed port = exit %d (%s), want exit 1 with connection refused", cmd, code, errOut.String())
			}
		}
	})

	// The gateway's listen address: compose's environment over the image's.
	listen := gwSvc.Environment["GATEWAY_LISTEN"]
	if gw := stageNamed(stages, "gateway"); listen == "" && gw != nil {
		listen = gw.env["GATEWAY_LISTEN"]
	}

	t.Run("gateway service", func(t *testing.T) {
		if gwSvc.Build == nil || stageNamed(stages, gwSvc.Build.Target) == nil || gwSvc.Build.Context != "." {
			t.Errorf("gateway build = %+v, want context . and a Dockerfile stage as target", gwSvc.Build)
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil || host != "0.0.0.0" {
			t.Errorf("gateway listens on %q (flag default %s), want 0.0.0.0:PORT in the container", listen, app.DefaultListen)
		}
		if !slices.ContainsFunc(gwSvc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
			t.Errorf("gateway ports %v publish no host port to the listen port %s", gwSvc.Ports, port)
		}
		if st := stageNamed(stages, "gateway"); st != nil && !slices.Contains(st.instr("EXPOSE"), port) {
			t.Errorf("gateway stage EXPOSE %v, want the listen port %s", st.instr("EXPOSE"), port)
		}
		for k := range gwSvc.Environment {
			if !slices.Contains(app.EnvVars, k) && !slices.Contains(otelEnv, k) {
				t.Errorf("gateway environment %s is read by neither the gateway nor the OpenTelemetry SDK", k)
			}
		}
		// serve checks flags and environment values (durations, log
		// settings, OTEL exporter and protocol) before it reads the config:
		// with a missing config it must fail on that, not on them (exit 2).
		missing := filepath.Join(t.TempDir(), "missing.yaml")
		var out, errOut bytes.Buffer
		if code := app.Main(t.Context(), []string{"serve", "--config", missing}, &out, &errOut, mapEnv(gwSvc.Environment)); code != 1 || !strings.Contains(errOut.String(), "missing.yaml") {
			t.Errorf("serve with the compose environment and a missing config = exit %d (%s), want exit 1 naming the config", code, errOut.String())
		}

		// DATABASE_URL names the postgres service with its credentials.
		db, err := url.Parse(gwSvc.Environment["DATABASE_URL"])
		if err != nil || db.Hostname() != "postgres" || db.Port() != "5432" || db.User.Username() != pg.Environment["POSTGRES_USER"] ||
			strings.TrimPrefix(db.Path, "/") != pg.Environment["POSTGRES_DB"] {
			t.Errorf("DATABASE_URL = %q does not match the postgres service %v", gwSvc.Environment["DATABASE_URL"], pg.Environment)
		} else if pw, _ := db.User.Password(); pw != pg.Environment["POSTGRES_PASSWORD"] {
			t.Error("DATABASE_URL password differs from POSTGRES_PASSWORD")
		}
		if gwSvc.DependsOn["postgres"]["condition"] != "service_healthy" || pg.Healthcheck == nil {
			t.Errorf("the gateway must wait for a healthy postgres: depends_on %v, healthcheck %v", gwSvc.DependsOn, pg.Healthcheck)
		}
		for _, dep := range []string{"mockupstream", "jaeger"} {
			if _, ok := gwSvc.DependsOn[dep]; !ok {
				t.Errorf("gateway does not depend on %s", dep)
			}
		}
		if !slices.ContainsFunc(pg.Volumes, func(v string) bool {
			name, path, _ := strings.Cut(v, ":")
			_, declared := cf.Volumes[name]
			return declared && path == "/var/lib/postgresql/data"
		}) {
			t.Errorf("postgres volumes %v: want a named volume on /var/lib/postgresql/data", pg.Volumes)
		}

		// Traces go to the Jaeger service on its OTLP port for the protocol.
		ep, err := url.Parse(gwSvc.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
		wantPort := map[string]string{"http/protobuf": "4318", "grpc": "4317"}[gwSvc.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"]]
		if err != nil || ep.Hostname() != "jaeger" || ep.Port() != wantPort || !slices.Contains(jaeger.Expose, wantPort) {
			t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT = %q (protocol %q), want http://jaeger:%s exposed by the jaeger service",
				ep, gwSvc.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"], wantPort)
		}
	})

	t.Run("mounted config passes gateway check", func(t *testing.T) {
		// The command must parse with the real flags: run it as `check`.
		cmd := slices.Clone(gwSvc.Command)
		if len(cmd) == 0 || cmd[0] != "serve" {
			t.Fatalf("gateway command = %v, want serve with flags", cmd)
		}
		i := slices.Index(cmd, "--config")
		if i < 0 || i+1 >= len(cmd) {
			t.Fatalf("gateway command %v has no --config", cmd)
		}
		var hostPath string
		for _, v := range gwSvc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == cmd[i+1] {
				hostPath = filepath.Join("..", parts[0])
			}
		}
		if hostPath == "" {
			t.Fatalf("no volume mounts the config %s: %v", cmd[i+1], gwSvc.Volumes)
		}
		cmd[0], cmd[i+1] = "check", hostPath
		// config.Load reads os.environ/NAME from the process environment.
		for k, v := range gwSvc.Environment {
			t.Setenv(k, v)
		}
		var out, errOut bytes.Buffer
		if code := app.Main(context.Background(), cmd, &out, &errOut, mapEnv(gwSvc.Environment)); code != 0 {
			t.Fatalf("gateway %v = exit %d\nstdout: %s\nstderr: %s", cmd, code, out.String(), errOut.String())
		}
		if strings.Contains(out.String(), ": warning:") {
			t.Errorf("the compose config has warnings:\n%s", out.String())
		}

		// Every api_base names a compose service on the port it listens on.
		b, err := os.ReadFile(hostPath)
		if err != nil {
			t.Fatal(err)
		}
		mockListen := mock.Environment["MOCK_LISTEN"]
		if j := slices.Index(mock.Command, "--listen"); j >= 0 && j+1 < len(mock.Command) {
			mockListen = mock.Command[j+1]
		}
		_, mockPort, _ := net.SplitHostPort(mockListen)
		bases := regexp.MustCompile(`api_base:\s*(\S+)`).FindAllStringSubmatch(string(b), -1)
		if len(bases) == 0 {
			t.Error("the compose config sends nothing to the mock upstream")
		}
		for _, m := range bases {
			u, err := url.Parse(m[1])
			if err != nil || u.Hostname() != "mockupstream" || u.Port() != mockPort || !slices.Contains(mock.Expose, mockPort) {
				t.Errorf("api_base %s, want http://mockupstream:%s (its --listen, exposed)", m[1], mockPort)
			}
		}
	})

	t.Run("mockupstream service", func(t *testing.T) {
		if mock.Build == nil || stageNamed(stages, mock.Build.Target) == nil {
			t.Errorf("mockupstream build = %+v, want a Dockerfile stage as target", mock.Build)
		}
		src, err := os.ReadFile("../cmd/mockupstream/run.go")
		if err != nil {
			t.Fatal(err)
		}
		var flags []string
		for _, m := range regexp.MustCompile(`fs\.\w+Var\([^,]+, "([a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
			flags = append(flags, m[1])
		}
		for _, a := range mock.Command {
			if name, ok := strings.CutPrefix(a, "--"); ok && !slices.Contains(flags, name) {
				t.Errorf("mockupstream command flag --%s is not one of its flags %v", name, flags)
			}
		}
		if host, _, err := net.SplitHostPort(mock.Command[slices.Index(mock.Command, "--listen")+1]); err != nil || host != "0.0.0.0" {
			t.Errorf("mockupstream listens on %v, want 0.0.0.0:PORT", mock.Command)
		}
	})

	t.Run("prometheus and grafana", func(t *testing.T) {
		prom, graf := cf.Services["prometheus"], cf.Services["grafana"]
		// mounted returns the host file or folder (relative to tests/) that
		// svc mounts at path.
		mounted := func(svc composeService, path string) string {
			for _, v := range svc.Volumes {
				if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == path {
					return filepath.Join("..", parts[0])
				}
			}
			return ""
		}
		readYAML := func(path string, v any) {
			t.Helper()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}

		// Prometheus scrapes the gateway service on its listen port.
		cfgPath := "/etc/prometheus/prometheus.yml"
		for _, a := range prom.Command {
			if v, ok := strings.CutPrefix(a, "--config.file="); ok {
				cfgPath = v
			}
		}
		host := mounted(prom, cfgPath)
		if host == "" {
			t.Fatalf("prometheus mounts nothing at its config %s: %v", cfgPath, prom.Volumes)
		}
		var pc struct {
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				MetricsPath   string `yaml:"metrics_path"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		readYAML(host, &pc)
		_, gwPort, _ := net.SplitHostPort(listen)
		scraped := false
		for _, sc := range pc.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				if slices.Contains(st.Targets, "gateway:"+gwPort) && (sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
					scraped = true
				}
			}
		}
		if !scraped {
			t.Errorf("%s does not scrape gateway:%s/metrics: %+v", host, gwPort, pc.ScrapeConfigs)
		}
		if _, ok := prom.DependsOn["gateway"]; !ok {
			t.Error("prometheus does not depend on gateway")
		}

		// Grafana's data source is that Prometheus; its dashboard provider
		// reads a mounted folder that holds the regate dashboard.
		var ds struct {
			Datasources []struct {
				Type string `yaml:"type"`
				URL  string `yaml:"url"`
			} `yaml:"datasources"`
		}
		dsHost := mounted(graf, "/etc/grafana/provisioning/datasources/regate.yaml")
		if dsHost == "" {
			t.Fatalf("grafana mounts no data source provisioning: %v", graf.Volumes)
		}
		readYAML(dsHost, &ds)
		if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
			t.Fatalf("%s: data sources %+v, want one prometheus", dsHost, ds.Datasources)
		}
		if u, err := url.Parse(ds.Datasources[0].URL); err != nil || u.Hostname() != "prometheus" ||
			!slices.ContainsFunc(prom.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+u.Port()) }) {
			t.Errorf("data source URL %q, want http://prometheus:PORT on a port the prometheus service has (%v)", ds.Datasources[0].URL, prom.Ports)
		}
		var dp struct {
			Providers []struct {
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		dpHost := mounted(graf, "/etc/grafana/provisioning/dashboards/regate.yaml")
		if dpHost == "" {
			t.Fatalf("grafana mounts no dashboard provisioning: %v", graf.Volumes)
		}
		readYAML(dpHost, &dp)
		if len(dp.Providers) != 1 {
			t.Fatalf("%s: providers %+v, want one", dpHost, dp.Providers)
		}
		dir := mounted(graf, dp.Providers[0].Options.Path)
		if dir == "" || filepath.Join(dir, "regate.json") != filepath.Clean(dashboardPath) {
			t.Errorf("grafana mounts %q at the provider's path %s, want the folder of %s", dir, dp.Providers[0].Options.Path, dashboardPath)
		}
		if p := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; p != "" && p != dp.Providers[0].Options.Path+"/regate.json" {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH = %s, want the provisioned regate.json", p)
		}
	})

	t.Run("readme", func(t *testing.T) {
		b, err := os.ReadFile("../README.md")
		if err != nil {
			t.Fatal(err)
		}
		readme := string(b)
		i := strings.Index(readme, "## Run the full stack")
		if i < 0 {
			t.Fatal(`README.md has no "Run the full stack" section`)
		}
		section := readme[i:]
		if j := strings.Index(section[3:], "\n## "); j >= 0 {
			section = section[:j+3]
		}
		_, gwPort, _ := net.SplitHostPort(listen)
		for _, want := range []string{"docker compose up", "localhost:" + gwPort, "localhost:16686", "/metrics", "sk-demo-compose-alice-0001", "localhost:3000", "localhost:9090"} {
			if !strings.Contains(section, want) {
				t.Errorf("README's full-stack section does not mention %q", want)
			}
		}
		if !slices.Contains(jaeger.Ports, "16686:16686") {
			t.Errorf("jaeger ports %v, want the UI on 16686", jaeger.Ports)
		}
	})
}

func noEnv(string) (string, bool) { return "", false }

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
