package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/producer"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
)

// labelLine is one line of labels.jsonl: which event belongs to which
// injected episode of misuse.
type labelLine struct {
	EventID string `json:"event_id"`
	Org     string `json:"org"`
	System  string `json:"system"`
	simulate.Label
}

func simulateCommand(e *env) *cobra.Command {
	var (
		org, from, out, brokers, topic string
		days, rate                     int
		seed                           int64
		scale                          float64
		noInjections                   bool
		sc                             scoreFlags
		rk                             simReferenceKafka
	)
	c := &cobra.Command{
		Use:   "simulate --org ORG --from DATE --days N --out DIR",
		Short: "Generate a realistic organisation, its reference data and access events, with labelled misuse",
		Long: `simulate builds one of the seed organisations (st-martins: a 32-resident supported-living
service on Log My Care; wiltshire-council: a county's children's case management system with
partner-agency portals), writes its reference data (CONTRACT §2 CSV files) to DIR/reference,
and its access events over the period as JSON Lines to DIR/events.jsonl, with labels for the
injected misuse (out-of-hours, no business need, shared credentials, unlocked sessions, bulk
access) in DIR/labels.jsonl. With --kafka the events are published to a topic instead, at
--rate events per second (0: as fast as possible). With --score nothing need be written: the
events are replayed in memory through the checks the daemon runs (--config), and precision and
recall per check and pattern are printed; --min-precision and --min-recall make it exit 1 when
a check falls below them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start, err := time.ParseInLocation("2006-01-02", from, london())
			if err != nil {
				return usagef("--from: %q is not a date (YYYY-MM-DD)", from)
			}
			if err := sc.validate(cmd, brokers); err != nil {
				return err
			}
			if out == "" && brokers == "" && rk.brokers == "" && !sc.on {
				return usagef("give --out DIR, --kafka BROKERS, --reference-kafka BROKERS, or several")
			}
			o := simulate.Options{Org: org, From: start, Days: days, Seed: seed, Scale: scale}
			if noInjections {
				o.Injections.Disabled = true
			}
			sim, err := simulate.New(o)
			if err != nil {
				return usageError{err}
			}
			if sc.on {
				return runScore(cmd.Context(), e, sim, o, out, &sc)
			}
			if err := rk.publish(cmd.Context(), e, sim.Reference()); err != nil {
				return err
			}
			log := e.logger()
			var events, labels *bufio.Writer
			if out != "" {
				if err := reference.WriteDir(filepath.Join(out, "reference"), sim.Reference()); err != nil {
					return err
				}
				ef, err := os.Create(filepath.Join(out, "events.jsonl"))
				if err != nil {
					return err
				}
				defer ef.Close()
				lf, err := os.Create(filepath.Join(out, "labels.jsonl"))
				if err != nil {
					return err
				}
				defer lf.Close()
				events, labels = bufio.NewWriterSize(ef, 1<<20), bufio.NewWriter(lf)
			}
			var pub *producer.Producer
			if brokers != "" {
				if pub, err = producer.New(producer.Options{Brokers: splitList(brokers), Topic: topic, Rate: rate}); err != nil {
					return usageError{err}
				}
			}
			n, injected := 0, 0
			began := time.Now()
			lenc := json.NewEncoder(labels)
			err = sim.Run(cmd.Context(), func(ev *event.Event, l *simulate.Label) error {
				n++
				if events != nil {
					b, err := event.Encode(ev)
					if err != nil {
						return err
					}
					events.Write(b)
					events.WriteByte('\n')
					if l != nil {
						injected++
						if err := lenc.Encode(labelLine{EventID: ev.ID, Org: ev.Org, System: ev.System, Label: *l}); err != nil {
							return err
						}
					}
				}
				if pub != nil {
					if err := pub.Publish(cmd.Context(), ev); err != nil {
						return err
					}
				}
				if n%200000 == 0 {
					log.Info("simulating", "events", n, "elapsed", time.Since(began).Round(time.Second))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if pub != nil {
				if err := pub.Close(cmd.Context()); err != nil {
					return err
				}
			}
			if events != nil {
				if err := events.Flush(); err != nil {
					return err
				}
				if err := labels.Flush(); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stderr, "simulate: %s, %d days from %s: %d events (%d labelled as injected misuse, %d episodes) in %s\n",
				org, days, from, n, injected, totalEpisodes(sim), time.Since(began).Round(time.Millisecond))
			return nil
		},
	}
	c.Flags().StringVar(&org, "org", simulate.OrgStMartins, "organisation: st-martins or wiltshire-council")
	c.Flags().StringVar(&from, "from", time.Now().AddDate(0, 0, -7).Format("2006-01-02"), "first day simulated (Europe/London)")
	c.Flags().IntVar(&days, "days", 7, "number of days")
	c.Flags().Int64Var(&seed, "seed", 1, "random seed: the same seed gives the same output")
	c.Flags().Float64Var(&scale, "scale", 1, "size relative to the DPIA's organisation (staff and subjects)")
	c.Flags().BoolVar(&noInjections, "no-injections", false, "simulate normal activity only")
	c.Flags().StringVar(&out, "out", "", "directory for reference/, events.jsonl and labels.jsonl")
	c.Flags().StringVar(&brokers, "kafka", "", "comma-separated Kafka brokers to publish to")
	c.Flags().StringVar(&topic, "topic", "access-events", "topic to publish to")
	c.Flags().IntVar(&rate, "rate", 0, "events per second when publishing (0: unpaced)")
	sc.register(c)
	rk.register(c)
	return c
}

func totalEpisodes(s *simulate.Simulation) int {
	n := 0
	for _, v := range s.Episodes() {
		n += v
	}
	return n
}

func london() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC
	}
	return l
}
