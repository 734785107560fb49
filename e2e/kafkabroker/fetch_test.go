package kafkabroker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPomMatchesVersion(t *testing.T) {
	assert.Contains(t, string(pomXML), "<kafka.version>"+Version+"</kafka.version>")
	sums, err := parseSums(jarSums)
	require.NoError(t, err)
	for _, jar := range []string{
		serverJar,
		"kafka-server-" + Version + ".jar",
		"kafka-raft-" + Version + ".jar",
		"kafka-metadata-" + Version + ".jar",
		"kafka-storage-" + Version + ".jar",
		"kafka-group-coordinator-" + Version + ".jar",
		"kafka-transaction-coordinator-" + Version + ".jar",
		"kafka-share-coordinator-" + Version + ".jar",
		"kafka-clients-" + Version + ".jar",
	} {
		assert.Contains(t, sums, jar, "maven/jars.sha256 pins %s", jar)
	}
	var binding bool
	for name := range sums {
		binding = binding || strings.HasPrefix(name, "log4j-slf4j")
	}
	assert.True(t, binding, "an slf4j binding is pinned, so the broker logs")
}

func TestParseSums(t *testing.T) {
	const sum = "22d1d4316c4ec13a68b559e98c8256d69071593731da96136640f864fa14fad8"
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "sha256sum output", in: "# c\n\n" + sum + "  a.jar\n" + strings.ToUpper(sum) + " *b.jar\n",
			want: map[string]string{"a.jar": sum, "b.jar": sum}},
		{name: "empty", in: "# nothing\n", wantErr: "no jars listed"},
		{name: "short sum", in: "abcd  a.jar\n", wantErr: "line 1"},
		{name: "not hex", in: strings.Repeat("z", 64) + "  a.jar\n", wantErr: "line 1"},
		{name: "no name", in: sum + "\n", wantErr: "line 1"},
		{name: "path", in: sum + "  ../a.jar\n", wantErr: "line 1"},
		{name: "duplicate", in: sum + "  a.jar\n" + sum + "  a.jar\n", wantErr: "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSums([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseSums(f *testing.F) {
	f.Add(jarSums)
	f.Add([]byte("x  y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, err := parseSums(b)
		if err != nil {
			return
		}
		for name, sum := range sums {
			if len(sum) != 64 || name == "" || strings.ContainsAny(name, `/\`) {
				t.Fatalf("accepted %q -> %q", name, sum)
			}
		}
	})
}

func TestVerifySums(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.jar"), []byte("a"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.jar"), []byte("b"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644))
	sums, err := SumJars(dir)
	require.NoError(t, err)
	pinned, err := parseSums([]byte(sums))
	require.NoError(t, err)
	require.NoError(t, verifySums(dir, pinned))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.jar"), []byte("tampered"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.jar"), []byte("c"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(dir, "a.jar")))
	err = verifySums(dir, pinned)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing a.jar")
	assert.Contains(t, err.Error(), "b.jar: sha256")
	assert.Contains(t, err.Error(), "unexpected c.jar")
}

func TestVerifyLib(t *testing.T) {
	want, err := expectedMarker()
	require.NoError(t, err)
	dir := t.TempDir()
	require.Error(t, verifyLib(dir, want), "no marker")
	require.NoError(t, os.WriteFile(filepath.Join(dir, markerName), want, 0o644))
	require.ErrorContains(t, verifyLib(dir, want), "checking cached jar", "marker but no jars")
	pinned, err := parseSums(jarSums)
	require.NoError(t, err)
	for name := range pinned {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}
	require.NoError(t, verifyLib(dir, want))
	require.Error(t, verifyLib(dir, append(bytes.Clone(want), "jar other.jar\n"...)), "stale marker")
}

func TestEnsureUsesLibsEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LibsEnv, dir)
	_, err := Ensure(t.Context(), nil)
	require.ErrorContains(t, err, "no kafka_2.13-*.jar")
	require.NoError(t, os.WriteFile(filepath.Join(dir, serverJar), nil, 0o644))
	got, err := Ensure(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, dir, got)
}

func TestEnsureWithoutMaven(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := Ensure(t.Context(), nil)
	require.ErrorIs(t, err, ErrMavenNotFound)
	assert.Contains(t, err.Error(), "apt-get install maven")
}

func TestMavenOutput(t *testing.T) {
	var progress bytes.Buffer
	m := &mavenOutput{progress: &progress}
	in := "[INFO] Scanning for projects...\n" +
		"[INFO] Downloaded from central: https://repo.example/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.jar (6.9 MB at 12 MB/s)\n" +
		"[INFO] Downloaded from central: https://repo.example/x/y.pom (1 kB at 1 MB/s)\n" +
		"[ERROR] Failed to execute goal\r\n" +
		"partial"
	for _, chunk := range []string{in[:17], in[17:90], in[90:]} { // lines split across writes
		_, err := m.Write([]byte(chunk))
		require.NoError(t, err)
	}
	assert.Equal(t, "kafka: downloaded kafka_2.13-4.4.0.jar (6.9 MB at 12 MB/s)\nkafka: mvn: [ERROR] Failed to execute goal\n", progress.String())
	assert.Contains(t, m.tail(), "Scanning for projects")

	for range 2 * tailLines {
		_, _ = m.Write([]byte("[INFO] line\n"))
	}
	assert.Len(t, m.lines, tailLines)
}

func TestParseJavaVersion(t *testing.T) {
	tests := []struct {
		out  string
		want int
	}{
		{`openjdk version "17.0.15" 2025-04-15`, 17},
		{`java version "1.8.0_392"`, 8},
		{`openjdk version "21" 2023-09-19`, 21},
		{"Picked up JAVA_TOOL_OPTIONS: -Xss1m\nopenjdk version \"25-ea\" 2025-09-16", 25},
		{`openjdk version "11.0.2" 2019-01-15 LTS`, 11},
	}
	for _, tt := range tests {
		got, err := parseJavaVersion(tt.out)
		require.NoError(t, err, tt.out)
		assert.Equal(t, tt.want, got, tt.out)
	}
	_, err := parseJavaVersion("bash: java: command not found")
	require.Error(t, err)
}

func FuzzParseJavaVersion(f *testing.F) {
	f.Add(`openjdk version "17.0.15" 2025-04-15`)
	f.Add(`java version "1.8.0_392"`)
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseJavaVersion(s); err == nil && v < 0 {
			t.Fatalf("negative version %d from %q", v, s)
		}
	})
}

// TestClusterIDNeverLooksLikeAnOption: kafka-storage format reads an id
// starting with '-' as an option; one random id in 64 did, and the broker
// then failed to start.
func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	seen := map[string]bool{}
	for range 20_000 {
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if id[0] == '-' || len(id) != 22 {
			t.Fatalf("cluster id %q", id)
		}
		seen[id] = true
	}
	if len(seen) != 20_000 {
		t.Fatalf("%d distinct ids of 20000", len(seen))
	}
}
