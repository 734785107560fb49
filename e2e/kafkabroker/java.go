package kafkabroker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// MinJavaVersion is the lowest Java feature release that runs a Kafka 4 broker.
const MinJavaVersion = 17

// JavaAvailable reports the java executable to run the broker with ($JAVA_HOME/bin/java
// when JAVA_HOME is set, otherwise java from PATH) and whether its `java -version`
// is MinJavaVersion or newer. It runs a short-lived process; safe for concurrent use.
func JavaAvailable() (path string, ok bool) {
	path, major, err := javaVersion(context.Background())
	return path, err == nil && major >= MinJavaVersion
}

// javaVersion finds java and returns its feature release (8 for 1.8, 17 for 17.0.15).
func javaVersion(ctx context.Context) (string, int, error) {
	path := ""
	if home := os.Getenv("JAVA_HOME"); home != "" {
		candidate := filepath.Join(home, "bin", "java")
		if st, err := os.Stat(candidate); err == nil && !st.IsDir() {
			path = candidate
		}
	}
	if path == "" {
		p, err := exec.LookPath("java")
		if err != nil {
			return "", 0, fmt.Errorf("finding java: %w", err)
		}
		path = p
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-version").CombinedOutput()
	if err != nil {
		return path, 0, fmt.Errorf("running %s -version: %w", path, err)
	}
	major, err := parseJavaVersion(string(out))
	if err != nil {
		return path, 0, err
	}
	return path, major, nil
}

var javaVersionRE = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?[^"]*"`)

// parseJavaVersion extracts the feature release from `java -version` output.
func parseJavaVersion(out string) (int, error) {
	m := javaVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("parsing java -version output %q: no version found", firstLine(out))
	}
	major, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, fmt.Errorf("parsing java version %q: %w", m[0], err)
	}
	if major == 1 && m[2] != "" { // 1.8.0_392 style
		major, err = strconv.Atoi(m[2])
		if err != nil {
			return 0, fmt.Errorf("parsing java version %q: %w", m[0], err)
		}
	}
	return major, nil
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
