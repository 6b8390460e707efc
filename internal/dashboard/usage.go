package dashboard

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/audit"
)

// chart is a bar chart drawn on the server as SVG: no script, nothing for
// the CSP to allow.
type chart struct {
	Width, Height, Base int // Base is the y of the x axis
	Max                 int64
	Bars                []bar
	First, Last         string // labels under the axis ends
	Title               string
}

type bar struct {
	X, W        float64
	Y, H        float64 // requests
	EY, EH      float64 // errors, drawn over the requests
	Label       string
	Req, Errors int64
}

const (
	chartWidth, chartHeight = 720, 220
	chartTop, chartBottom   = 10, 30 // room for the labels
	chartLeft               = 48
)

// newChart draws a series' buckets.
func newChart(s audit.UsageSeries, day bool, title string) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Base: chartHeight - chartBottom, Title: title}
	for _, b := range s.Buckets {
		c.Max = max(c.Max, b.Requests)
	}
	scale := 0.0
	if c.Max > 0 {
		scale = float64(c.Base-chartTop) / float64(c.Max)
	}
	n := len(s.Buckets)
	if n == 0 {
		return c
	}
	slot := float64(chartWidth-chartLeft) / float64(n)
	layout := "15:04"
	if day {
		layout = "Jan 2"
	}
	for i, b := range s.Buckets {
		h, eh := float64(b.Requests)*scale, float64(b.Errors)*scale
		c.Bars = append(c.Bars, bar{
			X: float64(chartLeft) + float64(i)*slot + slot*0.1, W: slot * 0.8,
			Y: float64(c.Base) - h, H: h, EY: float64(c.Base) - eh, EH: eh,
			Label: b.Start.UTC().Format(layout), Req: b.Requests, Errors: b.Errors,
		})
	}
	c.First, c.Last = c.Bars[0].Label, c.Bars[n-1].Label
	return c
}

type usageData struct {
	Granularity, Credential string
	Usage                   *audit.Usage
	Chart                   chart
	Errors                  map[string]string
}

func (d *Dashboard) usagePage(c *fiber.Ctx, r *request) error {
	data := usageData{Granularity: c.Query("granularity", "hour"), Credential: c.Query("credential_id"), Errors: map[string]string{}}
	if data.Granularity != "hour" && data.Granularity != "day" {
		data.Errors["granularity"] = "Choose hours or days."
	}
	if len(data.Credential) > 64 {
		data.Errors["credential_id"] = "That is not a credential id."
	}
	if len(data.Errors) > 0 {
		return d.render(c, fiber.StatusBadRequest, "usage.html", d.newPage(r, "Usage", "usage", "/usage", data))
	}
	u, err := d.cfg.Audit.Usage(r.ctx, r.tenant(), audit.UsageParams{Granularity: data.Granularity, CredentialID: data.Credential})
	if err != nil {
		return d.fail(c, r, err)
	}
	data.Usage = u
	title := "Requests per hour, last 24 hours (UTC)"
	if data.Granularity == "day" {
		title = "Requests per day, last 30 days (UTC)"
	}
	data.Chart = newChart(u.Total, data.Granularity == "day", title)
	return d.render(c, fiber.StatusOK, "usage.html", d.newPage(r, "Usage", "usage", "/usage", data))
}

// itoa is for templates.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
