package nexus

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

// Page is one page of a list answer ({"object": "list", "data": [...],
// "has_more": bool}), newest first.
type Page[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

// ListParams are the cursor parameters every list takes. The resource list
// parameters embed it.
type ListParams struct {
	// Limit is the page size, 1 to 100 (0: the server's default, 20).
	Limit int
	// StartingAfter is the id of the object after which the page starts
	// (the last object of the previous page).
	StartingAfter string
}

func (p ListParams) encode(q url.Values) {
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
}

// listQuery is implemented by every list parameters type.
type listQuery interface {
	cursor() *ListParams
	values() url.Values
}

func (p *ListParams) cursor() *ListParams { return p }

func (p *ListParams) values() url.Values {
	q := url.Values{}
	p.encode(q)
	return q
}

// identified is every listed object: it has an id to page after.
type identified interface{ objectID() string }

// listPage fetches one page.
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values, opts []RequestOption) (*Page[T], error) {
	p := new(Page[T])
	if err := c.do(ctx, call{method: "GET", path: path, query: q, out: p}, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// listAll iterates over every object of a list from params' cursor on,
// fetching pages as it goes: after each page it asks for the objects
// starting after the page's last one, until has_more is false. An error
// ends the iteration, yielded as (nil, err). params is not modified.
func listAll[T identified, P any, PP interface {
	*P
	listQuery
}](ctx context.Context, c *Client, path string, params PP, opts []RequestOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		p := PP(new(P))
		if params != nil {
			*p = *params
		}
		for {
			page, err := listPage[T](ctx, c, path, p.values(), opts)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range page.Data {
				if !yield(v, nil) {
					return
				}
			}
			if !page.HasMore || len(page.Data) == 0 {
				return
			}
			next := page.Data[len(page.Data)-1].objectID()
			if next == "" || next == p.cursor().StartingAfter {
				return // a server fault; never loop forever
			}
			p.cursor().StartingAfter = next
		}
	}
}
