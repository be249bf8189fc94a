package deploy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// haManifest decodes the high-availability manifest, keyed by kind.
func haManifest(t *testing.T) map[string]k8sObject {
	t.Helper()
	objs := decodeManifest(t, haManifestPath, "Secret", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy")
	require.NotContains(t, objs, "PersistentVolumeClaim", "the replicas keep no state of their own")
	return objs
}

// haDeploymentSpec is what the high-availability tests read of the
// Deployment beyond deploymentSpec.
type haDeploymentSpec struct {
	Strategy struct {
		RollingUpdate struct {
			MaxSurge       yaml.Node `yaml:"maxSurge"`
			MaxUnavailable yaml.Node `yaml:"maxUnavailable"`
		} `yaml:"rollingUpdate"`
	} `yaml:"strategy"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TopologySpreadConstraints []struct {
				TopologyKey       string `yaml:"topologyKey"`
				WhenUnsatisfiable string `yaml:"whenUnsatisfiable"`
				LabelSelector     struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"labelSelector"`
			} `yaml:"topologySpreadConstraints"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type pdbSpec struct {
	MinAvailable   yaml.Node `yaml:"minAvailable"`
	MaxUnavailable yaml.Node `yaml:"maxUnavailable"`
	Selector       struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
}

// count resolves an int-or-percent field against total replicas (rounding
// as Kubernetes does for the field: up for surge and minAvailable, down
// for maxUnavailable); set is false for an absent field.
func count(t *testing.T, n yaml.Node, total int, roundUp bool) (value int, set bool) {
	t.Helper()
	if n.Kind == 0 {
		return 0, false
	}
	raw := n.Value
	if pct, ok := strings.CutSuffix(raw, "%"); ok {
		p, err := strconv.Atoi(pct)
		require.NoError(t, err, raw)
		v := p * total / 100
		if roundUp && p*total%100 != 0 {
			v++
		}
		return v, true
	}
	v, err := strconv.Atoi(raw)
	require.NoError(t, err, raw)
	return v, true
}

func TestTheHighAvailabilityDeploymentNeverTakesEveryReplicaAway(t *testing.T) {
	objs := haManifest(t)
	spec, c := theContainer(t, objs)
	env := containerEnv(t, objs, c)
	var ha haDeploymentSpec
	d := objs["Deployment"]
	require.NoError(t, d.Spec.Decode(&ha))

	require.Equal(t, 3, spec.Replicas)
	labels := ha.Template.Metadata.Labels
	require.NotEmpty(t, ha.Selector.MatchLabels)
	for k, v := range ha.Selector.MatchLabels {
		require.Equal(t, v, labels[k], "the Deployment selects its own pods")
	}

	// A rolling update adds a ready pod before it removes one.
	require.Equal(t, "RollingUpdate", spec.Strategy.Type, "instances on one database may overlap")
	surge, _ := count(t, ha.Strategy.RollingUpdate.MaxSurge, spec.Replicas, true)
	unavailable, set := count(t, ha.Strategy.RollingUpdate.MaxUnavailable, spec.Replicas, false)
	require.True(t, set, "maxUnavailable is explicit")
	require.Zero(t, unavailable, "no replica goes before its successor is ready")
	require.Positive(t, surge)

	// Voluntary disruptions leave replicas serving, and can still proceed.
	var pdb pdbSpec
	pdbObj := objs["PodDisruptionBudget"]
	require.Equal(t, "policy/v1", pdbObj.APIVersion)
	require.Equal(t, d.Metadata.Namespace, pdbObj.Metadata.Namespace)
	require.NoError(t, pdbObj.Spec.Decode(&pdb))
	require.Equal(t, ha.Selector.MatchLabels, pdb.Selector.MatchLabels, "the budget covers the Deployment's pods")
	allowed := 0
	if v, ok := count(t, pdb.MaxUnavailable, spec.Replicas, false); ok {
		allowed = v
	} else if v, ok := count(t, pdb.MinAvailable, spec.Replicas, true); ok {
		allowed = spec.Replicas - v
	}
	require.Positive(t, allowed, "a budget that allows no disruption blocks node drains forever")
	require.LessOrEqual(t, allowed, spec.Replicas-2, "two replicas keep serving while one moves")

	// Spread over nodes: one node's loss is not every replica's.
	hostSpread := false
	for _, tsc := range ha.Template.Spec.TopologySpreadConstraints {
		require.Equal(t, ha.Selector.MatchLabels, tsc.LabelSelector.MatchLabels)
		if tsc.TopologyKey == "kubernetes.io/hostname" && tsc.WhenUnsatisfiable == "DoNotSchedule" {
			hostSpread = true
		}
	}
	require.True(t, hostSpread, "replicas are spread over nodes")

	requireProbedOnTheAdminPortOnly(t, objs, spec, c, env)
}

func TestTheHighAvailabilityDeploymentReadsTheDatabaseAndTheKeyFromTheSecret(t *testing.T) {
	objs := haManifest(t)
	spec, c := theContainer(t, objs)
	env := containerEnv(t, objs, c)

	require.NotContains(t, env, config.EnvPrefix+"STORE_PATH", "the store is the database")
	for _, v := range spec.Template.Spec.Volumes {
		require.Nil(t, v.PersistentVolumeClaim, "no volume of state: any pod may serve any request")
	}
	require.Contains(t, env, config.EnvPrefix+"DATABASE_URL_FILE", "the URL holds the password: a file from the Secret")

	dir := t.TempDir()
	const databaseURL = "postgres://oidcproxy:db-password-for-the-test@db.internal:5432/oidcproxy?sslmode=verify-full"
	secretsAsFiles(t, objs, spec, c, env, dir, map[string]string{
		"client_secret": testSecret, "encryption_key": testKey, "admin_token": testAdminToken, "database_url": databaseURL,
	})
	require.NoError(t, validate(t, env), "the manifest's settings, with real secrets, pass validation")

	// The placeholders of the Secret stop a server instead of starting one
	// on a database nobody chose or with a key everyone knows.
	secret := objs["Secret"]
	for _, key := range []string{"database_url", "encryption_key"} {
		setting := map[string]string{"database_url": "DATABASE_URL", "encryption_key": "ENCRYPTION_KEY"}[key]
		saved := env[config.EnvPrefix+setting+"_FILE"]
		env[config.EnvPrefix+setting+"_FILE"] = writeSecret(t, dir, "placeholder_"+key, secret.StringData[key])
		require.ErrorContains(t, validate(t, env), config.EnvPrefix+setting)
		env[config.EnvPrefix+setting+"_FILE"] = saved
	}
	// And the database URL without the key is refused: replicas cannot
	// share a generated key file.
	delete(env, config.EnvPrefix+"ENCRYPTION_KEY_FILE")
	require.ErrorContains(t, validate(t, env), config.EnvPrefix+"ENCRYPTION_KEY")
}
