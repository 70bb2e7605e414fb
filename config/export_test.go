package config

// Parse is parse, for the external tests (package config_test), which
// import checks/install and so cannot be in package config.
func Parse(path string, b []byte) (*Config, Diagnostics) { return parse(path, b) }
