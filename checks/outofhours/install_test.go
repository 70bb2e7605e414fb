package outofhours_test

// The check's tests run engines with the shipped checks installed, as the
// daemon does; they are in package outofhours, of the same test binary.
import _ "github.com/dpiawatch/dpiawatch/checks/install"
