package config

// CheckSection is one check's part of the checks section. The check's own
// type implements it: it decodes strictly from its YAML node like every
// other type here, validates its keys with their positions and fills its
// own defaults. Generic code (validation, defaults, the warnings about
// unevidenced risks, the daemon's translation into engine policy) iterates
// Checks.Sections and never names a check.
type CheckSection interface {
	// IsEnabled reports whether the check runs (after defaults: true unless
	// the file says enabled: false).
	IsEnabled() bool
	// EvidencedRisks maps a DPIA id to the risks the check evidences.
	EvidencedRisks() map[string][]string
	validate(v *validator, p string, c *Config)
	setDefaults(v *validator, p string)
}

// NamedSection is a check's stable name (CONTRACT §3, its key under
// checks) and its section.
type NamedSection struct {
	Name    string
	Section CheckSection
}

// Sections is the registry of checks, in the order they run and are
// reported: adding a check adds its field to Checks and one line here.
func (ch *Checks) Sections() []NamedSection {
	return []NamedSection{
		{CheckOutOfHours, &ch.OutOfHours},
		{CheckNoBusinessNeed, &ch.NoBusinessNeed},
		{CheckUnlockedSession, &ch.UnlockedSession},
		{CheckSharedCredential, &ch.SharedCredential},
		{CheckBulkAccess, &ch.BulkAccess},
	}
}

// Section returns the section of the named check.
func (ch *Checks) Section(name string) (CheckSection, bool) {
	for _, s := range ch.Sections() {
		if s.Name == name {
			return s.Section, true
		}
	}
	return nil, false
}
