package rules

// The tests of this package run the checks still defined in it, registered
// in the order they always ran; programs register them through
// checks/install.
func init() {
	for _, r := range []Registration{OutOfHoursRegistration, NoBusinessNeedRegistration,
		UnlockedSessionRegistration, SharedCredentialRegistration, BulkAccessRegistration} {
		Register(r)
	}
}
