package system_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// JSON messages ended by NUL on file descriptors 3 and 4), so browser tests need nothing
// but Debian's chromium package, which `make tools` installs.

type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      *os.File // our end of Chromium's fd 3
	session string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	errs    []string // uncaught exceptions, console errors, CSP violations
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: `make tools` installs Debian's chromium package (apt-get install chromium)")
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	toChrome, ours, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	theirs, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The flags keep Chromium off the network it cannot reach here (background
	// services, component updates) and out of the user's profile.
	cmd := exec.Command(chromiumPath(t), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "--window-size=1280,900", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{t: t, cmd: cmd, in: ours, waiting: map[int]chan cdpReply{}}
	t.Cleanup(func() {
		ours.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		theirs.Close()
	})
	go b.read(theirs)
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	for _, domain := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		b.call(b.session, domain, nil, nil)
	}
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) read(r *os.File) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				ch <- cdpReply{Error: &struct {
					Message string `json:"message"`
				}{"chromium closed the pipe: " + err.Error()}}
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.waiting[m.ID]; ok {
				ch <- m.cdpReply
				delete(b.waiting, m.ID)
			}
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			b.errs = append(b.errs, "exception: "+string(m.Params))
		case "Log.entryAdded":
			var e struct {
				Entry struct{ Level, Text, URL string } `json:"entry"`
			}
			_ = json.Unmarshal(m.Params, &e)
			if e.Entry.Level == "error" && !strings.Contains(e.Entry.URL, "favicon") {
				b.errs = append(b.errs, "console: "+e.Entry.Text+" ("+e.Entry.URL+")")
			}
		case "Runtime.consoleAPICalled":
			if strings.Contains(string(m.Params), `"type":"error"`) {
				b.errs = append(b.errs, "console.error: "+string(m.Params))
			}
		}
		b.mu.Unlock()
	}
}

// call sends one command and decodes its result into out.
func (b *browser) call(session, method string, params any, out any) {
	b.t.Helper()
	if err := b.try(session, method, params, out); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
}

func (b *browser) try(session, method string, params any, out any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s", r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no answer in 30s")
	}
}

// eval runs a JavaScript expression in the page and returns its value as JSON.
func (b *browser) eval(expr string) (json.RawMessage, error) {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := b.try(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, fmt.Errorf("%s %s", r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	return r.Result.Value, nil
}

// value evaluates expr and decodes its value into out, failing the test on errors.
func (b *browser) value(expr string, out any) {
	b.t.Helper()
	raw, err := b.eval(expr)
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("evaluating %s: %s: %v", expr, raw, err)
	}
}

// settle waits until the page at a URL containing want has run app.js (data-ready) and
// fails the test on any script error so far.
func (b *browser) settle(want string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		raw, err := b.eval(`document.readyState + " " + (document.documentElement.getAttribute("data-ready") || "-") + " " + location.href`)
		if err == nil {
			_ = json.Unmarshal(raw, &last)
			if strings.HasPrefix(last, "complete 1 ") && strings.Contains(last, want) {
				b.checkErrors()
				return
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	b.t.Fatalf("page %q did not load and run its script in 20s (last state: %s)", want, last)
}

// open navigates to url and waits for the page.
func (b *browser) open(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
	b.settle(url)
}

func (b *browser) checkErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		b.t.Fatalf("the page reported errors:\n%s", strings.Join(b.errs, "\n"))
	}
}

// click sends a real mouse click at the centre of the first element matching selector.
func (b *browser) click(selector string) {
	b.t.Helper()
	x, y := b.center(selector)
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		b.call(b.session, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": x, "y": y, "button": "left", "clickCount": 1}, nil)
	}
}

// hover moves the mouse to a point inside the element (fractions of its width and height).
func (b *browser) hover(selector string, fx, fy float64) {
	b.t.Helper()
	var r struct{ X, Y, W, H float64 }
	b.value(fmt.Sprintf(`(function(){var e=document.querySelector(%q); e.scrollIntoView({block:"center"}); var r=e.getBoundingClientRect(); return {X:r.left,Y:r.top,W:r.width,H:r.height};})()`, selector), &r)
	b.call(b.session, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": r.X + fx*r.W, "y": r.Y + fy*r.H}, nil)
}

func (b *browser) center(selector string) (float64, float64) {
	b.t.Helper()
	var r struct{ X, Y float64 }
	b.value(fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e) return null; e.scrollIntoView({block:"center"}); var r=e.getBoundingClientRect(); return {X:r.left+r.width/2,Y:r.top+r.height/2};})()`, selector), &r)
	if r.X == 0 && r.Y == 0 {
		b.t.Fatalf("no element %s to click", selector)
	}
	return r.X, r.Y
}

// typeText focuses the element and types text as keyboard input.
func (b *browser) typeText(selector, text string) {
	b.t.Helper()
	b.value(fmt.Sprintf(`(function(){var e=document.querySelector(%q); e.focus(); e.select(); return true;})()`, selector), new(bool))
	b.call(b.session, "Input.insertText", map[string]any{"text": text}, nil)
}

// screenshot saves the whole page as a PNG under the test-artifacts folder and returns its
// path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var size struct{ W, H float64 }
	b.value(`({W: document.documentElement.scrollWidth, H: document.documentElement.scrollHeight})`, &size)
	var shot struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": size.W, "height": min(size.H, 6000), "scale": 1}}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) < 1000 {
		b.t.Fatalf("screenshot %s: %d bytes, %v", name, len(png), err)
	}
	dir := os.Getenv("LAKEHOUSED_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	b.t.Logf("screenshot: %s", abs)
	return abs
}
