package e2e

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/nexus-fintech/nexus/openapi"
)

// /docs in a real browser under the server's own CSP: Redoc renders the
// document, an operation shows its request and response examples and its
// schema, nothing is refused by the CSP, nothing is fetched from another
// origin, and the page is usable at 375 px.
func TestDocsBrowser(t *testing.T) {
	t.Parallel()
	chromium := oaChromium(t)
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("/docs does not depend on the database: checked on SQLite")
		}
		s := b.Server(t)
		base, err := url.Parse(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		bctx := headlessChromium(t, chromium)
		// Redoc lays out the whole document once: slow on a busy machine.
		ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
		defer cancel()
		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: timed out", what)
				}
				t.Fatalf("%s: %v", what, err)
			}
		}

		var mu sync.Mutex
		var foreign, problems []string
		must("watching the network", chromedp.Listen(ctx, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok {
				u, err := url.Parse(e.Request.URL)
				if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != base.Host {
					mu.Lock()
					foreign = append(foreign, e.Request.URL)
					mu.Unlock()
				}
			}
		}))
		console := chromedp.Console(ctx)
		must("network", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
			return err
		})))
		go func() {
			for m, err := range console {
				if err != nil {
					return
				}
				if m.Type == "error" || m.Type == "warning" || m.IsException() {
					mu.Lock()
					problems = append(problems, m.String())
					mu.Unlock()
				}
			}
		}()

		// createApiKey: its request example, its 201 example and the
		// properties of its schema, as the document has them.
		op := `[id="operation/createApiKey"]`
		reqExample, respExample := docsExamples(t, "/v1/api_keys", "201")
		must("loading /docs", chromedp.Do(ctx,
			chromedp.EmulateViewport(1280, 900),
			chromedp.Navigate(s.URL+"/docs"),
			chromedp.WaitVisible(chromedp.CSS(op)),
		))
		must("scrolling", chromedp.Do(ctx, scrollToTop(op)))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op)))
		must("reading the operation", err)
		for _, want := range []string{
			"Create an API key",
			"Request samples", "Response samples",
			"allowed_origins", // a property of the request schema
			"last4",           // a property of the answer's schema
			reqExample,        // the request example's name
			respExample,       // the 201 example's id
			"201",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/docs: the createApiKey operation does not show %q:\n%s", want, tail(text, 3000))
			}
		}
		docsShot(t, ctx, "docs")
		title, err := chromedp.Run(ctx, chromedp.Title())
		must("title", err)
		if !strings.Contains(title, "Nexus") {
			t.Errorf("/docs: title %q", title)
		}

		// A phone: the menu collapses and the page does not scroll sideways.
		must("375 px", chromedp.Do(ctx,
			chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
			chromedp.WaitVisible(chromedp.CSS(op)),
		))
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		must("measuring", err)
		if wide {
			t.Errorf("/docs at 375 px scrolls sideways")
		}
		must("scrolling", chromedp.Do(ctx, scrollToTop(op)))
		docsShot(t, ctx, "docs-375")

		mu.Lock()
		defer mu.Unlock()
		if len(foreign) > 0 {
			t.Errorf("/docs fetched from other origins: %v", foreign)
		}
		for _, p := range problems {
			t.Errorf("/docs console: %s", p)
		}
	})
}

// docsShot writes what the window shows to $NEXUS_E2E_SHOTS/name.png when
// that is set (the README's pictures come from there).
func docsShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("NEXUS_E2E_SHOTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot of %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// scrollToTop scrolls the element of sel to the top of the window.
func scrollToTop(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(document.querySelector(`+strconv.Quote(sel)+`).scrollIntoView({block: "start"}), true)`)(ctx, tg)
		return err
	})
}

// docsExamples returns the name in the request example and the id in the
// answer's example of POST path, from openapi.yaml.
func docsExamples(t *testing.T, path, status string) (string, string) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Paths.Value(path).Post
	req := op.RequestBody.Value.Content.Get("application/json")
	var reqEx any = req.Example
	if reqEx == nil && len(req.Examples) > 0 {
		// Redoc shows the first of /openapi.json, whose keys are sorted.
		names := slices.Sorted(maps.Keys(req.Examples))
		reqEx = req.Examples[names[0]].Value.Value
	}
	resp := op.Responses.Value(status).Value.Content.Get("application/json")
	name, _ := reqEx.(map[string]any)["name"].(string)
	id, _ := resp.Example.(map[string]any)["id"].(string)
	if name == "" || id == "" {
		t.Fatalf("openapi.yaml: POST %s has no request example with a name (%v) or %s example with an id (%v)", path, reqEx, status, resp.Example)
	}
	return name, id
}
