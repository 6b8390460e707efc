package dashboard

import (
	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/store"
)

type overviewData struct {
	Balances []*ledger.Balance
	Requests []*ledger.Request
	Funding  []*ledger.Funding
}

func (d *Dashboard) overview(c *fiber.Ctx, r *request) error {
	t := r.tenant()
	bs, err := d.cfg.Ledger.Balances(r.ctx, t)
	if err != nil {
		return d.fail(c, r, err)
	}
	reqs, _, err := d.cfg.Ledger.ListRequests(r.ctx, t, ledger.RequestListParams{Page: store.Page{Limit: 5}})
	if err != nil {
		return d.fail(c, r, err)
	}
	fs, _, err := d.cfg.Ledger.ListFunding(r.ctx, t, ledger.FundingListParams{Page: store.Page{Limit: 5}})
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, fiber.StatusOK, "overview.html", d.newPage(r, "Overview", "overview", "", overviewData{Balances: bs, Requests: reqs, Funding: fs}))
}
