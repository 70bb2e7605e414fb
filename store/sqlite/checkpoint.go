package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
)

// Checkpoints copy committed pages from the write-ahead log into the main
// file. SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold, so the writer, the serial stage of the pipeline, stalls for the
// whole copy and fsync (a tenth of Apply's time, measured, and the worst
// produce→alert latencies). A checkpointer on its own connection runs
// PASSIVE checkpoints beside the writer instead: they never block it, and
// the writer keeps a far higher automatic threshold only as a backstop should
// the checkpointer fall behind. It checkpoints after every commit (kicks
// coalesce while one runs). The writer starts the log over only when a
// checkpoint has caught up as a batch begins, so under back-to-back batches
// the log still grows to about the backstop (measured: ~150 MB at 50k
// events/s), mostly already copied. Durability is unchanged: a commit is
// durable once its frames are synced to the log, checkpointed or not.

// autoCheckpointPages is the writer's backstop threshold (4 KiB pages).
const autoCheckpointPages = 32768

type checkpointer struct {
	db   *sql.DB
	log  *slog.Logger
	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

func startCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, log: log, kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

// notify tells the checkpointer the log has grown; it never blocks.
func (c *checkpointer) notify() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		var busy, logFrames, copied int
		if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil && ctx.Err() == nil {
			// Not fatal: the writer's automatic checkpoint is the backstop.
			c.log.Warn("background checkpoint failed", "err", err)
		}
	}
}

// close stops the checkpointer and waits for it.
func (c *checkpointer) close() {
	c.stop()
	<-c.done
}
