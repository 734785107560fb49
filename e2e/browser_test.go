package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// chromiumEnv overrides the browser the tests drive.
const chromiumEnv = "AUDITPIPE_CHROMIUM"

// screenshotsEnv names a directory where the browser test writes its
// screenshots (docs/dashboards-*.png are made this way).
const screenshotsEnv = "AUDITPIPE_SCREENSHOTS"

// chromium returns the headless browser to drive: $AUDITPIPE_CHROMIUM, else
// chromium on the PATH, else it installs Debian's chromium package when it
// can (root with apt-get, as .ci/run does), else the test fails saying how
// to get one. It never skips.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		t.Log("chromium not found: installing Debian's chromium package (apt-get install chromium)")
		cmd := exec.Command("sh", "-c", "apt-get update -q && apt-get install -y -q chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "installing chromium:\n%s", out)
		if p, err := exec.LookPath("chromium"); err == nil {
			return p
		}
	}
	t.Fatalf("headless Chromium is needed for the browser test and was not found: install it (Debian/Ubuntu: apt-get install chromium) or set %s to a Chrome or Chromium binary", chromiumEnv)
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context; the flags keep it from reaching anything but the page.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 2000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// pageProblems records a tab's failed requests (no response, or an HTTP
// error status) and uncaught exceptions. A request the browser reports as
// canceled after its response arrived is not a failure: the page read the
// status and dropped the body (the console's pings do).
type pageProblems struct {
	mu        sync.Mutex
	requests  map[network.RequestID]string // method and URL
	responded map[network.RequestID]bool
	list      []string
}

// expectedStatus are answers the pages expect: the console probes the web
// terminal, which chserver does not have (a ClickHouse server without
// allow_experimental_webterminal answers 404 too), and hides its icon.
var expectedStatus = map[string]int{"HEAD /webterminal": 404}

func watchPage(t *testing.T, ctx context.Context) *pageProblems {
	t.Helper()
	pp := &pageProblems{requests: map[network.RequestID]string{}, responded: map[network.RequestID]bool{}}
	err := chromedp.Listen(ctx, func(ev any) {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			path := ev.Request.URL
			if u, err := url.Parse(path); err == nil {
				path = u.Path
			}
			pp.requests[ev.RequestID] = ev.Request.Method + " " + path
		case *network.EventResponseReceived:
			pp.responded[ev.RequestID] = true
			if req := pp.requests[ev.RequestID]; ev.Response.Status >= 400 && expectedStatus[req] != int(ev.Response.Status) {
				pp.list = append(pp.list, fmt.Sprintf("HTTP %d: %s (%s)", ev.Response.Status, req, ev.Response.URL))
			}
		case *network.EventLoadingFailed:
			if !pp.responded[ev.RequestID] {
				pp.list = append(pp.list, fmt.Sprintf("request failed: %s: %s", pp.requests[ev.RequestID], ev.ErrorText))
			}
		case *runtime.EventExceptionThrown:
			pp.list = append(pp.list, "exception: "+exceptionText(ev.ExceptionDetails))
		}
	})
	require.NoError(t, err, "starting the browser")
	return pp
}

func (pp *pageProblems) get() []string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return append([]string(nil), pp.list...)
}

// chartRect is a chart's drawing area on the page, in CSS pixels.
type chartRect struct {
	Title string    `json:"title"`
	Error string    `json:"error"`
	Rect  []float64 `json:"rect"` // x, y, width, height
}

// checkChartsInBrowser opens the link `make run` prints, for the test's
// database, in headless Chromium: every chart must draw (a canvas, no
// error), its area in a screenshot must not be blank, and no request of
// the page may fail. The page's scripts come from the local npm cache, so
// the browser reaches nothing but the server.
func checkChartsInBrowser(t *testing.T, p *pipeline) {
	_, err := webui.EnsureAssets(context.Background(), os.Stderr)
	require.NoError(t, err, "fetching the pinned scripts of ClickHouse's pages from the npm registry")
	ctx := browser(t)
	problems := watchPage(t, ctx)
	link := devstack.ChartsURL(p.ch, p.db)
	charts := len(p.rows("SELECT title FROM auditpipe_dashboards WHERE dashboard = 'auditpipe'"))

	start := time.Now()
	const drawn = `(() => {
		const charts = [...document.querySelectorAll('#charts .chart')];
		return charts.length >= %d && charts.every(c => c.querySelector('canvas') ||
			getComputedStyle(c.querySelector('.query-error')).display !== 'none');
	})()`
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(link)))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(drawn, charts), chromedp.WithPollingTimeout(time.Minute)))
	require.NoError(t, err, "the charts page draws %d charts", charts)
	require.NoError(t, chromedp.Do(ctx, chromedp.Sleep(500*time.Millisecond))) // the last canvas paints
	t.Logf("%d charts drawn in %s", charts, time.Since(start).Round(time.Millisecond))

	rects, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartRect](`[...document.querySelectorAll('#charts .chart')].map(c => {
		const err = c.querySelector('.query-error');
		const canvas = c.querySelector('canvas');
		const r = (canvas || c).getBoundingClientRect();
		return {title: c.querySelector('.title').textContent, error: getComputedStyle(err).display !== 'none' ? err.textContent : '',
			rect: [r.x, r.y, r.width, r.height]};
	})`))
	require.NoError(t, err)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err)
	dpr, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.devicePixelRatio`))
	require.NoError(t, err)

	require.Len(t, rects, charts)
	for _, r := range rects {
		assert.Empty(t, r.Error, "chart %q shows an error", r.Title)
		require.Len(t, r.Rect, 4)
		frac := inkFraction(img, r.Rect, dpr)
		t.Logf("chart %-48q ink %.1f%%", r.Title, 100*frac)
		assert.Greater(t, frac, 0.01, "chart %q: its area in the screenshot is blank", r.Title)
	}
	saveScreenshot(t, "dashboards-clickhouse.png", shot)

	// The SQL console loads too and reaches the server.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.ch+"/play"), chromedp.WaitReady("body")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('url_status').className === 'ok'`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "the console's connection indicator turns ok")
	assert.Empty(t, problems.get(), "requests of /dashboard and /play")
}

// inkFraction is the share of pixels in rect (CSS pixels, scaled by dpr)
// whose colour differs from the area's most common colour (the background).
func inkFraction(img image.Image, rect []float64, dpr float64) float64 {
	if dpr == 0 {
		dpr = 1
	}
	x0, y0 := int(rect[0]*dpr), int(rect[1]*dpr)
	x1, y1 := int((rect[0]+rect[2])*dpr), int((rect[1]+rect[3])*dpr)
	b := img.Bounds()
	x0, y0, x1, y1 = max(x0, b.Min.X), max(y0, b.Min.Y), min(x1, b.Max.X), min(y1, b.Max.Y)
	counts := map[[3]uint32]int{}
	total := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
			total++
		}
	}
	if total == 0 {
		return 0
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	return float64(total-most) / float64(total)
}

func saveScreenshot(t *testing.T, name string, png []byte) {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	t.Logf("screenshot written to %s", filepath.Join(dir, strings.TrimSpace(name)))
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "(no details)"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

func TestInkFraction(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	rect := []float64{10, 10, 50, 50}
	assert.Zero(t, inkFraction(img, rect, 1), "a blank area")
	for x := 10; x < 60; x++ {
		img.Pix[img.PixOffset(x, 30)] = 0 // a red line across the area
	}
	assert.InDelta(t, 50.0/2500, inkFraction(img, rect, 1), 1e-9)
	assert.InDelta(t, 50.0/8100, inkFraction(img, []float64{5, 5, 50, 50}, 2), 1e-9, "device pixels, clipped to the image")
}
