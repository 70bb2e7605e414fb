package web

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"
)

// Export jobs: an evidence export takes seconds to minutes, so the form
// starts it in the background and sends the DPO to a page that shows its
// progress and, at the end, the download. Jobs are bounded: one per user
// at a time (starting another discards the user's finished one), a few
// running at once in all; each is given up after exportJobTimeout, and a
// finished job and its files are removed exportJobTTL after it ended, or
// when the server stops.
const (
	exportJobTTL        = 30 * time.Minute
	exportJobTimeout    = 15 * time.Minute
	maxExportJobs       = 3 // running at once, all users together
	exportJobSweepEvery = time.Minute
)

var (
	errExportRunning = errors.New("an export of yours is already running")
	errExportsBusy   = errors.New("too many exports are running")
)

// exportJob is one background export. Fields under mu change while it runs.
type exportJob struct {
	id, user, name string // name: the zip's download file name
	dir            string // the job's temporary directory, removed with it
	started        time.Time
	desc           exportRequest

	mu          sync.Mutex
	stage       string
	done, total int
	finished    time.Time // zero while running
	err         error
	zip         string // the pack, when done without error
}

// exportRequest is what the DPO asked for.
type exportRequest struct {
	DPIA, From, To string
	Identities     bool
}

// exportJobView is a job as its page shows it.
type exportJobView struct {
	Stage       string
	Done, Total int
	Running     bool
	Failed      bool
	Zip         string
}

func (j *exportJob) progress(stage string, done, total int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stage, j.done, j.total = stage, done, total
}

func (j *exportJob) view() exportJobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	return exportJobView{Stage: j.stage, Done: j.done, Total: j.total, Running: j.finished.IsZero(), Failed: j.err != nil, Zip: j.zip}
}

func (j *exportJob) end(zip string, err error, at time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.zip, j.err, j.finished = zip, err, at
}

// expired reports whether the job ended more than ttl before now.
func (j *exportJob) expired(now time.Time, ttl time.Duration) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.finished.IsZero() && now.Sub(j.finished) > ttl
}

func (j *exportJob) running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.finished.IsZero()
}

// exportJobs holds the jobs, by id.
type exportJobs struct {
	now    func() time.Time
	ctx    context.Context // ended by stop: every running job gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*exportJob
}

func newExportJobs(now func() time.Time) *exportJobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &exportJobs{now: now, ctx: ctx, cancel: cancel, jobs: map[string]*exportJob{}}
}

// start registers a job for user and runs do in the background with a
// context that ends at exportJobTimeout or stop. do returns the zip's path.
func (x *exportJobs) start(user, name, dir string, req exportRequest, do func(ctx context.Context, j *exportJob) (string, error)) (*exportJob, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ctx.Err() != nil {
		return nil, errExportsBusy
	}
	running := 0
	for _, j := range x.jobs {
		if !j.running() {
			continue
		}
		if j.user == user {
			return j, errExportRunning
		}
		running++
	}
	if running >= maxExportJobs {
		return nil, errExportsBusy
	}
	for id, j := range x.jobs { // the user's finished job gives way
		if j.user == user {
			x.removeLocked(id)
		}
	}
	j := &exportJob{id: randomToken(), user: user, name: name, dir: dir, started: x.now(), desc: req}
	x.jobs[j.id] = j
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		ctx, cancel := context.WithTimeout(x.ctx, exportJobTimeout)
		defer cancel()
		zip, err := do(ctx, j)
		j.end(zip, err, x.now())
	}()
	return j, nil
}

// get returns user's job id; another user's job is not found.
func (x *exportJobs) get(user, id string) (*exportJob, bool) {
	x.sweep()
	x.mu.Lock()
	defer x.mu.Unlock()
	j, ok := x.jobs[id]
	if !ok || j.user != user {
		return nil, false
	}
	return j, true
}

// sweep removes the jobs that ended more than exportJobTTL ago.
func (x *exportJobs) sweep() {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	for id, j := range x.jobs {
		if j.expired(now, exportJobTTL) {
			x.removeLocked(id)
		}
	}
}

// removeLocked forgets a finished job and deletes its files.
func (x *exportJobs) removeLocked(id string) {
	if j, ok := x.jobs[id]; ok {
		delete(x.jobs, id)
		_ = os.RemoveAll(j.dir)
	}
}

// stop ends every running job, waits for them, and deletes every job's
// files. Starting a job afterwards fails.
func (x *exportJobs) stop() {
	x.cancel()
	x.wg.Wait()
	x.mu.Lock()
	defer x.mu.Unlock()
	for id := range x.jobs {
		x.removeLocked(id)
	}
}
