// Package deploy_test checks the deployment files in this folder and the
// Dockerfile against the code: every OIDC_PROXY_* name they use is a real
// setting, the example configurations load and validate, the probes point
// at the health endpoints on the admin port, and secrets travel as files.
// Neither Docker, systemd nor a Kubernetes cluster is needed to run it.
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// root is the repository root, seen from this package's directory.
const root = ".."

var (
	manifestPath   = filepath.Join(root, "deploy", "kubernetes", "oidcproxy.yaml")
	haManifestPath = filepath.Join(root, "deploy", "kubernetes", "oidcproxy-ha.yaml")
	unitPath       = filepath.Join(root, "deploy", "systemd", "oidcproxy.service")
	envExamplePath = filepath.Join(root, "deploy", "systemd", "oidcproxy.env.example")
	dockerfilePath = filepath.Join(root, "Dockerfile")
)

// A valid encryption key and client secret for loading the examples.
const (
	testKey    = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	testSecret = "client-secret-for-the-test"
	// testAdminToken looks like `openssl rand -base64 32`.
	testAdminToken = "c2VjcmV0LWFkbWluLXRva2VuLWZvci10aGUtdGVzdA=="
)

// The admin port the health probes must use, and its paths.
const (
	adminPort = "9090"
	livePath  = "/healthz"
	readyPath = "/readyz"
)

// knownSettings are the environment variables oidcproxy reads: every
// setting, every secret's _FILE variant, and the config-file variable.
func knownSettings() map[string]bool {
	known := map[string]bool{config.ConfigEnv: true}
	for _, f := range config.Fields(oidcproxy.ProviderSections()) {
		known[f.Env] = true
		if f.FileEnv != "" {
			known[f.FileEnv] = true
		}
	}
	return known
}

// validate loads a configuration from env alone, as the process would,
// and validates it like `oidcproxy serve`.
func validate(t *testing.T, env map[string]string) error {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, oidcproxy.ProviderSections())
	if err != nil {
		return err
	}
	return cfg.Validate(config.ValidateOptions{RequireUpstream: true, Provider: oidcproxy.ValidateProvider})
}

// writeSecret writes one secret file into dir and returns its path.
func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(value+"\n"), 0o600))
	return p
}

func TestTheDeploymentFilesNameOnlyRealSettings(t *testing.T) {
	known := knownSettings()
	name := regexp.MustCompile(`OIDC_PROXY_[A-Z0-9_]*[A-Z0-9]`)
	files := []string{
		dockerfilePath, unitPath, envExamplePath, manifestPath, haManifestPath,
		filepath.Join(root, "docs", "operations.md"),
		filepath.Join(root, "docs", "deployment.md"),
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		found := name.FindAllString(string(data), -1)
		require.NotEmpty(t, found, "%s names no setting at all; is the pattern still right?", file)
		for _, n := range found {
			require.True(t, known[n], "%s uses %s, which is not an oidcproxy setting (see config.Fields)", file, n)
		}
	}
}

// k8sObject holds what the tests read of any manifest document.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string `yaml:"name"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort string `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	ReadinessProbe probe `yaml:"readinessProbe"`
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Strategy struct {
		Type string `yaml:"type"`
	} `yaml:"strategy"`
	Template struct {
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
			Volumes    []struct {
				Name                  string `yaml:"name"`
				PersistentVolumeClaim *struct {
					ClaimName string `yaml:"claimName"`
				} `yaml:"persistentVolumeClaim"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type networkPolicySpec struct {
	Ingress []struct {
		From  []yaml.Node `yaml:"from"`
		Ports []struct {
			Port string `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"ingress"`
}

type serviceSpec struct {
	Ports []struct {
		Port       string `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// manifest decodes every document of the Kubernetes manifest, keyed by kind.
func manifest(t *testing.T) map[string]k8sObject {
	t.Helper()
	return decodeManifest(t, manifestPath, "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy")
}

// decodeManifest decodes every document of the manifest at path, keyed by
// kind, and requires the kinds given.
func decodeManifest(t *testing.T, path string, kinds ...string) map[string]k8sObject {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	out := map[string]k8sObject{}
	for {
		var obj k8sObject
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "every document in %s parses", path)
		require.NotEmpty(t, obj.APIVersion, "document %d has an apiVersion", len(out))
		require.NotEmpty(t, obj.Metadata.Name, "%s has a name", obj.Kind)
		_, dup := out[obj.Kind]
		require.False(t, dup, "one %s only", obj.Kind)
		out[obj.Kind] = obj
	}
	for _, kind := range kinds {
		require.Contains(t, out, kind, path)
	}
	return out
}

// theContainer returns the Deployment's spec and its one container.
func theContainer(t *testing.T, objs map[string]k8sObject) (deploymentSpec, container) {
	t.Helper()
	var spec deploymentSpec
	d := objs["Deployment"]
	require.NoError(t, d.Spec.Decode(&spec))
	require.Len(t, spec.Template.Spec.Containers, 1)
	return spec, spec.Template.Spec.Containers[0]
}

// containerEnv is the environment the container starts with: the
// ConfigMap's data, overridden by the container's own env entries (the
// precedence Kubernetes applies).
func containerEnv(t *testing.T, objs map[string]k8sObject, c container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef, "envFrom reads only the ConfigMap")
		require.Equal(t, objs["ConfigMap"].Metadata.Name, from.ConfigMapRef.Name)
		for k, v := range objs["ConfigMap"].Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func TestTheKubernetesDeploymentIsOneWriterProbedOnTheAdminPort(t *testing.T) {
	objs := manifest(t)
	spec, c := theContainer(t, objs)
	env := containerEnv(t, objs, c)

	require.Equal(t, 1, spec.Replicas, "bbolt has one writer per file")
	require.Equal(t, "Recreate", spec.Strategy.Type, "a rolling update would start a second pod on the locked file")

	requireProbedOnTheAdminPortOnly(t, objs, spec, c, env)
}

// requireProbedOnTheAdminPortOnly checks what every manifest's pod must
// get right: the probes hit /healthz and /readyz on the admin port, which
// binds beyond loopback for them and stays out of the Service and behind
// the NetworkPolicy; the pod runs unprivileged on a read-only root.
func requireProbedOnTheAdminPortOnly(t *testing.T, objs map[string]k8sObject, spec deploymentSpec, c container, env map[string]string) {
	t.Helper()
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	resolve := func(port string) string {
		if n, ok := ports[port]; ok {
			return n
		}
		return port
	}
	for _, tc := range []struct {
		name string
		p    probe
		path string
	}{
		{"liveness", c.LivenessProbe, livePath},
		{"readiness", c.ReadinessProbe, readyPath},
	} {
		require.NotNil(t, tc.p.HTTPGet, "%s probe is an HTTP GET", tc.name)
		require.Equal(t, tc.path, tc.p.HTTPGet.Path, "%s probe path", tc.name)
		require.Equal(t, adminPort, resolve(tc.p.HTTPGet.Port), "%s probe port", tc.name)
	}

	// The probes only reach the admin listener if it binds beyond loopback,
	// on the probed port.
	host, port, err := net.SplitHostPort(env[config.EnvPrefix+"ADMIN_ADDR"])
	require.NoError(t, err, "OIDC_PROXY_ADMIN_ADDR is set for the probes")
	require.Equal(t, adminPort, port)
	require.False(t, host == "127.0.0.1" || host == "localhost" || host == "::1", "the admin listener must not be loopback-only in a pod")
	_, port, err = net.SplitHostPort(env[config.EnvPrefix+"LISTEN_ADDR"])
	require.NoError(t, err)
	require.Equal(t, port, ports["http"], "the http container port is the public listener")

	var svc serviceSpec
	svcObj := objs["Service"]
	require.NoError(t, svcObj.Spec.Decode(&svc))
	require.Len(t, svc.Ports, 1, "the Service exposes the public port only, not the admin one")
	require.Equal(t, "80", svc.Ports[0].Port)
	require.Equal(t, ports["http"], resolve(svc.Ports[0].TargetPort))

	// The admin listener rotates keys and streams backups (behind its
	// token): no ingress rule may open its port to everyone.
	var policy networkPolicySpec
	policyObj := objs["NetworkPolicy"]
	require.NoError(t, policyObj.Spec.Decode(&policy))
	adminRules := 0
	for _, rule := range policy.Ingress {
		for _, p := range rule.Ports {
			if resolve(p.Port) == adminPort {
				adminRules++
				require.NotEmpty(t, rule.From, "the admin port is open only to named sources")
			}
		}
		if len(rule.Ports) == 0 {
			require.NotEmpty(t, rule.From, "a rule without ports opens every port, the admin one included")
		}
	}
	require.Equal(t, 1, adminRules, "one rule admits scrapers to the admin port")

	require.True(t, spec.Template.Spec.SecurityContext.RunAsNonRoot)
	require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	require.True(t, c.SecurityContext.ReadOnlyRootFilesystem)
	require.Equal(t, []string{"ALL"}, c.SecurityContext.Capabilities.Drop)
}

func TestTheKubernetesStoreIsOnTheVolumeAndSecretsAreFiles(t *testing.T) {
	objs := manifest(t)
	spec, c := theContainer(t, objs)
	env := containerEnv(t, objs, c)

	volumeOf := mountedVolume(c)
	vol, _ := volumeOf(env[config.EnvPrefix+"STORE_PATH"])
	require.NotEmpty(t, vol, "the store (and the key file beside it) must be on a mounted volume: the root file system is read-only")
	claim := ""
	for _, v := range spec.Template.Spec.Volumes {
		if v.Name == vol && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	require.Equal(t, objs["PersistentVolumeClaim"].Metadata.Name, claim, "the store's volume is the PersistentVolumeClaim")

	secret := objs["Secret"]
	dir := t.TempDir()
	secretsAsFiles(t, objs, spec, c, env, dir, map[string]string{"client_secret": testSecret, "encryption_key": testKey, "admin_token": testAdminToken})
	require.NoError(t, validate(t, env), "the manifest's settings, with real secrets, pass validation")

	// Applying the placeholder Secret unchanged must not start a server
	// with a key everyone knows.
	env[config.EnvPrefix+"ENCRYPTION_KEY_FILE"] = writeSecret(t, dir, "placeholder", secret.StringData["encryption_key"])
	err := validate(t, env)
	require.ErrorContains(t, err, config.EnvPrefix+"ENCRYPTION_KEY")
	// Nor with an admin token everyone knows.
	env[config.EnvPrefix+"ENCRYPTION_KEY_FILE"] = writeSecret(t, dir, "encryption_key", testKey)
	env[config.EnvPrefix+"ADMIN_TOKEN_FILE"] = writeSecret(t, dir, "admin_placeholder", secret.StringData["admin_token"])
	err = validate(t, env)
	require.ErrorContains(t, err, config.EnvPrefix+"ADMIN_TOKEN")
}

// mountedVolume returns a function that names the volume a path of the
// container lies in, and the path inside it.
func mountedVolume(c container) func(p string) (vol, rel string) {
	mounts := map[string]string{} // mount path → volume name
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	return func(p string) (string, string) {
		for dir, vol := range mounts {
			if rel, ok := strings.CutPrefix(p, dir+"/"); ok {
				return vol, rel
			}
		}
		return "", ""
	}
}

// secretsAsFiles checks that every secret setting reaches the container as
// a file of the manifest's Secret, never as a variable, and points env's
// *_FILE settings at files in dir holding the values of local (keyed by
// the Secret's keys), as the mounted Secret would hold them.
func secretsAsFiles(t *testing.T, objs map[string]k8sObject, spec deploymentSpec, c container, env map[string]string, dir string, local map[string]string) {
	t.Helper()
	volumeOf := mountedVolume(c)
	secret := objs["Secret"]
	for _, f := range config.Fields(oidcproxy.ProviderSections()) {
		if !f.Secret {
			continue
		}
		require.NotContains(t, env, f.Env, "%s must come from the Secret as a file, not as a variable", f.Env)
		p, ok := env[f.FileEnv]
		if !ok {
			continue
		}
		vol, key := volumeOf(p)
		require.NotEmpty(t, vol, "%s points into a mounted volume", f.FileEnv)
		var secretName string
		for _, v := range spec.Template.Spec.Volumes {
			if v.Name == vol && v.Secret != nil {
				secretName = v.Secret.SecretName
			}
		}
		require.Equal(t, secret.Metadata.Name, secretName, "%s points into the Secret's volume", f.FileEnv)
		require.Contains(t, secret.StringData, key, "the Secret holds %s", key)
		require.Contains(t, local, key)
		env[f.FileEnv] = writeSecret(t, dir, key, local[key])
	}
	require.Contains(t, env, config.EnvPrefix+"CLIENT_SECRET_FILE")
	require.Contains(t, env, config.EnvPrefix+"ENCRYPTION_KEY_FILE")
	require.Contains(t, env, config.EnvPrefix+"ADMIN_TOKEN_FILE", "the admin listener binds beyond loopback, so it needs a token")
}

// systemdUnit reads the [Service] section of the unit as (key, value)
// pairs in file order; repeated keys are kept.
func systemdUnit(t *testing.T) [][2]string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	var out [][2]string
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%q is key=value", line)
			out = append(out, [2]string{k, v})
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// envFile reads KEY=value lines, as both systemd and sh read them.
func envFile(t *testing.T, p string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%q is KEY=value", line)
		require.NotContains(t, v, `"`, "keep values unquoted: systemd and sh would disagree")
		env[k] = v
	}
	return env
}

func TestTheSystemdUnitIsHardened(t *testing.T) {
	unit := systemdUnit(t)
	has := func(k, v string) bool { return slices.Contains(unit, [2]string{k, v}) }
	for _, want := range [][2]string{
		{"DynamicUser", "yes"},
		{"StateDirectory", "oidcproxy"},
		{"ProtectSystem", "strict"},
		{"NoNewPrivileges", "yes"},
		{"PrivateTmp", "yes"},
		{"CapabilityBoundingSet", ""},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"EnvironmentFile", "/etc/oidcproxy/oidcproxy.env"},
	} {
		require.True(t, has(want[0], want[1]), "the unit sets %s=%s", want[0], want[1])
	}
}

func TestTheSystemdUnitAndItsEnvFileMakeAValidConfiguration(t *testing.T) {
	unit := systemdUnit(t)
	state, creds := t.TempDir(), t.TempDir()
	local := map[string]string{"client_secret": testSecret, "encryption_key": testKey, "admin_token": testAdminToken}
	// The specifiers the unit uses: %S the state root, %d the credentials.
	specifiers := strings.NewReplacer("%S", state, "%d", creds)

	env := map[string]string{}
	credentials := map[string]bool{}
	for _, kv := range unit {
		switch kv[0] {
		case "Environment":
			k, v, ok := strings.Cut(kv[1], "=")
			require.True(t, ok)
			env[k] = specifiers.Replace(v)
		case "LoadCredential":
			name, _, ok := strings.Cut(kv[1], ":")
			require.True(t, ok, "LoadCredential=name:path")
			require.Contains(t, local, name, "a credential the test knows how to fill")
			writeSecret(t, creds, name, local[name])
			credentials[name] = true
		}
	}
	for k, v := range env {
		if rel, ok := strings.CutPrefix(v, creds+"/"); ok {
			require.True(t, credentials[rel], "%s reads credential %s, which no LoadCredential= provides", k, rel)
		}
	}
	for _, f := range config.Fields(oidcproxy.ProviderSections()) {
		if f.Secret && env[f.FileEnv] == "" && f.Name != "IntrospectionSecret" && f.Name != "AdminToken" && f.Name != "DatabaseURL" { // optional secrets
			t.Errorf("the unit passes %s as a credential through %s", f.Env, f.FileEnv)
		}
	}

	// EnvironmentFile= overrides Environment=, as in systemd.
	example := envFile(t, envExamplePath)
	for _, f := range config.Fields(oidcproxy.ProviderSections()) {
		if f.Secret {
			require.NotContains(t, example, f.Env, "secrets are credentials, not environment")
			if env[f.FileEnv] != "" {
				require.NotContains(t, example, f.FileEnv, "the unit already sets it")
			}
		}
	}
	for k, v := range example {
		env[k] = v
	}

	store := env[config.EnvPrefix+"STORE_PATH"]
	require.Equal(t, filepath.Join(state, "oidcproxy"), filepath.Dir(store), "the store lives in StateDirectory=oidcproxy")
	require.NoError(t, validate(t, env))
}

// dockerInstructions reads a Dockerfile into (instruction, arguments)
// pairs, joining continuation lines and dropping comments.
func dockerInstructions(t *testing.T) [][2]string {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	require.NoError(t, err)
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		instr, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestTheDockerfileBuildsWithGoModsToolchain(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, m, "go.mod has a go line")

	var goVersion string
	for _, in := range dockerInstructions(t) {
		if v, ok := strings.CutPrefix(in[1], "GO_VERSION="); in[0] == "ARG" && ok {
			goVersion = v
		}
	}
	require.Equal(t, string(m[1]), goVersion,
		"the golang image sets GOTOOLCHAIN=local, so the Dockerfile's GO_VERSION must be go.mod's go line")
}

func TestTheImageEnvironmentExposesItsListenersAndKeepsTheStoreOnTheVolume(t *testing.T) {
	env := map[string]string{}
	var exposed, volumes []string
	final := false
	for _, in := range dockerInstructions(t) {
		switch in[0] {
		case "FROM":
			// Only the last stage's settings reach the image.
			final = strings.Contains(in[1], "distroless")
			env = map[string]string{}
		case "ENV":
			if final {
				for _, kv := range strings.Fields(in[1]) {
					k, v, ok := strings.Cut(kv, "=")
					require.True(t, ok, "ENV key=value")
					env[k] = v
				}
			}
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in[1])...)
		case "VOLUME":
			volumes = append(volumes, strings.Trim(in[1], `[]" `))
		}
	}
	require.True(t, final, "the final stage is distroless")

	host, port, err := net.SplitHostPort(env[config.EnvPrefix+"LISTEN_ADDR"])
	require.NoError(t, err, "the image sets LISTEN_ADDR")
	require.Contains(t, exposed, port, "LISTEN_ADDR's port is exposed")
	require.NotContains(t, []string{"127.0.0.1", "localhost", "::1"}, host, "LISTEN_ADDR is reachable from outside the container")
	// The admin listener stays on its loopback default: beyond loopback it
	// needs ADMIN_TOKEN, which an image cannot ship.
	require.NotContains(t, env, config.EnvPrefix+"ADMIN_ADDR")
	require.Contains(t, volumes, path.Dir(env[config.EnvPrefix+"STORE_PATH"]), "the store is on the volume")

	dir := t.TempDir()
	env[config.EnvPrefix+"STORE_PATH"] = filepath.Join(dir, "oidcproxy.db")
	env[config.EnvPrefix+"BASE_URL"] = "https://mcp-auth.example.com"
	env[config.EnvPrefix+"CONFIG_URL"] = "https://login.example.com/.well-known/openid-configuration"
	env[config.EnvPrefix+"CLIENT_ID"] = "oidcproxy"
	env[config.EnvPrefix+"CLIENT_SECRET_FILE"] = writeSecret(t, dir, "client_secret", testSecret)
	require.NoError(t, validate(t, env), "the image's settings plus the required ones pass validation")
}

func TestTheDockerBuildContextKeepsEverythingTheBinaryNeeds(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var ignored []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			ignored = append(ignored, strings.TrimPrefix(line, "/"))
		}
	}

	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "../cmd/oidcproxy").Output()
	require.NoError(t, err)
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, dir)
		require.NoError(t, err)
		needed = append(needed, filepath.ToSlash(rel))
	}
	require.Greater(t, len(needed), 5, "go list found the command's packages")

	for _, p := range needed {
		for _, pattern := range ignored {
			// Docker matches each path and each of its parents.
			for q := p; q != "." && q != "/"; q = path.Dir(q) {
				match, err := path.Match(strings.ReplaceAll(pattern, "**/", ""), path.Base(q))
				require.NoError(t, err)
				whole, err := path.Match(pattern, q)
				require.NoError(t, err)
				require.False(t, whole || (strings.HasPrefix(pattern, "**/") && match),
					".dockerignore pattern %q drops %s, which `go build ./cmd/oidcproxy` needs", pattern, p)
			}
		}
	}
}
