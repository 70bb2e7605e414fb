package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// chunkedSizes are the row counts of a chunked statement set: the largest
// carries the bulk of a batch and powers of two the remainder, so that no
// statement is compiled per batch (compiling the multi-row upsert of check
// state was a third of its cost, measured).
var chunkedSizes = []int{500, 256, 128, 64, 32, 16, 8, 4, 2, 1}

// chunked is one multi-row statement prepared for each of chunkedSizes.
type chunked struct {
	width int // bound values per row
	stmts []*sql.Stmt
}

// prepareChunked prepares build(n) for every n of chunkedSizes, on the
// writer.
func prepareChunked(ctx context.Context, db *sql.DB, width int, build func(n int) string) (*chunked, error) {
	c := &chunked{width: width}
	for _, n := range chunkedSizes {
		st, err := db.PrepareContext(ctx, build(n))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("sqlite: prepare: %w", err)
		}
		c.stmts = append(c.stmts, st)
	}
	return c, nil
}

// exec runs args, width values per row, through the statements, largest
// first; rows keep their order.
func (c *chunked) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	for len(args) > 0 {
		rows := len(args) / c.width
		for i, n := range chunkedSizes {
			if n > rows {
				continue
			}
			if _, err := tx.StmtContext(ctx, c.stmts[i]).ExecContext(ctx, args[:n*c.width]...); err != nil {
				return err
			}
			args = args[n*c.width:]
			break
		}
	}
	return nil
}

func (c *chunked) close() error {
	if c == nil {
		return nil
	}
	var first error
	for _, st := range c.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
