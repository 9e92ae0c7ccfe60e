package console_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The acceptance test of the console: the real stack (`eventstream run`),
// the console it serves at /console/, driven in headless Chromium the way a
// user drives it. Each page is a subtest; they share one stack and one tab and
// run in order (later pages use what earlier ones created). Every page is
// checked with axe-core (no serious or critical violation) and photographed
// into the output directory ($TEST_OUTPUT_DIR, or the test's temp dir).

// chromiumPath finds Chromium. Without it the test fails in CI (CI=true) and
// is skipped, saying so, on a developer's machine.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (install Debian's chromium; `make test` does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + ": skipping the browser tests")
	return ""
}

type browser struct {
	t      *testing.T
	ctx    context.Context
	outDir string
	axeJS  string

	mu         sync.Mutex
	exceptions []string
	requests   []string // every request the page sent: URL and Referer
}

func newBrowser(t *testing.T) *browser {
	exe := chromiumPath(t)
	axe, err := os.ReadFile(filepath.Join("third_party", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("reading the vendored axe-core: %v", err)
	}
	out := os.Getenv("TEST_OUTPUT_DIR")
	if out == "" {
		out = t.TempDir()
	} else {
		// This test's own folder: last run's pictures go, so none is stale.
		out = filepath.Join(out, "console-screenshots")
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests often run as root (containers), where the sandbox refuses to start
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp reports CDP events it has no handler for (newer Chromium sends
	// some, e.g. DOM.topLayerElementsUpdated for dialogs); those are noise.
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled node event") {
			log.Print("chromedp: " + msg)
		}
	}))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, outDir: out, axeJS: string(axe)}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.mu.Lock()
			b.exceptions = append(b.exceptions, e.ExceptionDetails.Error())
			b.mu.Unlock()
		case *network.EventRequestWillBeSent:
			// Request.URL is what goes on the wire: without the fragment.
			b.mu.Lock()
			b.requests = append(b.requests, fmt.Sprintf("%s %s (Referer: %v)", e.Request.Method, e.Request.URL, e.Request.Headers["Referer"]))
			b.mu.Unlock()
		}
	})
	// The first Run starts the browser, on the tab's own context: a run with
	// a deadline would tie the browser's life to that deadline. It records
	// Content-Security-Policy violations before any page script runs.
	if err := chromedp.Run(ctx, network.Enable(), chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`window.__csp = [];
			document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`).Do(ctx)
		return err
	})); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	t.Logf("screenshots go to %s", out)
	return b
}

// run runs actions with a deadline, failing the (sub)test on error.
func (b *browser) run(timeout time.Duration, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// in returns a copy bound to a subtest.
func (b *browser) in(t *testing.T) *browser {
	c := &browser{t: t, ctx: b.ctx, outDir: b.outDir, axeJS: b.axeJS}
	return c
}

func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	b.run(30*time.Second, chromedp.Evaluate(expr, out))
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state string
			_ = chromedp.Run(b.ctx, chromedp.Evaluate(`location.hash + " | " + (document.querySelector("#notices")?.innerText || "") + " | " + (document.querySelector("main")?.innerText || "").slice(0, 1500)`, &state))
			b.t.Fatalf("waiting for %s (%s): not true within %s (err %v)\npage: %s", what, expr, timeout, err, state)
		}
		// Polling interval of a condition, not a wait for time to pass.
		select {
		case <-time.After(250 * time.Millisecond):
		case <-b.ctx.Done():
			b.t.Fatal(b.ctx.Err())
		}
	}
}

// open goes to a route of the console and waits until the page is drawn.
func (b *browser) open(hash, page string) {
	b.t.Helper()
	// Not ready until the new route has been drawn (the same route is drawn again).
	b.eval(fmt.Sprintf(`(() => { const h = %q; delete document.body.dataset.ready;
		if (location.hash === h) window.dispatchEvent(new HashChangeEvent("hashchange")); else location.hash = h; return true; })()`, hash), nil)
	b.waitPage(page)
}

func (b *browser) waitPage(page string) {
	b.t.Helper()
	b.waitJS("page "+page, fmt.Sprintf(`document.body.dataset.ready === "true" && document.body.dataset.page === %q`, page), 30*time.Second)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(30*time.Second, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Click(sel, chromedp.ByQuery))
}

// typeIn empties a field and types text into it, key by key.
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.setValue(sel, "")
	b.run(30*time.Second, chromedp.SendKeys(sel, text, chromedp.ByQuery))
}

// setValue sets a field's value at once (selects, dates, long tokens) and
// fires the events a user's change would.
func (b *browser) setValue(sel, value string) {
	b.t.Helper()
	b.run(30*time.Second, chromedp.WaitVisible(sel, chromedp.ByQuery))
	b.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q;
		el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value), nil)
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	var n int
	b.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n)
	return n
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`(document.querySelector(%q)?.innerText || "")`, sel), &s)
	return s
}

var shotMu sync.Mutex
var shotSeq int

// screenshot saves the whole page as a PNG and logs where.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.run(30*time.Second, chromedp.FullScreenshot(&png, 100))
	shotMu.Lock()
	shotSeq++
	n := shotSeq
	shotMu.Unlock()
	path := filepath.Join(b.outDir, fmt.Sprintf("%02d-%s.png", n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe runs axe-core on the page as it is and fails on any serious or
// critical violation (minor and moderate ones are logged).
func (b *browser) axe(where string) {
	b.t.Helper()
	var loaded bool
	b.eval(`typeof window.axe !== "undefined"`, &loaded)
	if !loaded {
		// Through the DevTools protocol, which the page's CSP does not govern.
		b.eval(b.axeJS+"\n;true", nil)
	}
	var vs []axeViolation
	b.run(60*time.Second, chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then((r) => r.violations.map((v) => ({
		id: v.id, impact: v.impact || "", help: v.help,
		nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " ")),
	})))`, &vs, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	for _, v := range vs {
		line := fmt.Sprintf("axe on %s: %s (%s): %s\n    %s", where, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n    "))
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Error(line)
		} else {
			b.t.Log(line)
		}
	}
}

// check is axe plus a screenshot: what every page gets.
func (b *browser) check(name string) {
	b.t.Helper()
	b.axe(name)
	b.screenshot(name)
	var csp []string
	b.eval(`window.__csp || []`, &csp)
	if len(csp) > 0 {
		b.t.Errorf("Content-Security-Policy violations on %s: %v", name, csp)
	}
}

type apiIntegration struct {
	ID               string `json:"id"`
	Status           string `json:"status"`
	FilterConditions struct {
		EventFilter  []string `json:"event_filter"`
		EntityFilter []string `json:"entity_filter"`
	} `json:"filter_conditions"`
	Callback *struct {
		CallbackURL string `json:"callback_url"`
		APIKey      string `json:"api_key"`
	} `json:"callback_parameters"`
	S3 *struct {
		Bucket string `json:"bucket"`
	} `json:"s3_parameters"`
}

func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t) // first: without Chromium there is nothing to run
	rcv := newReceiver(t)
	rcv.setRefuse("reject-me", true)
	rcv.setRefuse("reject-me-2", true)
	// Short S3 files, so the S3 integration's attempts appear within seconds.
	s := startStack(t, "S3_MAX_FILE_AGE=1s")
	api := s.BaseURL + "/api/v1/org/integrations/eventstream"
	getIntegration := func(t *testing.T, id string) (apiIntegration, int) {
		var in apiIntegration
		code := call(t, "GET", api+"/"+id, s.Token, nil, &in)
		return in, code
	}

	t.Run("sign in with the fragment link", func(t *testing.T) {
		b := b.in(t)
		b.run(60*time.Second, chromedp.Navigate(s.ConsoleLink))
		b.waitPage("integrations")
		var state struct {
			Href   string `json:"href"`
			Stored bool   `json:"stored"`
		}
		b.eval(fmt.Sprintf(`({href: location.href, stored: sessionStorage.getItem("eventstream.console.token") === %q})`, s.Token), &state)
		if strings.Contains(state.Href, "token") || !strings.HasSuffix(state.Href, "/console/#/integrations") {
			t.Errorf("address bar after sign-in = %q, want the token removed", state.Href)
		}
		if !state.Stored {
			t.Error("token not kept in sessionStorage")
		}
		if got := b.text("#tenant-name"); got != "Tenant: demo" {
			t.Errorf("tenant shown = %q", got)
		}
		b.check("integrations-empty")
	})

	t.Run("live-tail parser: SSE framing across chunks", func(t *testing.T) {
		b := b.in(t)
		// The console's own stream reader, fed a response cut at awkward
		// places: CR LF split across chunks, a UTF-8 character split in two,
		// comments, multi-line data, an event type.
		var got []struct {
			Event string `json:"event"`
			Data  string `json:"data"`
			ID    string `json:"id"`
		}
		b.run(30*time.Second, chromedp.Evaluate(`(async () => {
			const { stream } = await import("/console/js/api.js");
			const enc = (s) => new TextEncoder().encode(s);
			const e = enc("data: café\n\n");
			const chunks = [enc("retry: 2000\r"), enc("\n: ready\r\n\r\nid: 7\nevent: attempt\ndata: {\"a\":"), enc("1}\n\n"),
				enc("data: line1\ndata: line2\r\n\r\n"), e.slice(0, 10), e.slice(10), enc(": heartbeat\n\nevent: error\ndata: x\n"), enc("\n")];
			const realFetch = window.fetch;
			window.fetch = async () => new Response(new ReadableStream({ start(c) { for (const ch of chunks) c.enqueue(ch); c.close(); } }),
				{ status: 200, headers: { "Content-Type": "text/event-stream" } });
			const got = [];
			try { await stream("", { onEvent: (ev) => got.push(ev) }); } finally { window.fetch = realFetch; }
			return got;
		})()`, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
		want := fmt.Sprint([]string{`attempt|{"a":1}|7`, `message|line1\nline2|`, "message|café|", "error|x|"})
		var have []string
		for _, e := range got {
			have = append(have, e.Event+"|"+strings.ReplaceAll(e.Data, "\n", "\\n")+"|"+e.ID)
		}
		if fmt.Sprint(have) != want {
			t.Errorf("parsed %v, want %v", have, want)
		}
	})

	t.Run("new webhook integration", func(t *testing.T) {
		b := b.in(t)
		b.open("#/integrations", "integrations")
		b.click(`a[href="#/new"]`)
		b.waitPage("new")
		// An id the API refuses: its message is shown in the form.
		b.typeIn("#id", "Hook One")
		b.typeIn("#callback_url", rcv.URL+"/hook")
		b.click("#integration-form button[type=submit]")
		b.waitJS("the API's validation message", `(document.querySelector(".form-error")?.innerText || "").includes("id")`, 30*time.Second)
		b.screenshot("new-integration-error")

		b.typeIn("#id", "hook-1")
		b.click("#events-some")
		b.click("#entity-order")
		b.click(`[id="event-customer.created"]`)
		b.typeIn("#api_key", "console-api-key-123456")
		b.typeIn("#signing_secret", "console-signing-secret-0001")
		var disabled bool
		b.eval(`document.getElementById("event-order.created").disabled && document.getElementById("event-order.created").checked`, &disabled)
		if !disabled {
			t.Error("choosing the whole order entity does not cover its events")
		}
		b.check("new-integration-webhook")
		b.click("#integration-form button[type=submit]")
		b.waitPage("integrations")
		b.waitJS("hook-1 in the list", `!!document.querySelector('tr[data-id="hook-1"]')`, 30*time.Second)
		in, code := getIntegration(t, "hook-1")
		if code != 200 || in.Status != "running" || in.Callback == nil || in.Callback.CallbackURL != rcv.URL+"/hook" ||
			fmt.Sprint(in.FilterConditions.EntityFilter) != "[order]" || fmt.Sprint(in.FilterConditions.EventFilter) != "[customer.created]" {
			t.Errorf("hook-1 as stored = %d %+v", code, in)
		}
	})

	t.Run("new S3 integration", func(t *testing.T) {
		b := b.in(t)
		b.open("#/new", "new")
		b.typeIn("#id", "lake-1")
		b.click("#target-s3")
		b.typeIn("#aws_access_key_id", "local")
		b.typeIn("#aws_secret_access_key", "local-secret-key")
		b.typeIn("#aws_region", "us-east-1")
		b.typeIn("#bucket", "console-lake")
		b.typeIn("#key_prefix", "events")
		b.check("new-integration-s3")
		b.click("#integration-form button[type=submit]")
		b.waitPage("integrations")
		b.waitJS("lake-1 in the list", `!!document.querySelector('tr[data-id="lake-1"]')`, 30*time.Second)
		if in, code := getIntegration(t, "lake-1"); code != 200 || in.S3 == nil || in.S3.Bucket != "console-lake" || in.Status != "running" {
			t.Errorf("lake-1 as stored = %d %+v", code, in)
		}
	})

	t.Run("active and paused views", func(t *testing.T) {
		b := b.in(t)
		b.open("#/integrations", "integrations")
		b.click(`a[href="#/integrations?view=active"]`)
		b.waitJS("both under Active", `!!document.querySelector('tr[data-id="hook-1"]') && !!document.querySelector('tr[data-id="lake-1"]')`, 10*time.Second)
		b.check("integrations-active")

		b.click(`[data-toggle="lake-1"]`)
		b.waitJS("lake-1 paused", `document.querySelector('[data-toggle="lake-1"]') === null`, 30*time.Second)
		if in, _ := getIntegration(t, "lake-1"); in.Status != "stopped" {
			t.Errorf("lake-1 after the toggle = %q, want stopped", in.Status)
		}
		b.click(`a[href="#/integrations?view=paused"]`)
		b.waitJS("lake-1 alone under Paused", `!!document.querySelector('tr[data-id="lake-1"]') && !document.querySelector('tr[data-id="hook-1"]')`, 10*time.Second)
		var hash string
		b.eval(`location.hash`, &hash)
		if hash != "#/integrations?view=paused" {
			t.Errorf("view not kept in the URL: %q", hash)
		}
		b.check("integrations-paused")

		// Start it again from the Paused view: it leaves the view.
		b.click(`[data-toggle="lake-1"]`)
		b.waitJS("lake-1 gone from Paused", `!document.querySelector('tr[data-id="lake-1"]')`, 30*time.Second)
		if in, _ := getIntegration(t, "lake-1"); in.Status != "running" {
			t.Errorf("lake-1 after starting it again = %q, want running", in.Status)
		}
		b.click(`a[href="#/integrations?view=all"]`)
		b.waitJS("both under All", `document.querySelectorAll("#integrations tbody tr").length === 2`, 10*time.Second)
	})

	t.Run("new temporary integration (a replay window)", func(t *testing.T) {
		b := b.in(t)
		b.open("#/new", "new")
		b.typeIn("#id", "replay-1")
		b.click("#type-temporary")
		// datetime-local fields take the browser's local time, as a user types it.
		now := time.Now().Truncate(time.Second)
		from, to := now.Add(-48*time.Hour), now.Add(-24*time.Hour)
		b.setValue("#starts_at", from.Local().Format("2006-01-02T15:04:05"))
		b.setValue("#ends_at", to.Local().Format("2006-01-02T15:04:05"))
		b.typeIn("#callback_url", rcv.URL+"/replay")
		b.screenshot("new-integration-temporary")
		b.click("#integration-form button[type=submit]")
		b.waitPage("integrations")
		b.waitJS("replay-1 listed as temporary", `(document.querySelector('tr[data-id="replay-1"]')?.innerText || "").includes("Temporary")`, 30*time.Second)
		var in struct {
			Type     string `json:"integration_type"`
			StartsAt string `json:"starts_at"`
			EndsAt   string `json:"ends_at"`
		}
		call(t, "GET", api+"/replay-1", s.Token, nil, &in)
		if in.Type != "temporary" || in.StartsAt != from.UTC().Format("2006-01-02T15:04:05.000Z") || in.EndsAt != to.UTC().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("replay-1 as stored = %+v, want temporary from %s to %s", in, from.UTC(), to.UTC())
		}
		// The API cannot change a temporary integration; the console says so.
		b.open("#/i/replay-1/edit", "i-edit")
		var disabled bool
		b.eval(`document.querySelector("#integration-form button[type=submit]").disabled && document.querySelector("main").innerText.includes("Temporary integrations cannot be changed")`, &disabled)
		if !disabled {
			t.Error("the edit page of a temporary integration offers to save")
		}
	})

	t.Run("keyboard: actions menu and the switch", func(t *testing.T) {
		b := b.in(t)
		b.open("#/integrations", "integrations")
		b.run(10*time.Second, chromedp.Focus("#skip-link", chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
		b.waitJS("skip link focuses the content, page kept", `document.activeElement === document.getElementById("main") && location.hash === "#/integrations"`, 10*time.Second)
		menu := `button[aria-controls="actions-hook-1"]`
		b.run(10*time.Second, chromedp.Focus(menu, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
		b.waitJS("menu open, focus on its first item", `document.querySelector('button[aria-controls="actions-hook-1"]').getAttribute("aria-expanded") === "true" && document.activeElement.innerText === "Overview"`, 10*time.Second)
		b.run(10*time.Second, chromedp.KeyEvent(kb.ArrowDown))
		b.waitJS("arrow moves down", `document.activeElement.innerText === "View Events"`, 10*time.Second)
		b.run(10*time.Second, chromedp.KeyEvent(kb.Escape))
		b.waitJS("menu closed, focus back on its button", `document.getElementById("actions-hook-1").hidden && document.activeElement === document.querySelector('button[aria-controls="actions-hook-1"]')`, 10*time.Second)

		toggle := `[data-toggle="hook-1"]`
		b.run(10*time.Second, chromedp.Focus(toggle, chromedp.ByQuery), chromedp.KeyEvent(" "))
		b.waitJS("paused by Space, focus kept", `document.querySelector('[data-toggle="hook-1"]').getAttribute("aria-checked") === "false" && document.activeElement === document.querySelector('[data-toggle="hook-1"]')`, 30*time.Second)
		b.run(10*time.Second, chromedp.KeyEvent(" "))
		b.waitJS("started by Space", `document.querySelector('[data-toggle="hook-1"]').getAttribute("aria-checked") === "true"`, 30*time.Second)
		if in, _ := getIntegration(t, "hook-1"); in.Status != "running" {
			t.Errorf("hook-1 after pause and start by keyboard = %q", in.Status)
		}
	})

	var orderIDs, rejectIDs []string
	t.Run("publish events", func(t *testing.T) {
		orderIDs = publish(t, s, "order.created", "ord-1", "ord-2", "ord-3")
		rejectIDs = publish(t, s, "order.created", "reject-me", "reject-me-2")
		publish(t, s, "customer.created", "cust-1")
		publish(t, s, "employee.created", "emp-1") // not in hook-1's filter
	})

	t.Run("view events with filters", func(t *testing.T) {
		b := b.in(t)
		b.open("#/integrations", "integrations")
		b.click(`button[aria-controls="actions-hook-1"]`)
		b.check("integrations-actions-menu")
		b.click(`#actions-hook-1 a[href="#/i/hook-1/events"]`)
		b.waitPage("i-events")
		// Attempts appear as the webhook answers; Apply reloads the list.
		b.waitJS("six attempts of hook-1", `(() => {
			const n = document.querySelectorAll("#events tbody tr[data-event]").length;
			if (n < 6) document.querySelector("#event-filters button[type=submit]").click();
			return n >= 6; })()`, 90*time.Second)
		if n := b.count(`#events tbody tr[data-event]`); n != 6 {
			t.Errorf("%d attempts listed, want 6 (3 orders, 2 rejected, 1 customer; not the employee event)", n)
		}
		b.check("events")
		if rcv.signedCount("/hook") == 0 {
			t.Error("deliveries to hook-1 carry no webhook-signature: the signing secret typed into the form was not kept")
		}

		b.typeIn("#domain_entity_id", "ord-2")
		b.click("#event-filters button[type=submit]")
		b.waitJS("only ord-2", `document.querySelectorAll("#events tbody tr[data-event]").length === 1 && document.querySelector("#events tbody").innerText.includes("ord-2")`, 30*time.Second)
		var hash string
		b.eval(`location.hash`, &hash)
		if !strings.Contains(hash, "domain_entity_id=ord-2") || strings.Contains(hash, "token") {
			t.Errorf("filters not in the URL: %q", hash)
		}
		if got := b.text(`#events tbody tr[data-event] td:first-child`); !strings.Contains(got, orderIDs[1]) || !strings.Contains(got, "order.created") {
			t.Errorf("row shows %q, want event id %s and its name", got, orderIDs[1])
		}
		// The URL alone restores the view (a shared link).
		b.run(60*time.Second, chromedp.Reload())
		b.waitPage("i-events")
		b.waitJS("ord-2 after reload", `document.getElementById("domain_entity_id").value === "ord-2" && document.querySelectorAll("#events tbody tr[data-event]").length === 1`, 30*time.Second)

		b.setValue("#domain_entity_id", "")
		b.setValue("#event_name", "customer.created")
		b.click("#event-filters button[type=submit]")
		b.waitJS("only the customer event", `document.querySelectorAll("#events tbody tr[data-event]").length === 1 && document.querySelector("#events tbody").innerText.includes("cust-1")`, 30*time.Second)
		b.setValue("#event_name", "")
		b.setValue("#status", "failure")
		b.click("#event-filters button[type=submit]")
		b.waitJS("only failures", `(() => { const rows = [...document.querySelectorAll("#events tbody tr[data-event]")];
			return rows.length >= 2 && rows.every((r) => r.dataset.status === "FAILURE"); })()`, 30*time.Second)
		b.screenshot("events-failures")

		// A row opens the attempt with the endpoint's answer.
		b.click(`#events tbody tr[data-event] button`)
		b.waitJS("attempt dialog", `document.getElementById("dialog").open && document.getElementById("dialog").innerText.includes("refused by the test receiver")`, 10*time.Second)
		if got := b.text("#dialog"); !strings.Contains(got, "400") {
			t.Errorf("attempt dialog lacks the response code: %q", got)
		}
		b.check("event-attempt")
		b.run(10*time.Second, chromedp.KeyEvent("\x1b")) // Escape
		b.waitJS("dialog closed, focus back on the row", `!document.getElementById("dialog").open && document.activeElement.closest("#events") !== null`, 10*time.Second)

		// A period in which nothing happened.
		b.setValue("#status", "")
		b.setValue("#period", "custom")
		b.setValue("#from", "2020-01-01T00:00:00")
		b.setValue("#to", "2020-01-02T00:00:00")
		b.click("#event-filters button[type=submit]")
		b.waitJS("nothing in 2020", `document.querySelectorAll("#events tbody tr[data-event]").length === 0 && document.querySelector("#events tbody").innerText.includes("No events")`, 30*time.Second)
		b.eval(`location.hash`, &hash)
		if !strings.Contains(hash, "period=custom") || !strings.Contains(hash, "from=2020-01-0") {
			t.Errorf("time period not in the URL: %q", hash)
		}
	})

	t.Run("live events", func(t *testing.T) {
		b := b.in(t)
		b.open("#/i/hook-1/events", "i-events")
		b.click("#live-toggle")
		b.waitJS("stream connected", `document.getElementById("live-toggle").getAttribute("aria-pressed") === "true" && document.querySelector(".live").innerText.includes("Live:")`, 30*time.Second)
		publish(t, s, "order.created", "ord-live")
		b.waitJS("the new attempt at the top", `(document.querySelector("#events tbody tr:first-child")?.innerText || "").includes("ord-live")`, 30*time.Second)
		b.check("events-live")
		b.click("#live-toggle")
		b.waitJS("stream stopped", `document.getElementById("live-toggle").getAttribute("aria-pressed") === "false"`, 10*time.Second)
	})

	t.Run("paging through the Link header", func(t *testing.T) {
		b := b.in(t)
		var all []map[string]any
		if code := call(t, "GET", s.BaseURL+"/api/v1/org/integrations/published-events?integration_id=hook-1&limit=1000", s.Token, nil, &all); code != 200 {
			t.Fatalf("published-events = %d", code)
		}
		b.open("#/i/hook-1/events?limit=3", "i-events")
		b.waitJS("a first page of 3", `document.querySelectorAll("#events tbody tr[data-event]").length === 3 && !document.getElementById("load-more").hidden`, 30*time.Second)
		for n := 3; n < len(all); n += 3 {
			b.click("#load-more")
			b.waitJS("the next page", fmt.Sprintf(`document.querySelectorAll("#events tbody tr[data-event]").length === %d`, min(n+3, len(all))), 30*time.Second)
		}
		b.waitJS("no further page", `document.getElementById("load-more").hidden`, 10*time.Second)
		var rows []string
		b.eval(`[...document.querySelectorAll("#events tbody tr[data-event]")].map((r) => r.dataset.event + " " + r.querySelector("time").getAttribute("datetime"))`, &rows)
		seen := map[string]bool{}
		for _, r := range rows {
			if seen[r] {
				t.Errorf("row %s shown twice", r)
			}
			seen[r] = true
		}
		if len(rows) != len(all) {
			t.Errorf("paged through %d rows, the API has %d", len(rows), len(all))
		}
		b.screenshot("events-paged")
		// Export takes every matching attempt at once, whatever the page size.
		b.click("#export")
		b.waitJS("the export's notice", fmt.Sprintf(`document.getElementById("notices").innerText.includes("Exported %d attempts")`, len(all)), 30*time.Second)
		b.check("events-exported")
	})

	t.Run("rejected events: view, retry, delete", func(t *testing.T) {
		b := b.in(t)
		if len(rejectIDs) != 2 {
			t.Fatal("no rejected events were published")
		}
		b.open("#/i/hook-1/rejected", "i-rejected")
		b.waitJS("two rejected events", `(() => {
			const n = document.querySelectorAll("#rejected tbody tr").length;
			if (n < 2) [...document.querySelectorAll("main button")].find((x) => x.innerText === "Refresh").click();
			return n >= 2; })()`, 60*time.Second)
		b.check("rejected-events")

		b.click(fmt.Sprintf(`tr[data-id=%q] [data-action=view]`, rejectIDs[0]))
		b.waitJS("payload dialog", `document.getElementById("dialog").open && document.querySelector("#dialog pre").innerText.includes("reject-me")`, 10*time.Second)
		b.check("rejected-event-payload")
		b.run(10*time.Second, chromedp.KeyEvent("\x1b"))
		b.waitJS("dialog closed", `!document.getElementById("dialog").open`, 10*time.Second)

		rcv.setRefuse("reject-me", false)
		b.click(fmt.Sprintf(`tr[data-id=%q] [data-action=retry]`, rejectIDs[0]))
		b.waitJS("retried event gone", fmt.Sprintf(`!document.querySelector('tr[data-id=%q]') && document.getElementById("notices").innerText.includes("delivered")`, rejectIDs[0]), 30*time.Second)

		// A retry the endpoint refuses again: its error is shown and the event stays.
		b.click(fmt.Sprintf(`tr[data-id=%q] [data-action=retry]`, rejectIDs[1]))
		b.waitJS("the API's error", `(document.querySelector(".notice-error")?.innerText || "").includes("400")`, 30*time.Second)
		b.screenshot("rejected-retry-refused")

		b.click(fmt.Sprintf(`tr[data-id=%q] [data-action=delete]`, rejectIDs[1]))
		b.waitJS("confirmation", `document.getElementById("dialog").open`, 10*time.Second)
		b.check("rejected-delete-confirm")
		b.click(`#dialog-actions button[data-value="yes"]`)
		b.waitJS("deleted event gone", fmt.Sprintf(`!document.querySelector('tr[data-id=%q]') && document.querySelector("main").innerText.includes("No rejected events")`, rejectIDs[1]), 30*time.Second)
		var left struct {
			RejectedEvents []any `json:"rejected_events"`
		}
		if code := call(t, "GET", api+"/hook-1/rejected_events", s.Token, nil, &left); code != 200 || len(left.RejectedEvents) != 0 {
			t.Errorf("rejected events left = %d %v", code, left.RejectedEvents)
		}
	})

	t.Run("logs", func(t *testing.T) {
		b := b.in(t)
		b.open("#/i/lake-1/logs", "i-logs")
		got := b.text("#logs")
		for _, want := range []string{"integration_stopped", "Stopped via API.", "integration_started", "Started via API."} {
			if !strings.Contains(got, want) {
				t.Errorf("logs lack %q:\n%s", want, got)
			}
		}
		b.check("logs")
	})

	t.Run("edit", func(t *testing.T) {
		b := b.in(t)
		b.open("#/i/hook-1/edit", "i-edit")
		var apiKey string
		b.eval(`document.getElementById("api_key").value`, &apiKey)
		if apiKey != "****3456" {
			t.Errorf("api key field = %q, want the redacted form", apiKey)
		}
		b.click("#entity-customer")
		b.check("edit")
		b.click("#integration-form button[type=submit]")
		b.waitPage("i")
		b.waitJS("saved notice", `document.getElementById("notices").innerText.includes("Saved hook-1")`, 10*time.Second)
		in, _ := getIntegration(t, "hook-1")
		if in.Status != "running" || fmt.Sprint(in.FilterConditions.EntityFilter) != "[customer order]" && fmt.Sprint(in.FilterConditions.EntityFilter) != "[order customer]" {
			t.Errorf("hook-1 after edit = %+v", in)
		}
		if in.Callback == nil || in.Callback.APIKey != "****3456" {
			t.Errorf("the api key did not survive the edit: %+v", in.Callback)
		}
		var logs struct {
			Entries []struct{ Action string } `json:"entries"`
		}
		call(t, "GET", api+"/hook-1/logs", s.Token, nil, &logs)
		if len(logs.Entries) < 2 || logs.Entries[0].Action != "integration_started" || logs.Entries[1].Action != "integration_stopped" {
			t.Errorf("edit did not stop and start hook-1: %+v", logs.Entries)
		}
	})

	t.Run("edit an S3 integration", func(t *testing.T) {
		b := b.in(t)
		b.open("#/i/lake-1/edit", "i-edit")
		var secret string
		b.eval(`document.getElementById("aws_secret_access_key").value`, &secret)
		if !strings.HasPrefix(secret, "****") {
			t.Errorf("secret field = %q, want the redacted form", secret)
		}
		b.typeIn("#key_prefix", "events-v2")
		b.click("#integration-form button[type=submit]")
		b.waitPage("i")
		b.waitJS("saved notice", `document.getElementById("notices").innerText.includes("Saved lake-1")`, 10*time.Second)
		var in struct {
			Status string `json:"status"`
			S3     struct {
				KeyPrefix string `json:"key_prefix"`
				Secret    string `json:"aws_secret_access_key"`
			} `json:"s3_parameters"`
		}
		call(t, "GET", api+"/lake-1", s.Token, nil, &in)
		if in.Status != "running" || in.S3.KeyPrefix != "events-v2" || in.S3.Secret != secret {
			t.Errorf("lake-1 after edit = %+v, want running, prefix events-v2, the stored secret kept (%s)", in, secret)
		}
	})

	t.Run("overview chart", func(t *testing.T) {
		b := b.in(t)
		b.open("#/i/hook-1", "i")
		b.waitJS("chart bars", `document.querySelectorAll("#chart-series rect.bar-ok").length > 0 && document.querySelectorAll("#chart-series rect.bar-bad").length > 0`, 30*time.Second)
		var total int
		b.eval(`parseInt(document.querySelector("#stat-total .value").innerText, 10)`, &total)
		if total < 6 {
			t.Errorf("overview counts %d attempts, want at least 6", total)
		}
		if got := b.text("#chart-percentiles"); !strings.Contains(got, "ms") {
			t.Errorf("percentile chart shows no times: %q", got)
		}
		b.check("overview")
		// Another period: the summary is asked again and the choice kept in the URL.
		b.setValue("#period", "1h")
		b.waitJS("the last hour's chart", `location.hash.includes("period=1h") && document.querySelector("#chart-series .legend").innerText.includes("1 minute")`, 30*time.Second)
		b.screenshot("overview-last-hour")
	})

	t.Run("delete with confirmation", func(t *testing.T) {
		b := b.in(t)
		b.open("#/integrations", "integrations")
		b.waitJS("hook-1's day in figures", `(document.querySelector('tr[data-id="hook-1"] .stats-cell')?.innerText || "").includes("delivered")`, 30*time.Second)
		if got := b.text(`tr[data-id="hook-1"] .stats-cell`); !strings.Contains(got, "2 failed") {
			t.Errorf("hook-1's last 24 hours = %q, want its 2 failures", got)
		}
		b.check("integrations-with-figures")
		b.click(`button[aria-controls="actions-lake-1"]`)
		b.click(`#actions-lake-1 button.danger`)
		b.waitJS("confirmation", `document.getElementById("dialog").open && document.getElementById("dialog").innerText.includes("lake-1")`, 10*time.Second)
		// Cancel first: nothing happens.
		b.click(`#dialog-actions button[data-value=""]`)
		b.waitJS("dialog closed", `!document.getElementById("dialog").open`, 10*time.Second)
		if _, code := getIntegration(t, "lake-1"); code != 200 {
			t.Fatalf("cancelled delete removed lake-1 (%d)", code)
		}
		b.click(`button[aria-controls="actions-lake-1"]`)
		b.click(`#actions-lake-1 button.danger`)
		b.waitJS("confirmation", `document.getElementById("dialog").open`, 10*time.Second)
		b.click(`#dialog-actions button[data-value="yes"]`)
		b.waitJS("lake-1 gone", `!document.querySelector('tr[data-id="lake-1"]') && document.getElementById("notices").innerText.includes("Deleted lake-1")`, 30*time.Second)
		if _, code := getIntegration(t, "lake-1"); code != 404 {
			t.Errorf("lake-1 after delete = %d, want 404", code)
		}
	})

	t.Run("narrow screen", func(t *testing.T) {
		b := b.in(t)
		b.run(10*time.Second, chromedp.EmulateViewport(390, 844))
		defer b.run(10*time.Second, chromedp.EmulateViewport(1280, 900))
		b.open("#/integrations", "integrations")
		var overflow bool
		b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
		if overflow {
			t.Error("the integrations page scrolls sideways on a 390px screen")
		}
		b.check("narrow-integrations")
		b.open("#/i/hook-1/events", "i-events")
		b.check("narrow-events")
	})

	t.Run("a refused token leads to sign-in and back", func(t *testing.T) {
		b := b.in(t)
		b.eval(`sessionStorage.setItem("eventstream.console.token", "expired-token"); true`, nil)
		b.open("#/i/hook-1/logs", "signin")
		if got := b.text("main"); !strings.Contains(got, "refused") {
			t.Errorf("sign-in page does not say the token was refused: %q", got)
		}
		b.setValue("#token", s.Token)
		b.click("main form button[type=submit]")
		b.waitPage("i-logs")
	})

	t.Run("sign out and sign in with a pasted token", func(t *testing.T) {
		b := b.in(t)
		b.click("#sign-out")
		b.waitPage("signin")
		var stored bool
		b.eval(`sessionStorage.getItem("eventstream.console.token") !== null`, &stored)
		if stored {
			t.Error("token kept after sign-out")
		}
		b.setValue("#token", "not-a-token")
		b.click("main form button[type=submit]")
		b.waitJS("the API's refusal", `!!document.querySelector("main .form-error")`, 10*time.Second)
		b.check("signin")
		b.setValue("#token", s.Token)
		b.click("main form button[type=submit]")
		b.waitPage("integrations")
		b.waitJS("hook-1 listed", `!!document.querySelector('tr[data-id="hook-1"]')`, 10*time.Second)
	})

	t.Run("no uncaught errors; the token never reached the server's log", func(t *testing.T) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.exceptions) > 0 {
			t.Errorf("uncaught exceptions in the page: %v", b.exceptions)
		}
		if strings.Contains(s.stderr.String(), s.Token) {
			t.Error("the token appears in the stack's log")
		}
		if len(b.requests) < 20 {
			t.Errorf("only %d requests seen: is the network listener working?", len(b.requests))
		}
		for _, r := range b.requests {
			if strings.Contains(r, s.Token) {
				t.Errorf("the token was sent in a URL or Referer: %s", r)
			}
		}
	})
}
