package web

// WrapVerify lets tests observe (or slow down) password verification: wrap
// receives the verifier in place and returns the one to use.
func WrapVerify(s *Server, wrap func(next func(user, pass string) (Account, bool)) func(user, pass string) (Account, bool)) {
	s.verify = wrap(s.verify)
}
