package kafkabroker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config describes a single-node KRaft broker (broker and controller in one JVM).
type Config struct {
	// Dir holds server.properties, log4j2.properties, kafka.log (the JVM's output,
	// appended across restarts) and data/ (the log dir). Required; created if missing.
	Dir string
	// Port is the PLAINTEXT listener on 127.0.0.1; 0 picks a free port, and
	// Restart keeps it. When both ports are 0 and another process takes one
	// before the JVM binds it, Start picks again (3 attempts in all).
	Port int
	// ControllerPort is the CONTROLLER listener on 127.0.0.1; 0 picks a free port.
	ControllerPort int
	// LibDir is the directory of jars, as returned by Ensure. Required.
	LibDir string
	// Java is the java executable; empty means the one JavaAvailable finds.
	Java string
	// Stdout, if set, also receives the JVM's stdout and stderr. It must be safe
	// for use from another goroutine than the caller's.
	Stdout io.Writer
	// Properties are added to server.properties, overriding the defaults
	// (see DefaultProperties).
	Properties map[string]string
	// JVMArgs replace DefaultJVMArgs when non-nil.
	JVMArgs []string
	// StartTimeout bounds how long Start and Restart wait for the broker to
	// answer metadata requests; 0 means 2 minutes.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; 0 means 30s.
	StopTimeout time.Duration
}

// DefaultJVMArgs keep the broker small and quick to start on a 2-core machine.
var DefaultJVMArgs = []string{
	"-Xms64m", "-Xmx512m",
	"-XX:+UseSerialGC",
	"-XX:TieredStopAtLevel=1",
	"-XX:-UsePerfData",
	"-Djava.awt.headless=true",
}

// DefaultProperties returns the server.properties that Start writes for a
// broker whose PLAINTEXT listener is on port and CONTROLLER listener on cport,
// before Config.Properties are applied. Topics are not auto-created: the
// services provision their topics, and a test that forgets to would otherwise
// pass here and fail on a real cluster. Internal topics have one partition and
// one replica, and the broker session timeout is 3s so that a restart after
// SIGKILL is quick.
func DefaultProperties(port, cport int, logDir string) map[string]string {
	return map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          "1",
		"listeners":                                        fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		"advertised.listeners":                             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.quorum.voters":                         fmt.Sprintf("1@127.0.0.1:%d", cport),
		"log.dirs":                                         logDir,
		"num.partitions":                                   "1",
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"auto.create.topics.enable":                        "false",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
		"log.segment.bytes":                                strconv.Itoa(16 << 20),
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",
		"num.recovery.threads.per.data.dir":                "1",
		"background.threads":                               "2",
		// A broker restarted after SIGKILL cannot register until the controller
		// expires its previous session (9s by default).
		"broker.session.timeout.ms":    "3000",
		"broker.heartbeat.interval.ms": "500",
	}
}

// log4j2Config sends Kafka's log to stdout at INFO, without the configuration dumps.
const log4j2Config = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = warn
`

// Broker is a running (or stopped) broker JVM. Its methods are safe for
// concurrent use; Stop, Kill and Restart are serialised.
type Broker struct {
	cfg     Config
	java    string
	dataDir string

	mu      sync.Mutex
	proc    *process // nil before the first start
	logFile *os.File
}

// process is one run of the JVM.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result; read only after done is closed
}

// Start writes the configuration, formats the log dir on first use, starts the
// JVM in its own process group and blocks until the broker answers a metadata
// request, the start timeout passes or ctx ends. On error no process is left running.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	java, err := resolveJava(ctx, cfg.Java)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, java: java, dataDir: filepath.Join(cfg.Dir, "data")}
	if err := b.firstStart(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// withDefaults checks the required fields and returns c with the zero
// timeouts and nil JVMArgs defaulted and Dir made absolute.
func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("starting kafka: Config.Dir is required")
	}
	if c.LibDir == "" {
		return c, errors.New("starting kafka: Config.LibDir is required")
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 30 * time.Second
	}
	if c.JVMArgs == nil {
		c.JVMArgs = DefaultJVMArgs
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("resolving %s: %w", c.Dir, err)
	}
	c.Dir = dir
	return c, nil
}

// resolveJava returns java when set, else the java JavaAvailable finds,
// which must be at least MinJavaVersion.
func resolveJava(ctx context.Context, java string) (string, error) {
	if java != "" {
		return java, nil
	}
	path, major, err := javaVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("starting kafka: %w", err)
	}
	if major < MinJavaVersion {
		return "", fmt.Errorf("starting kafka: %s is Java %d, need %d or newer", path, major, MinJavaVersion)
	}
	return path, nil
}

// firstStart picks the ports left 0 in the configuration, writes the
// configuration, formats the log dir and starts the JVM. When it picked
// both ports and the JVM finds one taken by another process, it picks again
// (3 attempts in all).
func (b *Broker) firstStart(ctx context.Context) error {
	pickPort, pickControllerPort := b.cfg.Port == 0, b.cfg.ControllerPort == 0
	retryPorts := pickPort && pickControllerPort
	for attempt := 1; ; attempt++ {
		if pickPort || pickControllerPort {
			ports, err := freePorts(2)
			if err != nil {
				return err
			}
			if pickPort {
				b.cfg.Port = ports[0]
			}
			if pickControllerPort {
				b.cfg.ControllerPort = ports[1]
			}
		}
		if err := b.writeConfig(); err != nil {
			return err
		}
		if err := b.format(ctx); err != nil {
			return err
		}
		err := b.start(ctx)
		if err == nil {
			return nil
		}
		// A port picked here can be taken by another process before the JVM
		// binds it; pick again rather than fail.
		if !retryPorts || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") || ctx.Err() != nil {
			return err
		}
	}
}

// Addr is the PLAINTEXT bootstrap address, "127.0.0.1:port".
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cfg.Port)) }

// ControllerAddr is the CONTROLLER listener address.
func (b *Broker) ControllerAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cfg.ControllerPort))
}

// Dir is the broker's directory (configuration, kafka.log, data/).
func (b *Broker) Dir() string { return b.cfg.Dir }

// LogPath is the file that collects the JVM's output across restarts.
func (b *Broker) LogPath() string { return filepath.Join(b.cfg.Dir, "kafka.log") }

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runningLocked()
}

func (b *Broker) runningLocked() bool {
	if b.proc == nil {
		return false
	}
	select {
	case <-b.proc.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the broker's process group (a controlled shutdown that
// flushes its logs), waits up to Config.StopTimeout or until ctx ends, then
// sends SIGKILL, and waits for the process to exit. Stopping a stopped broker
// is a no-op.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopLocked(ctx)
}

func (b *Broker) stopLocked(ctx context.Context) error {
	if !b.runningLocked() {
		b.closeLog()
		return nil
	}
	_ = b.signal(syscall.SIGTERM)
	timer := time.NewTimer(b.cfg.StopTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-b.proc.done:
	case <-timer.C:
		err = fmt.Errorf("stopping kafka: no exit %s after SIGTERM, sent SIGKILL", b.cfg.StopTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("stopping kafka: %w; sent SIGKILL", ctx.Err())
	}
	if err != nil {
		_ = b.signal(syscall.SIGKILL)
		<-b.proc.done
	}
	b.closeLog()
	return err
}

// Kill sends SIGKILL to the broker's process group and waits for it to exit,
// as a crash would. Killing a stopped broker is a no-op.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runningLocked() {
		_ = b.signal(syscall.SIGKILL)
		<-b.proc.done
	}
	b.closeLog()
}

// Restart stops the broker if it is running (as Stop does) and starts it again
// on the same directory and ports, blocking until it answers metadata requests.
func (b *Broker) Restart(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.stopLocked(ctx); err != nil {
		return err
	}
	return b.startLocked(ctx)
}

func (b *Broker) signal(sig syscall.Signal) error {
	// The JVM leads its own process group (Setpgid), so -pid reaches it and
	// anything it forked.
	return syscall.Kill(-b.proc.cmd.Process.Pid, sig)
}

func (b *Broker) closeLog() {
	if b.logFile != nil {
		_ = b.logFile.Close()
		b.logFile = nil
	}
}

func (b *Broker) writeConfig() error {
	if err := os.MkdirAll(b.dataDir, 0o755); err != nil {
		return fmt.Errorf("creating log dir: %w", err)
	}
	props := DefaultProperties(b.cfg.Port, b.cfg.ControllerPort, b.dataDir)
	maps.Copy(props, b.cfg.Properties)
	keys := slices.Sorted(maps.Keys(props))
	var sb strings.Builder
	sb.WriteString("# written by github.com/auditpipe/auditpipe/e2e/kafkabroker\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(b.propsPath(), []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("writing server.properties: %w", err)
	}
	if err := os.WriteFile(b.log4jPath(), []byte(log4j2Config), 0o644); err != nil {
		return fmt.Errorf("writing log4j2.properties: %w", err)
	}
	return nil
}

func (b *Broker) propsPath() string { return filepath.Join(b.cfg.Dir, "server.properties") }
func (b *Broker) log4jPath() string { return filepath.Join(b.cfg.Dir, "log4j2.properties") }

func (b *Broker) javaCmd(ctx context.Context, mainClass string, args ...string) *exec.Cmd {
	argv := slices.Clone(b.cfg.JVMArgs)
	argv = append(argv,
		"-Dlog4j2.configurationFile="+b.log4jPath(),
		"-cp", filepath.Join(b.cfg.LibDir, "*"),
		mainClass)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, b.java, argv...)
	cmd.Dir = b.cfg.Dir
	cmd.SysProcAttr = sysProcAttr()
	return cmd
}

// format runs the storage formatter unless the log dir is already formatted.
func (b *Broker) format(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(b.dataDir, "meta.properties")); err == nil {
		return nil
	}
	id, err := newClusterID()
	if err != nil {
		return err
	}
	cmd := b.javaCmd(ctx, "kafka.tools.StorageTool", "format", "--cluster-id", id, "--config", b.propsPath())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("formatting %s: %w\n%s", b.dataDir, err, tailLinesOf(string(out), 30))
	}
	return nil
}

func (b *Broker) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.startLocked(ctx)
}

func (b *Broker) startLocked(ctx context.Context) error {
	f, err := os.OpenFile(b.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening kafka.log: %w", err)
	}
	startOffset, _ := f.Seek(0, io.SeekEnd)
	fmt.Fprintf(f, "===== auditpipe kafkabroker: starting Apache Kafka on %s at %s\n", b.Addr(), time.Now().Format(time.RFC3339Nano))
	cmd := b.javaCmd(context.Background(), "kafka.Kafka", b.propsPath()) // outlives the start call
	var out io.Writer = f
	if b.cfg.Stdout != nil {
		out = io.MultiWriter(f, b.cfg.Stdout)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("starting %s: %w", b.java, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	b.proc, b.logFile = p, f
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := b.waitReady(ctx, p); err != nil {
		_ = b.signal(syscall.SIGKILL)
		<-p.done
		b.closeLog()
		tail := b.logTail(startOffset, 40)
		if first := b.firstError(startOffset); first != "" && !strings.Contains(tail, first) {
			err = fmt.Errorf("%w\nfirst error: %s", err, first)
		}
		return fmt.Errorf("%w\n--- tail of %s ---\n%s", err, b.LogPath(), tail)
	}
	return nil
}

// waitReady polls the broker with metadata requests until it lists a broker.
func (b *Broker) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.StartTimeout)
	defer cancel()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr()),
		kgo.DialTimeout(time.Second),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(time.Second),
		kgo.MetadataMinAge(100*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("creating readiness client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("starting kafka: the broker process exited before it was ready: %v", p.err)
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("starting kafka: not ready on %s: %w (last: %v)", b.Addr(), ctx.Err(), last)
			}
			return fmt.Errorf("starting kafka: not ready on %s: %w", b.Addr(), ctx.Err())
		case <-tick.C:
		}
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		md, err := adm.BrokerMetadata(actx)
		acancel()
		switch {
		case err != nil:
			last = err
		case len(md.Brokers) == 0:
			last = errors.New("metadata lists no brokers")
		default:
			return nil
		}
	}
}

// logTail returns the last n lines of kafka.log written since offset.
func (b *Broker) logTail(offset int64, n int) string {
	f, err := os.Open(b.LogPath())
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", b.LogPath(), err)
	}
	defer f.Close()
	const maxTail = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", b.LogPath(), err)
	}
	from := max(offset, st.Size()-maxTail)
	buf := make([]byte, st.Size()-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(reading %s: %v)", b.LogPath(), err)
	}
	return tailLinesOf(string(buf), n)
}

// firstError returns the first ERROR or FATAL line logged since offset, or "".
func (b *Broker) firstError(offset int64) string {
	f, err := os.Open(b.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "] ERROR ") || strings.Contains(l, "] FATAL ") {
			return l
		}
	}
	return ""
}

func tailLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newClusterID returns a random Kafka cluster id: 16 bytes, base64url
// without padding. Like Kafka's Uuid.randomUuid it never starts with '-'
// (one id in 64 would), which kafka-storage's argument parser would take
// for an option ("--cluster-id: expected one argument").
func newClusterID() (string, error) {
	for {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return "", fmt.Errorf("generating cluster id: %w", err)
		}
		u[6] = u[6]&0x0f | 0x40 // version 4, like Kafka's Uuid.randomUuid
		u[8] = u[8]&0x3f | 0x80
		if id := base64.RawURLEncoding.EncodeToString(u[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// freePorts returns n distinct free loopback ports (free when asked: another
// process can take one before it is bound).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close() // held until all are picked, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
